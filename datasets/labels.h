#pragma once
// YOLO label files: one row `class cx cy w h` per object, coordinates normalised to 0..1.
#include <string>
#include <vector>

namespace mixnas::data {

struct Box {
  int cls = 0;
  float cx = 0, cy = 0, w = 0, h = 0;  // normalised to the image size
  bool operator==(const Box& o) const {
    return cls == o.cls && cx == o.cx && cy == o.cy && w == o.w && h == o.h;
  }
};

// The result of reading one label file. A file with any bad row is unusable as a whole (the image
// is skipped), because a half-read file would silently train on wrong targets.
struct LabelParse {
  std::vector<Box> boxes;
  std::vector<std::string> problems;  // "labels/a.txt:3: expected 5 columns, found 4"
  int duplicates_removed = 0;
  bool ok() const { return problems.empty(); }
};

// Parses the text of a label file; `path` names it in messages; class ids must be < num_classes.
LabelParse parse_labels(const std::string& text, const std::string& path, int num_classes);

// The label file of an image: the last `/images/` component becomes `/labels/`, the extension
// `.txt` (ultralytics' img2label_paths rule).
std::string label_path_for(const std::string& image_path);

// Label file text for boxes (6 decimals), one row per box.
std::string format_labels(const std::vector<Box>& boxes);

}  // namespace mixnas::data
