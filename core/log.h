#pragma once
// One logger for every command: levels, -v/-q, messages to stderr, thread safe.
#include <sstream>
#include <string>

namespace mixnas::log {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3, kQuiet = 4 };

void set_level(Level level);
Level level();
bool enabled(Level level);
void write(Level level, const std::string& message);

namespace detail {
template <typename... Args>
std::string concat(const Args&... args) {
  std::ostringstream out;
  (out << ... << args);
  return out.str();
}
}  // namespace detail

template <typename... Args>
void debug(const Args&... args) {
  if (enabled(Level::kDebug)) write(Level::kDebug, detail::concat(args...));
}
template <typename... Args>
void info(const Args&... args) {
  if (enabled(Level::kInfo)) write(Level::kInfo, detail::concat(args...));
}
template <typename... Args>
void warn(const Args&... args) {
  if (enabled(Level::kWarn)) write(Level::kWarn, detail::concat(args...));
}
template <typename... Args>
void error(const Args&... args) {
  if (enabled(Level::kError)) write(Level::kError, detail::concat(args...));
}

}  // namespace mixnas::log
