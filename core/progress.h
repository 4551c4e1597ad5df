#pragma once
// One progress helper for every long command: a bar with rate and ETA on a terminal, a plain
// line every few seconds otherwise (logs, CI). Output goes to stderr; -q silences it.
#include <chrono>
#include <cstdint>
#include <string>

namespace mixnas {

class Progress {
 public:
  // total = 0 means unknown: the count and rate are shown, no bar or ETA.
  Progress(std::string label, int64_t total, std::string unit = "it");
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void advance(int64_t n = 1);
  void set(int64_t done);
  // Free text after the counters (losses, metrics); shown at the next update.
  void set_postfix(std::string postfix);
  // Prints the final state once; also called by the destructor.
  void finish();

  // Plain-line period when stderr is not a terminal (default 5 s). For tests.
  void set_plain_period(double seconds) { plain_period_s_ = seconds; }
  // Rendering of one state, exposed for tests. rate in units per second; eta < 0 when unknown.
  static std::string render_line(const std::string& label, int64_t done, int64_t total,
                                 const std::string& unit, double rate, double eta_s,
                                 const std::string& postfix, int bar_width);

 private:
  void maybe_print(bool force);

  using Clock = std::chrono::steady_clock;
  std::string label_;
  std::string unit_;
  std::string postfix_;
  int64_t total_;
  int64_t done_ = 0;
  Clock::time_point start_;
  Clock::time_point last_print_;
  double plain_period_s_ = 5.0;
  bool tty_;
  bool finished_ = false;
  bool printed_ = false;
  int64_t last_printed_done_ = -1;
};

// "1:02:03", "02:03" for seconds.
std::string format_duration(double seconds);

}  // namespace mixnas
