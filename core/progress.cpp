#include "core/progress.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <sstream>

#include "core/log.h"

namespace mixnas {

std::string format_duration(double seconds) {
  if (!(seconds >= 0) || !std::isfinite(seconds)) return "--:--";
  auto total = static_cast<int64_t>(std::llround(seconds));
  int64_t h = total / 3600, m = (total / 60) % 60, s = total % 60;
  char buf[32];
  if (h > 0) {
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", static_cast<long long>(h),
                  static_cast<long long>(m), static_cast<long long>(s));
  } else {
    std::snprintf(buf, sizeof buf, "%02lld:%02lld", static_cast<long long>(m),
                  static_cast<long long>(s));
  }
  return buf;
}

Progress::Progress(std::string label, int64_t total, std::string unit)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      total_(total),
      start_(Clock::now()),
      last_print_(start_),
      tty_(isatty(STDERR_FILENO) != 0) {}

Progress::~Progress() {
  finish();
}

void Progress::advance(int64_t n) {
  done_ += n;
  maybe_print(false);
}

void Progress::set(int64_t done) {
  done_ = done;
  maybe_print(false);
}

void Progress::set_postfix(std::string postfix) {
  postfix_ = std::move(postfix);
}

void Progress::finish() {
  if (finished_) return;
  maybe_print(true);
  finished_ = true;
  if (tty_ && printed_ && log::enabled(log::Level::kInfo)) std::fputc('\n', stderr);
}

std::string Progress::render_line(const std::string& label, int64_t done, int64_t total,
                                  const std::string& unit, double rate, double eta_s,
                                  const std::string& postfix, int bar_width) {
  std::ostringstream out;
  out << label;
  char buf[64];
  if (total > 0) {
    double frac = std::min(1.0, static_cast<double>(done) / static_cast<double>(total));
    std::snprintf(buf, sizeof buf, " %3d%%", static_cast<int>(frac * 100.0));
    out << buf;
    if (bar_width > 0) {
      int filled = static_cast<int>(frac * bar_width);
      out << " |" << std::string(filled, '#') << std::string(bar_width - filled, ' ') << '|';
    }
    out << ' ' << done << '/' << total;
  } else {
    out << ' ' << done;
  }
  std::snprintf(buf, sizeof buf, " [%.2f %s/s", rate, unit.c_str());
  out << buf;
  if (total > 0) out << ", ETA " << format_duration(eta_s);
  out << ']';
  if (!postfix.empty()) out << ' ' << postfix;
  return out.str();
}

void Progress::maybe_print(bool force) {
  if (finished_ || !log::enabled(log::Level::kInfo)) return;
  if (force && printed_ && last_printed_done_ == done_) return;  // the final state is shown
  auto now = Clock::now();
  double since_last = std::chrono::duration<double>(now - last_print_).count();
  double period = tty_ ? 0.1 : plain_period_s_;
  bool complete = total_ > 0 && done_ >= total_;
  if (!force && !complete && since_last < period) return;
  if (!tty_ && !force && !complete && since_last < period) return;
  last_print_ = now;
  double elapsed = std::chrono::duration<double>(now - start_).count();
  double rate = elapsed > 0 ? static_cast<double>(done_) / elapsed : 0.0;
  double eta = (rate > 0 && total_ > 0) ? static_cast<double>(total_ - done_) / rate : -1.0;
  if (complete || force) eta = total_ > 0 && done_ >= total_ ? 0.0 : eta;
  std::string line = render_line(label_, done_, total_, unit_, rate, eta, postfix_, tty_ ? 30 : 0);
  if (tty_) {
    std::fprintf(stderr, "\r\033[K%s", line.c_str());
  } else {
    std::fprintf(stderr, "%s (elapsed %s)\n", line.c_str(), format_duration(elapsed).c_str());
  }
  std::fflush(stderr);
  printed_ = true;
  last_printed_done_ = done_;
}

}  // namespace mixnas
