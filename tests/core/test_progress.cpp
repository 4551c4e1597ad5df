#include <catch2/catch.hpp>

#include "core/progress.h"

using namespace mixnas;

TEST_CASE("durations format as mm:ss or h:mm:ss", "[core]") {
  CHECK(format_duration(0) == "00:00");
  CHECK(format_duration(65) == "01:05");
  CHECK(format_duration(3723) == "1:02:03");
  CHECK(format_duration(-1) == "--:--");
}

TEST_CASE("progress line shows percent, counts, rate and ETA", "[core]") {
  std::string line = Progress::render_line("train", 25, 100, "img", 12.5, 6.0, "loss=1.2", 10);
  CHECK(line == "train  25% |##        | 25/100 [12.50 img/s, ETA 00:06] loss=1.2");
  std::string unknown = Progress::render_line("scan", 7, 0, "file", 2.0, -1, "", 10);
  CHECK(unknown == "scan 7 [2.00 file/s]");
}
