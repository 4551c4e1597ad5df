#include "evaluators/coco_eval.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <numeric>
#include <set>
#include <unordered_map>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/json_int.h"

namespace mixnas::eval {
namespace {

constexpr int kT = 10;   // IoU thresholds
constexpr int kR = 101;  // recall thresholds
constexpr int kA = 4;    // area ranges
constexpr int kM = 3;    // maxDets
constexpr int kMaxDets[kM] = {1, 10, 100};
constexpr double kEps = 2.220446049250313e-16;  // numpy.spacing(1)

// numpy.linspace(start, stop, num): start + i * ((stop - start) / (num - 1)), last = stop.
std::vector<double> linspace(double start, double stop, int num) {
  std::vector<double> y(num);
  double step = (stop - start) / (num - 1);
  for (int i = 0; i < num; ++i) y[i] = i * step + start;
  y[num - 1] = stop;
  return y;
}

const std::vector<double>& iou_thresholds() {
  static const std::vector<double> t = linspace(0.5, 0.95, kT);
  return t;
}
const std::vector<double>& recall_thresholds() {
  static const std::vector<double> r = linspace(0.0, 1.0, kR);
  return r;
}
const double kAreaRanges[kA][2] = {
    {0, 1e5 * 1e5}, {0, 32.0 * 32.0}, {32.0 * 32.0, 96.0 * 96.0}, {96.0 * 96.0, 1e5 * 1e5}};

// maskApi.c bbIou: continuous coordinates, no +1; crowd: intersection over the detection's area.
double box_iou(const CocoDetection& d, const CocoAnnotation& g) {
  double w = std::min(d.x + d.w, g.x + g.w) - std::max(d.x, g.x);
  if (w <= 0) return 0;
  double h = std::min(d.y + d.h, g.y + g.h) - std::max(d.y, g.y);
  if (h <= 0) return 0;
  double i = w * h;
  double da = d.w * d.h;
  double u = g.iscrowd ? da : da + g.w * g.h - i;
  return i / u;
}

double gt_area(const CocoAnnotation& g) {
  return g.area >= 0 ? g.area : g.w * g.h;
}

// evaluateImg's output for one (category, area range, image).
struct ImageEval {
  bool present = false;
  std::vector<double> scores;    // detections sorted by score, at most 100
  std::vector<uint8_t> matched;  // [T][D]
  std::vector<uint8_t> ignored;  // [T][D]
  int non_ignored_gt = 0;
};

ImageEval evaluate_image(const std::vector<const CocoAnnotation*>& gts,
                         const std::vector<const CocoDetection*>& dts_by_score,
                         const std::vector<std::vector<double>>& ious, int area_index) {
  ImageEval e;
  if (gts.empty() && dts_by_score.empty()) return e;
  e.present = true;
  const double lo = kAreaRanges[area_index][0], hi = kAreaRanges[area_index][1];
  const size_t G = gts.size(), D = dts_by_score.size();
  std::vector<int> gt_ignore(G);
  for (size_t g = 0; g < G; ++g) {
    double a = gt_area(*gts[g]);
    gt_ignore[g] = (gts[g]->iscrowd || a < lo || a > hi) ? 1 : 0;
  }
  // Ignored ground truth last (stable).
  std::vector<size_t> order(G);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return gt_ignore[a] < gt_ignore[b]; });
  e.scores.resize(D);
  for (size_t d = 0; d < D; ++d) e.scores[d] = dts_by_score[d]->score;
  e.matched.assign(kT * D, 0);
  e.ignored.assign(kT * D, 0);
  for (size_t g = 0; g < G; ++g) e.non_ignored_gt += gt_ignore[g] == 0;
  std::vector<uint8_t> gt_matched(kT * G, 0);
  const auto& thresholds = iou_thresholds();
  for (int t = 0; t < kT; ++t) {
    for (size_t d = 0; d < D; ++d) {
      double best = std::min(thresholds[t], 1 - 1e-10);
      long m = -1;
      for (size_t k = 0; k < G; ++k) {
        size_t g = order[k];
        if (gt_matched[t * G + k] && !gts[g]->iscrowd) continue;
        if (m > -1 && gt_ignore[order[m]] == 0 && gt_ignore[g] == 1) break;
        if (ious[d][g] < best) continue;
        best = ious[d][g];
        m = static_cast<long>(k);
      }
      if (m == -1) continue;
      e.ignored[t * D + d] = static_cast<uint8_t>(gt_ignore[order[m]]);
      e.matched[t * D + d] = 1;
      gt_matched[t * G + m] = 1;
    }
  }
  // Unmatched detections outside the area range are ignored.
  for (size_t d = 0; d < D; ++d) {
    double a = dts_by_score[d]->w * dts_by_score[d]->h;
    bool outside = a < lo || a > hi;
    for (int t = 0; t < kT; ++t) {
      if (!e.matched[t * D + d] && outside) e.ignored[t * D + d] = 1;
    }
  }
  return e;
}

