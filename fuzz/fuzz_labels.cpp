// libFuzzer target for the YOLO label parser (datasets/labels.h). The first byte picks the class
// count (1..256), the rest is a label file's text. Every input must parse without crashing, and
// what it accepts must be usable as a training target: class in range, coordinates finite in 0..1,
// width and height above zero as stored; a file with a problem keeps no partial meaning (ok()
// false). format_labels of accepted boxes must parse again with the same number of rows.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

#include "datasets/labels.h"

namespace {

using mixnas::data::Box;

bool usable(const Box& b, int num_classes) {
  const auto unit = [](float v) { return std::isfinite(v) && v >= 0 && v <= 1; };
  return b.cls >= 0 && b.cls < num_classes && unit(b.cx) && unit(b.cy) && unit(b.w) && unit(b.h) &&
         b.w > 0 && b.h > 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const int num_classes = 1 + data[0];
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  const mixnas::data::LabelParse parse = mixnas::data::parse_labels(text, "fuzz.txt", num_classes);
  for (const Box& b : parse.boxes)
    if (!usable(b, num_classes)) __builtin_trap();
  for (const std::string& p : parse.problems)
    if (p.rfind("fuzz.txt:", 0) != 0) __builtin_trap();  // every problem names file and line
  if (parse.ok()) {
    const auto again =
        mixnas::data::parse_labels(mixnas::data::format_labels(parse.boxes), "again", num_classes);
    if (again.boxes.size() + again.duplicates_removed + again.problems.size() != parse.boxes.size())
      __builtin_trap();
  }
  mixnas::data::label_path_for(text);
  return 0;
}
