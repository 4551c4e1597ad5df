#pragma once
// Detections as files, in the layout ultralytics' tools read: YOLO txt labels
// (`labels/<stem>.txt`, one `class cx cy w h [conf]` row per box, normalised to the image) and COCO
// results JSON (`predictions.json`: image_id, category_id, bbox [x, y, w, h] in pixels, score).
#include <string>
#include <vector>

namespace mixnas::cli {

struct PredictedBox {
  float x1 = 0, y1 = 0, x2 = 0, y2 = 0;  // image pixels
  float score = 0;
  int cls = 0;
};

// Writes `labels_dir/<stem of image_path>.txt` (nothing when `boxes` is empty, as ultralytics).
void write_yolo_txt(const std::string& labels_dir, const std::string& image_path, int width,
                    int height, const std::vector<PredictedBox>& boxes, bool with_conf);

// Collects COCO results over many images and writes them as one JSON array.
class CocoResultsWriter {
 public:
  // image_id: the file stem, as a number when it is one (COCO's 000000000139.jpg -> 139);
  // category_id: the class index, or category_ids[class] when given.
  void add(const std::string& image_path, const std::vector<PredictedBox>& boxes);
  void set_category_ids(std::vector<int> ids) { category_ids_ = std::move(ids); }
  void write(const std::string& path) const;
  size_t size() const { return rows_.size(); }

 private:
  std::vector<std::string> rows_;
  std::vector<int> category_ids_;
};

}  // namespace mixnas::cli