// --- ultralytics' P and R (utils/metrics.py ap_per_class, validator match_predictions) ----------

struct UltraDet {
  int cls;
  double conf;
  std::array<uint8_t, kT> tp;
};

// np.interp(x, xp, fp, left) for increasing xp; right = fp.back().
double interp(double x, const std::vector<double>& xp, const std::vector<double>& fp, double left) {
  if (xp.empty()) return left;
  if (x < xp.front()) return left;
  if (x >= xp.back()) return fp.back();
  size_t j = std::upper_bound(xp.begin(), xp.end(), x) - xp.begin();  // xp[j-1] <= x < xp[j]
  double x0 = xp[j - 1], x1 = xp[j];
  if (x1 == x0) return fp[j];
  return fp[j - 1] + (x - x0) * (fp[j] - fp[j - 1]) / (x1 - x0);
}

// Fills per-class precision/recall at the max smoothed mean-F1 confidence; returns (P, R) means.
std::pair<double, double> ultralytics_pr(std::vector<UltraDet> dets,
                                         const std::vector<int>& instances_per_class,
                                         std::vector<double>* p_out, std::vector<double>* r_out) {
  const int N = 1000;
  const double eps = 1e-16;
  std::stable_sort(dets.begin(), dets.end(),
                   [](const UltraDet& a, const UltraDet& b) { return a.conf > b.conf; });
  std::vector<int> classes;
  for (size_t c = 0; c < instances_per_class.size(); ++c) {
    if (instances_per_class[c] > 0) classes.push_back(static_cast<int>(c));
  }
  p_out->assign(instances_per_class.size(), 0.0);
  r_out->assign(instances_per_class.size(), 0.0);
  if (classes.empty()) return {0, 0};
  std::vector<double> px = linspace(0, 1, N);
  std::vector<std::vector<double>> p(classes.size(), std::vector<double>(N, 0.0));
  std::vector<std::vector<double>> r(classes.size(), std::vector<double>(N, 0.0));
  for (size_t ci = 0; ci < classes.size(); ++ci) {
    int c = classes[ci];
    std::vector<double> neg_conf, recall, precision;
    double tpc = 0, fpc = 0;
    for (const UltraDet& d : dets) {
      if (d.cls != c) continue;
      tpc += d.tp[0];
      fpc += 1 - d.tp[0];
      neg_conf.push_back(-d.conf);
      recall.push_back(tpc / (instances_per_class[c] + eps));
      precision.push_back(tpc / (tpc + fpc));
    }
    if (neg_conf.empty()) continue;
    for (int k = 0; k < N; ++k) {
      r[ci][k] = interp(-px[k], neg_conf, recall, 0.0);
      p[ci][k] = interp(-px[k], neg_conf, precision, 1.0);
    }
  }
  std::vector<double> f1(N);
  for (int k = 0; k < N; ++k) {
    double sum = 0;
    for (size_t ci = 0; ci < classes.size(); ++ci) {
      sum += 2 * p[ci][k] * r[ci][k] / (p[ci][k] + r[ci][k] + eps);
    }
    f1[k] = sum / classes.size();
  }
  // smooth(f1, 0.1): box filter of 101 taps over the curve padded with its end values.
  const int nf = static_cast<int>(std::round(N * 0.1 * 2)) / 2 + 1;
  const int pad = nf / 2;
  std::vector<double> padded(N + 2 * pad);
  for (int k = 0; k < pad; ++k) padded[k] = f1.front(), padded[N + pad + k] = f1.back();
  std::copy(f1.begin(), f1.end(), padded.begin() + pad);
  int best = 0;
  double best_value = -1;
  for (int k = 0; k < N; ++k) {
    double s = 0;
    for (int j = 0; j < nf; ++j) s += padded[k + j] / nf;
    if (s > best_value) best_value = s, best = k;
  }
  double psum = 0, rsum = 0;
  for (size_t ci = 0; ci < classes.size(); ++ci) {
    (*p_out)[classes[ci]] = p[ci][best];
    (*r_out)[classes[ci]] = r[ci][best];
    psum += p[ci][best];
    rsum += r[ci][best];
  }
  return {psum / classes.size(), rsum / classes.size()};
}

