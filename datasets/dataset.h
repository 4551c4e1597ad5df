#pragma once
// Ultralytics-format detection datasets: the data YAML, the image lists of its splits, the label
// files beside them (cached), and a report of every defect found.
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "datasets/labels.h"

namespace mixnas::data {

// A parsed data YAML. Split sources are absolute (or relative to the working folder when `path`
// was), each a folder of images or a .txt list of image paths.
struct DatasetConfig {
  std::string yaml_path;
  std::string root;  // `path`, resolved against the YAML's folder; the YAML's folder if absent
  std::map<std::string, std::vector<std::string>> splits;  // "train", "val", "test"
  std::vector<std::string> names;
  int num_classes() const { return static_cast<int>(names.size()); }
  bool has_split(const std::string& split) const { return splits.count(split) > 0; }
};

// Reads a data YAML: path, train, val, test (optional), names (list or {0: a, 1: b}), nc (optional,
// checked against names). Throws mixnas::Error naming the file, line and key on any defect.
DatasetConfig load_dataset_config(const std::string& yaml_path);
DatasetConfig parse_dataset_config(const std::string& yaml_text, const std::string& yaml_path);

// The image paths of a split, in sorted order. Throws mixnas::Error naming the split and the
// source when a source does not exist or the split holds no image.
std::vector<std::string> list_split_images(const DatasetConfig& config, const std::string& split);

struct Sample {
  std::string image_path;
  int width = 0, height = 0;
  std::vector<Box> boxes;
};

struct SplitReport {
  std::string split;
  int64_t found = 0;        // image files listed
  int64_t images = 0;       // usable images
  int64_t backgrounds = 0;  // usable images without a label file or with an empty one
  int64_t boxes = 0;
  int64_t duplicates = 0;
  std::vector<std::string> corrupt;  // one message per skipped image, naming the file
  bool from_cache = false;
  // "train: 7998 images (12 backgrounds, 31024 boxes), 2 corrupt skipped: <first messages>"
  std::string summary(size_t max_listed = 3) const;
};

struct SplitLoadOptions {
  bool use_cache = true;  // read/write labels/<split>.mixnas-cache.json
  int threads = 0;        // image checking threads; 0 = hardware concurrency
};

class DetectionSplit {
 public:
  // Scans a split: lists images, reads and checks labels, decodes every image once to check it,
  // skips and reports defective ones. Uses the cache when it is fresh. Throws mixnas::Error when
  // the split is missing from the YAML, lists no image, or no image is usable.
  static DetectionSplit load(const DatasetConfig& config, const std::string& split,
                             const SplitLoadOptions& options = {});

  // The samples at `indices` (in that order) as a split of their own, named `name` in reports.
  // Throws mixnas::Error when an index is out of range or the subset is empty.
  DetectionSplit subset(const std::vector<size_t>& indices, const std::string& name) const;
  // Deterministic partition for a search: a shuffled `fraction` of the samples (at least one) and
  // the rest, both in the split's order. Throws mixnas::Error when either part would be empty.
  std::pair<DetectionSplit, DetectionSplit> partition(double fraction, uint64_t seed) const;

  const std::vector<Sample>& samples() const { return samples_; }
  const SplitReport& report() const { return report_; }
  const std::vector<std::string>& names() const { return names_; }
  size_t size() const { return samples_.size(); }
  const std::string& cache_path() const { return cache_path_; }

 private:
  std::vector<Sample> samples_;
  SplitReport report_;
  std::vector<std::string> names_;
  std::string cache_path_;
};

// Where the cache of a split lives: beside its labels folder (labels/train.mixnas-cache.json for
// images/train/*; labels/train.cache is ultralytics' own), keyed by the sizes and modification
// times of every image and label file.
std::string cache_path_for(const std::vector<std::string>& images);
// The same for a labels folder ("ds/labels/train").
std::string label_cache_path(const std::string& label_dir);

}  // namespace mixnas::data
