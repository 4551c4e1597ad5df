#include "core/log.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <mutex>

namespace mixnas::log {
namespace {
std::atomic<int> g_level{static_cast<int>(Level::kInfo)};
std::mutex g_mutex;

const char* prefix(Level level, bool color) {
  switch (level) {
    case Level::kDebug:
      return color ? "\033[2mdebug:\033[0m " : "debug: ";
    case Level::kInfo:
      return "";
    case Level::kWarn:
      return color ? "\033[33mwarning:\033[0m " : "warning: ";
    case Level::kError:
      return color ? "\033[31merror:\033[0m " : "error: ";
    default:
      return "";
  }
}
}  // namespace

void set_level(Level level) {
  g_level = static_cast<int>(level);
}
Level level() {
  return static_cast<Level>(g_level.load());
}
bool enabled(Level level) {
  return static_cast<int>(level) >= g_level.load();
}

void write(Level level, const std::string& message) {
  static const bool color = isatty(STDERR_FILENO) != 0;
  std::lock_guard<std::mutex> lock(g_mutex);
  std::fprintf(stderr, "%s%s\n", prefix(level, color), message.c_str());
  std::fflush(stderr);
}

}  // namespace mixnas::log