// Per image, IoU-greedy matching with class equality (ultralytics match_predictions).
void ultralytics_match(const std::vector<const CocoAnnotation*>& gts, std::vector<UltraDet>* dets,
                       const std::vector<const CocoDetection*>& raw) {
  const size_t G = gts.size(), D = raw.size();
  std::vector<double> iou(G * D, 0.0);
  for (size_t g = 0; g < G; ++g) {
    for (size_t d = 0; d < D; ++d) {
      if (gts[g]->category_id != raw[d]->category_id) continue;
      CocoAnnotation plain = *gts[g];
      plain.iscrowd = false;
      iou[g * D + d] = box_iou(*raw[d], plain);
    }
  }
  const auto& thresholds = iou_thresholds();
  for (int t = 0; t < kT; ++t) {
    struct Pair {
      size_t g, d;
      double iou;
    };
    std::vector<Pair> pairs;
    for (size_t g = 0; g < G; ++g) {
      for (size_t d = 0; d < D; ++d) {
        if (iou[g * D + d] >= thresholds[t] && iou[g * D + d] > 0)
          pairs.push_back({g, d, iou[g * D + d]});
      }
    }
    std::stable_sort(pairs.begin(), pairs.end(),
                     [](const Pair& a, const Pair& b) { return a.iou > b.iou; });
    // Unique detections (first = highest IoU), then in detection order unique ground truths.
    std::map<size_t, Pair> by_det;
    for (const Pair& pr : pairs) by_det.emplace(pr.d, pr);
    std::set<size_t> used_gt;
    for (const auto& [d, pr] : by_det) {
      if (used_gt.insert(pr.g).second) (*dets)[d].tp[t] = 1;
    }
  }
}

template <typename T>
T get_field(const nlohmann::json& obj, const char* key, const std::string& where) {
  if (!obj.contains(key)) throw Error(where + ": missing field '" + key + "'");
  try {
    return obj.at(key).get<T>();
  } catch (const nlohmann::json::exception&) {
    throw Error(where + ": field '" + key + "' has the wrong type (" + obj.at(key).dump() + ")");
  }
}

int64_t get_id(const nlohmann::json& obj, const char* key, const std::string& where) {
  if (!obj.contains(key)) throw Error(where + ": missing field '" + key + "'");
  return json_int64(obj.at(key), where + ": field '" + key + "'");
}

std::array<double, 4> get_bbox(const nlohmann::json& obj, const std::string& where) {
  auto bb = get_field<std::vector<double>>(obj, "bbox", where);
  if (bb.size() != 4) throw Error(where + ": 'bbox' must be [x, y, width, height]");
  for (double v : bb) {
    if (!std::isfinite(v)) throw Error(where + ": 'bbox' holds a non-finite number");
  }
  return {bb[0], bb[1], bb[2], bb[3]};
}

