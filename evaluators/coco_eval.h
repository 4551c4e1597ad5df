#pragma once
// COCO-style box evaluation, computed exactly as pycocotools' COCOeval (iouType "bbox"), plus the
// precision and recall that ultralytics prints (at the confidence of maximum mean F1).
//
// pycocotools rules kept here (cocoeval.py, maskApi.c): IoU thresholds .50:.05:.95 and recall
// thresholds 0:.01:1 built like numpy.linspace; maxDets 1/10/100; area ranges all/small/medium/
// large on the ground truth's `area` field (detections: w*h); detections sorted by score with a
// stable sort and cut to 100 per image and category before matching; greedy matching in score
// order to the best-IoU unmatched ground truth; crowd ground truth matchable many times with IoU
// = intersection / detection area; ignored ground truth sorted last; a ground truth's `ignore`
// is its `iscrowd` (pycocotools overwrites the json `ignore` field with it); precision envelope
// from the right and a left searchsorted lookup per recall threshold (0 beyond the last recall);
// means over entries > -1 (categories without ground truth are -1 and left out).
#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace mixnas::eval {

struct CocoImage {
  int64_t id = 0;
  std::string file_name;
  int width = 0, height = 0;
};

struct CocoCategory {
  int64_t id = 0;
  std::string name;
};

// A ground-truth box, (x, y) its top-left corner, in pixels.
struct CocoAnnotation {
  int64_t image_id = 0;
  int64_t category_id = 0;
  double x = 0, y = 0, w = 0, h = 0;
  double area = -1;  // < 0: w * h (COCO files carry the segment area)
  bool iscrowd = false;
};

struct CocoDetection {
  int64_t image_id = 0;
  int64_t category_id = 0;
  double x = 0, y = 0, w = 0, h = 0;
  double score = 0;
};

struct CocoGroundTruth {
  std::vector<CocoImage> images;
  std::vector<CocoCategory> categories;
  std::vector<CocoAnnotation> annotations;
};

// COCO instances json (images, annotations, categories). Throws mixnas::Error naming the file and
// the entry on any defect.
CocoGroundTruth load_coco_ground_truth(const std::string& path);
CocoGroundTruth parse_coco_ground_truth(const std::string& json_text, const std::string& what);
// A COCO results json: [{image_id, category_id, bbox: [x, y, w, h], score}, ...]. Every image_id
// must be one of the ground truth's (as pycocotools asserts); detections of categories the ground
// truth does not have are dropped, as pycocotools does.
std::vector<CocoDetection> load_coco_detections(const std::string& path, const CocoGroundTruth& gt);
std::vector<CocoDetection> parse_coco_detections(const std::string& json_text,
                                                 const std::string& what,
                                                 const CocoGroundTruth& gt);

struct CocoClassResult {
  int64_t category_id = 0;
  std::string name;
  int images = 0;     // images with at least one (non-crowd) box of the class
  int instances = 0;  // non-crowd boxes
  double ap = -1;     // AP@[.5:.95], all areas, 100 detections; -1 without ground truth
  double ap50 = -1;
  double ap75 = -1;
  double precision = 0;  // ultralytics style, at the max-mean-F1 confidence
  double recall = 0;
};

struct CocoEvalResult {
  // As COCOeval.stats: AP, AP50, AP75, AP small/medium/large, AR1, AR10, AR100, AR small/medium/
  // large. -1 where nothing could be measured.
  std::array<double, 12> stats{};
  std::vector<CocoClassResult> classes;  // in category id order
  int images = 0;
  int instances = 0;
  double precision = 0;  // mean over classes with ground truth (ultralytics "P")
  double recall = 0;     // ultralytics "R"
  double map50_95() const { return stats[0]; }
  double map50() const { return stats[1]; }
  double map75() const { return stats[2]; }
};

CocoEvalResult evaluate_coco(const CocoGroundTruth& gt, const std::vector<CocoDetection>& dets);

// The 12 lines pycocotools' summarize() prints.
std::string format_coco_summary(const CocoEvalResult& result);
// The ultralytics validation table: Class Images Instances P R mAP50 mAP50-95, "all" first, then
// one row per class with ground truth.
std::string format_detection_table(const CocoEvalResult& result);

// In-memory evaluation for the trainer: boxes in pixels (x0, y0, x1, y1), classes 0..n-1.
struct EvalBox {
  int cls = 0;
  float x0 = 0, y0 = 0, x1 = 0, y1 = 0;
  float score = 1;     // detections only
  bool crowd = false;  // ground truth only
};

class DetectionEvaluator {
 public:
  explicit DetectionEvaluator(std::vector<std::string> class_names);
  // One image: its ground truth and its detections (any order).
  void add_image(const std::vector<EvalBox>& ground_truth, const std::vector<EvalBox>& detections);
  size_t images() const { return gt_.images.size(); }
  CocoEvalResult evaluate() const;

 private:
  CocoGroundTruth gt_;
  std::vector<CocoDetection> dets_;
};

}  // namespace mixnas::eval
