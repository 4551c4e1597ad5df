#pragma once
#include <stdexcept>
#include <string>

namespace mixnas {

// An error a user can act on: the message names what was wrong, where, and what to do.
// Commands catch it at the top, print the message and exit 1 (no stack trace, no abort).
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace mixnas