nlohmann::json parse_json(const std::string& text, const std::string& what) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw Error(what + ": not valid JSON (" + e.what() + ")");
  }
}

}  // namespace

CocoGroundTruth parse_coco_ground_truth(const std::string& json_text, const std::string& what) {
  nlohmann::json j = parse_json(json_text, what);
  if (!j.is_object()) throw Error(what + ": a COCO ground-truth file is a JSON object");
  for (const char* key : {"images", "annotations", "categories"}) {
    if (!j.contains(key) || !j[key].is_array()) {
      throw Error(what + ": '" + key + "' (a list) is missing: not a COCO instances file");
    }
  }
  CocoGroundTruth gt;
  std::set<int64_t> image_ids, category_ids;
  for (size_t i = 0; i < j["images"].size(); ++i) {
    const auto& im = j["images"][i];
    std::string where = what + ": images[" + std::to_string(i) + "]";
    CocoImage image;
    image.id = get_id(im, "id", where);
    image.file_name = im.value("file_name", "");
    image.width = im.value("width", 0);
    image.height = im.value("height", 0);
    if (!image_ids.insert(image.id).second) {
      throw Error(where + ": image id " + std::to_string(image.id) + " appears twice");
    }
    gt.images.push_back(image);
  }
  for (size_t i = 0; i < j["categories"].size(); ++i) {
    const auto& c = j["categories"][i];
    std::string where = what + ": categories[" + std::to_string(i) + "]";
    CocoCategory cat{get_id(c, "id", where), c.value("name", "")};
    if (!category_ids.insert(cat.id).second) {
      throw Error(where + ": category id " + std::to_string(cat.id) + " appears twice");
    }
    gt.categories.push_back(cat);
  }
  for (size_t i = 0; i < j["annotations"].size(); ++i) {
    const auto& a = j["annotations"][i];
    std::string where = what + ": annotations[" + std::to_string(i) + "]";
    CocoAnnotation ann;
    ann.image_id = get_id(a, "image_id", where);
    ann.category_id = get_id(a, "category_id", where);
    auto bb = get_bbox(a, where);
    ann.x = bb[0], ann.y = bb[1], ann.w = bb[2], ann.h = bb[3];
    if (a.contains("area")) ann.area = get_field<double>(a, "area", where);
    if (a.contains("iscrowd")) ann.iscrowd = get_field<int>(a, "iscrowd", where) != 0;
    if (!image_ids.count(ann.image_id)) {
      throw Error(where + ": image_id " + std::to_string(ann.image_id) + " is not in 'images'");
    }
    if (!category_ids.count(ann.category_id)) {
      throw Error(where + ": category_id " + std::to_string(ann.category_id) +
                  " is not in 'categories'");
    }
    gt.annotations.push_back(ann);
  }
  return gt;
}

CocoGroundTruth load_coco_ground_truth(const std::string& path) {
  return parse_coco_ground_truth(read_file(path), path);
}

std::vector<CocoDetection> parse_coco_detections(const std::string& json_text,
                                                 const std::string& what,
                                                 const CocoGroundTruth& gt) {
  nlohmann::json j = parse_json(json_text, what);
  if (!j.is_array()) {
    throw Error(what +
                ": a COCO results file is a JSON list of {image_id, category_id, bbox, "
                "score}");
  }
  std::set<int64_t> image_ids, category_ids;
  for (const auto& im : gt.images) image_ids.insert(im.id);
  for (const auto& c : gt.categories) category_ids.insert(c.id);
  std::vector<CocoDetection> dets;
  dets.reserve(j.size());
  for (size_t i = 0; i < j.size(); ++i) {
    const auto& r = j[i];
    std::string where = what + ": [" + std::to_string(i) + "]";
    if (!r.is_object()) throw Error(where + ": each result must be an object");
    CocoDetection d;
    d.image_id = get_id(r, "image_id", where);
    d.category_id = get_id(r, "category_id", where);
    auto bb = get_bbox(r, where);
    d.x = bb[0], d.y = bb[1], d.w = bb[2], d.h = bb[3];
    d.score = get_field<double>(r, "score", where);
    if (!image_ids.count(d.image_id)) {
      throw Error(where + ": image_id " + std::to_string(d.image_id) +
                  " is not in the ground truth: results do not correspond to this ground truth");
    }
    if (!category_ids.count(d.category_id)) continue;
    dets.push_back(d);
  }
  return dets;
}

