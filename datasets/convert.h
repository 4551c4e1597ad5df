#pragma once
// Converters to YOLO format: COCO instances json, and Pascal VOC XML annotations.
#include <string>
#include <vector>

namespace mixnas::data {

struct ConvertOptions {
  std::string out;              // dataset folder: images/<split>/, labels/<split>/, data.yaml
  std::string images;           // COCO: folder holding the json's file_name paths
  std::string split = "auto";   // COCO: split name (auto: from the json name, instances_val2017 ->
                                // val2017); VOC: comma list of ImageSets/Main lists
  bool copy = false;            // copy images instead of hard-linking them
  bool skip_difficult = false;  // VOC: drop objects marked difficult
  bool force = false;           // write into a split folder that already holds files
};

struct ConvertReport {
  std::string yaml_path;
  std::vector<std::string> splits;
  int images = 0;
  int boxes = 0;
  int crowd_skipped = 0;
  int difficult_skipped = 0;
  int difficult_kept = 0;
  std::vector<std::string> problems;  // missing images, invalid boxes, unknown classes, per file
  std::string summary() const;
};

// COCO json -> YOLO: category ids mapped to 0..n-1 in sorted id order, crowd boxes skipped, boxes
// clipped to the image, images linked (or copied) to OUT/images/<split>/, data.yaml written (an
// existing data.yaml with the same names gains the new split).
ConvertReport convert_coco(const std::string& instances_json, const ConvertOptions& options);

// Pascal VOC (Annotations/*.xml, JPEGImages/, ImageSets/Main/<split>.txt) -> YOLO with the 20 VOC
// class names. Without ImageSets lists, every annotation goes to the 'train' split.
ConvertReport convert_voc(const std::string& voc_root, const ConvertOptions& options);

// The 20 Pascal VOC classes in their usual order.
const std::vector<std::string>& voc_names();

// The split key of data.yaml for a split folder name: train2017 -> train, val2017 -> val,
// test-dev -> test; anything else -> val.
std::string split_key_for(const std::string& split_name);

}  // namespace mixnas::data