std::vector<CocoDetection> load_coco_detections(const std::string& path,
                                                const CocoGroundTruth& gt) {
  return parse_coco_detections(read_file(path), path, gt);
}

namespace {

// Ground truth and detections per (category, image), in file order; ids sorted and unique.
struct Grouped {
  std::vector<int64_t> img_ids, cat_ids;
  std::unordered_map<int64_t, size_t> cat_index;
  size_t I = 0, K = 0;
  std::vector<std::vector<const CocoAnnotation*>> gts;
  std::vector<std::vector<const CocoDetection*>> dts;
};

std::vector<int64_t> sorted_unique(std::vector<int64_t> ids) {
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

Grouped group(const CocoGroundTruth& gt, const std::vector<CocoDetection>& dets) {
  Grouped g;
  for (const auto& im : gt.images) g.img_ids.push_back(im.id);
  for (const auto& c : gt.categories) g.cat_ids.push_back(c.id);
  g.img_ids = sorted_unique(std::move(g.img_ids));
  g.cat_ids = sorted_unique(std::move(g.cat_ids));
  std::unordered_map<int64_t, size_t> img_index;
  for (size_t i = 0; i < g.img_ids.size(); ++i) img_index[g.img_ids[i]] = i;
  for (size_t k = 0; k < g.cat_ids.size(); ++k) g.cat_index[g.cat_ids[k]] = k;
  g.I = g.img_ids.size();
  g.K = g.cat_ids.size();
  g.gts.resize(g.K * g.I);
  g.dts.resize(g.K * g.I);
  const auto slot = [&](int64_t image_id, int64_t category_id) -> long {
    auto ii = img_index.find(image_id);
    auto kk = g.cat_index.find(category_id);
    if (ii == img_index.end() || kk == g.cat_index.end()) return -1;
    return static_cast<long>(kk->second * g.I + ii->second);
  };
  for (const auto& a : gt.annotations)
    if (long at = slot(a.image_id, a.category_id); at >= 0) g.gts[size_t(at)].push_back(&a);
  for (const auto& d : dets)
    if (long at = slot(d.image_id, d.category_id); at >= 0) g.dts[size_t(at)].push_back(&d);
  return g;
}

// evaluate(): per (category, area, image) with maxDet 100.
std::vector<ImageEval> evaluate_images(const Grouped& gr) {
  const size_t I = gr.I, K = gr.K;
  std::vector<ImageEval> evals(K * kA * I);
  for (size_t k = 0; k < K; ++k) {
    for (size_t i = 0; i < I; ++i) {
      const auto& g = gr.gts[k * I + i];
      auto d = gr.dts[k * I + i];
      if (g.empty() && d.empty()) continue;
      std::stable_sort(d.begin(), d.end(), [](const CocoDetection* a, const CocoDetection* b) {
        return a->score > b->score;
      });
      if (d.size() > static_cast<size_t>(kMaxDets[kM - 1])) d.resize(kMaxDets[kM - 1]);
      std::vector<std::vector<double>> ious(d.size(), std::vector<double>(g.size()));
      for (size_t a = 0; a < d.size(); ++a) {
        for (size_t b = 0; b < g.size(); ++b) ious[a][b] = box_iou(*d[a], *g[b]);
      }
      for (int a = 0; a < kA; ++a) evals[(k * kA + a) * I + i] = evaluate_image(g, d, ious, a);
    }
  }
  return evals;
}

// accumulate() and summarize(): precision [T, R, K, A, M] and recall [T, K, A, M], -1 where a
// (category, area) has no ground truth.
class Accumulated {
 public:
  explicit Accumulated(size_t K)
      : K_(K),
        precision_(static_cast<size_t>(kT) * kR * K * kA * kM, -1.0),
        recall_(static_cast<size_t>(kT) * K * kA * kM, -1.0) {}

  double& P(int t, int r, size_t k, int a, int m) {
    return precision_[(((static_cast<size_t>(t) * kR + r) * K_ + k) * kA + a) * kM + m];
  }
  double& Rc(int t, size_t k, int a, int m) {
    return recall_[((static_cast<size_t>(t) * K_ + k) * kA + a) * kM + m];
  }
  void accumulate(const std::vector<ImageEval>& evals, size_t I, size_t k, int a, int m);

  // Mean over thresholds (or one), recall points and categories (or one); -1 when none.
  double mean_ap(int t_only, int a, int m, long k_only) {
    double sum = 0;
    long n = 0;
    for (int t = 0; t < kT; ++t) {
      if (t_only >= 0 && t != t_only) continue;
      for (int r = 0; r < kR; ++r) {
        for (size_t k = 0; k < K_; ++k) {
          if (k_only >= 0 && static_cast<long>(k) != k_only) continue;
          double v = P(t, r, k, a, m);
          if (v > -1) sum += v, ++n;
        }
      }
    }
    return n ? sum / n : -1.0;
  }
  double mean_ar(int a, int m) {
    double sum = 0;
    long n = 0;
    for (int t = 0; t < kT; ++t) {
      for (size_t k = 0; k < K_; ++k) {
        double v = Rc(t, k, a, m);
        if (v > -1) sum += v, ++n;
      }
    }
    return n ? sum / n : -1.0;
  }

 private:
  size_t K_;
  std::vector<double> precision_, recall_;
};

// One (category, area, maxDet): the precision/recall curve at every IoU threshold.
void Accumulated::accumulate(const std::vector<ImageEval>& evals, size_t I, size_t k, int a,
                             int m) {
  const size_t max_det = kMaxDets[m];
  struct Entry {
    double score;
    const ImageEval* e;
    size_t d;
  };
  std::vector<Entry> entries;
  int npig = 0;
  bool any = false;
  for (size_t i = 0; i < I; ++i) {
    const ImageEval& e = evals[(k * kA + a) * I + i];
    if (!e.present) continue;
    any = true;
    npig += e.non_ignored_gt;
    for (size_t d = 0; d < e.scores.size() && d < max_det; ++d)
      entries.push_back({e.scores[d], &e, d});
  }
  if (!any || npig == 0) return;
  std::stable_sort(entries.begin(), entries.end(),
                   [](const Entry& x, const Entry& y) { return x.score > y.score; });
  const size_t nd = entries.size();
  const auto& rec_thr = recall_thresholds();
  for (int t = 0; t < kT; ++t) {
    std::vector<double> rc(nd), pr(nd);
    double tp = 0, fp = 0;
    for (size_t n = 0; n < nd; ++n) {
      const ImageEval& e = *entries[n].e;
      size_t D = e.scores.size();
      bool matched = e.matched[t * D + entries[n].d];
      bool ignored = e.ignored[t * D + entries[n].d];
      if (!ignored) (matched ? tp : fp) += 1;
      rc[n] = tp / npig;
      pr[n] = tp / (fp + tp + kEps);
    }
    Rc(t, k, a, m) = nd ? rc[nd - 1] : 0;
    for (size_t n = nd; n-- > 1;) {
      if (pr[n] > pr[n - 1]) pr[n - 1] = pr[n];
    }
    for (int r = 0; r < kR; ++r) {
      size_t pos = std::lower_bound(rc.begin(), rc.end(), rec_thr[r]) - rc.begin();
      P(t, r, k, a, m) = pos < nd ? pr[pos] : 0.0;
    }
  }
}

// Per class, plus ultralytics' P and R on the same boxes (crowd ground truth left out).
void add_class_results(const CocoGroundTruth& gt, const Grouped& gr, Accumulated& acc,
                       CocoEvalResult& result) {
  const size_t I = gr.I, K = gr.K;
  std::map<int64_t, std::string> names;
  for (const auto& c : gt.categories) names[c.id] = c.name;
  std::vector<int> instances(K, 0);
  result.classes.resize(K);
  std::vector<UltraDet> ultra;
  for (size_t i = 0; i < I; ++i) {
    std::vector<const CocoAnnotation*> g;
    std::vector<const CocoDetection*> d;
    for (size_t k = 0; k < K; ++k) {
      int before = static_cast<int>(g.size());
      for (const auto* a : gr.gts[k * I + i]) {
        if (!a->iscrowd) g.push_back(a);
      }
      int added = static_cast<int>(g.size()) - before;
      instances[k] += added;
      result.classes[k].images += added > 0;
      d.insert(d.end(), gr.dts[k * I + i].begin(), gr.dts[k * I + i].end());
    }
    std::stable_sort(d.begin(), d.end(), [](const CocoDetection* a, const CocoDetection* b) {
      return a->score > b->score;
    });
    std::vector<UltraDet> image_dets;
    for (const auto* det : d) {
      image_dets.push_back({static_cast<int>(gr.cat_index.at(det->category_id)), det->score, {}});
    }
    ultralytics_match(g, &image_dets, d);
    ultra.insert(ultra.end(), image_dets.begin(), image_dets.end());
    result.instances += static_cast<int>(g.size());
  }
  std::vector<double> cls_p, cls_r;
  auto pr = ultralytics_pr(ultra, instances, &cls_p, &cls_r);
  result.precision = pr.first;
  result.recall = pr.second;
  for (size_t k = 0; k < K; ++k) {
    CocoClassResult& c = result.classes[k];
    c.category_id = gr.cat_ids[k];
    c.name = names[gr.cat_ids[k]];
    c.instances = instances[k];
    c.ap = acc.mean_ap(-1, 0, 2, static_cast<long>(k));
    c.ap50 = acc.mean_ap(0, 0, 2, static_cast<long>(k));
    c.ap75 = acc.mean_ap(5, 0, 2, static_cast<long>(k));
    c.precision = cls_p[k];
    c.recall = cls_r[k];
  }
}

}  // namespace

CocoEvalResult evaluate_coco(const CocoGroundTruth& gt, const std::vector<CocoDetection>& dets) {
  const Grouped gr = group(gt, dets);
  const std::vector<ImageEval> evals = evaluate_images(gr);
  Accumulated acc(gr.K);
  for (size_t k = 0; k < gr.K; ++k)
    for (int a = 0; a < kA; ++a)
      for (int m = 0; m < kM; ++m) acc.accumulate(evals, gr.I, k, a, m);
  CocoEvalResult result;
  result.stats = {acc.mean_ap(-1, 0, 2, -1), acc.mean_ap(0, 0, 2, -1),  acc.mean_ap(5, 0, 2, -1),
                  acc.mean_ap(-1, 1, 2, -1), acc.mean_ap(-1, 2, 2, -1), acc.mean_ap(-1, 3, 2, -1),
                  acc.mean_ar(0, 0),         acc.mean_ar(0, 1),         acc.mean_ar(0, 2),
                  acc.mean_ar(1, 2),         acc.mean_ar(2, 2),         acc.mean_ar(3, 2)};
  add_class_results(gt, gr, acc, result);
  result.images = static_cast<int>(gr.I);
  return result;
}

std::string format_coco_summary(const CocoEvalResult& result) {
  struct Line {
    bool ap;
    const char* iou;
    const char* area;
    int max_dets;
  };
  static const Line kLines[12] = {
      {true, "0.50:0.95", "all", 100},     {true, "0.50", "all", 100},
      {true, "0.75", "all", 100},          {true, "0.50:0.95", "small", 100},
      {true, "0.50:0.95", "medium", 100},  {true, "0.50:0.95", "large", 100},
      {false, "0.50:0.95", "all", 1},      {false, "0.50:0.95", "all", 10},
      {false, "0.50:0.95", "all", 100},    {false, "0.50:0.95", "small", 100},
      {false, "0.50:0.95", "medium", 100}, {false, "0.50:0.95", "large", 100}};
  std::string out;
  char line[160];
  for (int i = 0; i < 12; ++i) {
    const Line& l = kLines[i];
    std::snprintf(line, sizeof line, " %-18s %s @[ IoU=%-9s | area=%6s | maxDets=%3d ] = %0.3f\n",
                  l.ap ? "Average Precision" : "Average Recall", l.ap ? "(AP)" : "(AR)", l.iou,
                  l.area, l.max_dets, result.stats[i]);
    out += line;
  }
  return out;
}

std::string format_detection_table(const CocoEvalResult& result) {
  std::string out;
  char line[256];
  std::snprintf(line, sizeof line, "%22s%11s%11s%11s%11s%11s%11s\n", "Class", "Images", "Instances",
                "P", "R", "mAP50", "mAP50-95");
  out += line;
  auto clamp0 = [](double v) { return v < 0 ? 0.0 : v; };
  std::snprintf(line, sizeof line, "%22s%11d%11d%11.3g%11.3g%11.3g%11.3g\n", "all", result.images,
                result.instances, result.precision, result.recall, clamp0(result.map50()),
                clamp0(result.map50_95()));
  out += line;
  for (const CocoClassResult& c : result.classes) {
    if (c.instances == 0) continue;
    std::snprintf(line, sizeof line, "%22s%11d%11d%11.3g%11.3g%11.3g%11.3g\n", c.name.c_str(),
                  c.images, c.instances, c.precision, c.recall, clamp0(c.ap50), clamp0(c.ap));
    out += line;
  }
  return out;
}

DetectionEvaluator::DetectionEvaluator(std::vector<std::string> class_names) {
  for (size_t c = 0; c < class_names.size(); ++c) {
    gt_.categories.push_back({static_cast<int64_t>(c), class_names[c]});
  }
}

void DetectionEvaluator::add_image(const std::vector<EvalBox>& ground_truth,
                                   const std::vector<EvalBox>& detections) {
  int64_t id = static_cast<int64_t>(gt_.images.size());
  gt_.images.push_back({id, "", 0, 0});
  const int64_t nc = static_cast<int64_t>(gt_.categories.size());
  for (const EvalBox& b : ground_truth) {
    if (b.cls < 0 || b.cls >= nc) {
      throw Error("evaluation: ground-truth class " + std::to_string(b.cls) + " is not in 0.." +
                  std::to_string(nc - 1));
    }
    CocoAnnotation a;
    a.image_id = id;
    a.category_id = b.cls;
    a.x = b.x0, a.y = b.y0, a.w = double(b.x1) - b.x0, a.h = double(b.y1) - b.y0;
    a.iscrowd = b.crowd;
    gt_.annotations.push_back(a);
  }
  for (const EvalBox& b : detections) {
    if (b.cls < 0 || b.cls >= nc) continue;  // as pycocotools: unknown categories are dropped
    dets_.push_back({id, b.cls, b.x0, b.y0, double(b.x1) - b.x0, double(b.y1) - b.y0, b.score});
  }
}

CocoEvalResult DetectionEvaluator::evaluate() const {
  return evaluate_coco(gt_, dets_);
}

}  // namespace mixnas::eval
