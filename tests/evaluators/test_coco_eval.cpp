// COCO evaluation: known answers worked out by hand from pycocotools' rules (cocoeval.py), not
// from this implementation. Notation: rc/pr are the cumulative recall/precision arrays over the
// detections sorted by score (ignored detections included, counting neither TP nor FP), "env" the
// precision envelope from the right, and AP at one IoU threshold = mean over the 101 recall
// thresholds r = 0, .01, ..., 1 of env[first index with rc >= r] (0 when there is none).
#include <catch2/catch.hpp>
#include <string>

#include "core/error.h"
#include "evaluators/coco_eval.h"

using namespace mixnas;
using namespace mixnas::eval;
using Catch::Matchers::Contains;

namespace {

std::string fixture(const std::string& name) {
  return std::string(MIXNAS_TEST_DATA_DIR) + "/coco/" + name;
}

CocoGroundTruth one_image_gt(std::vector<CocoAnnotation> anns, int categories = 1) {
  CocoGroundTruth gt;
  gt.images.push_back({1, "a.jpg", 640, 640});
  for (int c = 1; c <= categories; ++c) gt.categories.push_back({c, "c" + std::to_string(c)});
  gt.annotations = std::move(anns);
  return gt;
}

CocoAnnotation box(int64_t image, int64_t cat, double x, double y, double w, double h) {
  CocoAnnotation a;
  a.image_id = image;
  a.category_id = cat;
  a.x = x, a.y = y, a.w = w, a.h = h;
  return a;
}

CocoDetection det(int64_t image, int64_t cat, double x, double y, double w, double h,
                  double score) {
  return {image, cat, x, y, w, h, score};
}

}  // namespace

TEST_CASE("COCO: a lower-scored duplicate costs nothing", "[coco]") {
  // One GT of area 100 (small). d1 (0.9) is exact: TP at every IoU. d2 (0.8), the same box, finds
  // the GT taken: FP. rc = [1, 1], pr = [1, .5], env = [1, .5]; every recall threshold finds
  // index 0, so AP = 1 at every IoU. Medium and large: the GT is outside the range (ignored),
  // npig = 0, so -1. AR: the final recall is 1 everywhere it is defined.
  auto gt = one_image_gt({box(1, 1, 0, 0, 10, 10)});
  auto r = evaluate_coco(gt, {det(1, 1, 0, 0, 10, 10, 0.9), det(1, 1, 0, 0, 10, 10, 0.8)});
  std::array<double, 12> expected{1, 1, 1, 1, -1, -1, 1, 1, 1, 1, -1, -1};
  for (int i = 0; i < 12; ++i) CHECK(r.stats[i] == Approx(expected[i]).margin(1e-12));
}

TEST_CASE("COCO: a higher-scored false positive halves AP", "[coco]") {
  // d1 (0.9) misses (no overlap): FP; d2 (0.8) exact: TP. rc = [0, 1], pr = [0, .5],
  // env = [.5, .5]. r = 0 finds index 0 (rc 0 >= 0) and r > 0 index 1: AP = .5 at every IoU.
  auto gt = one_image_gt({box(1, 1, 100, 100, 50, 50)});
  auto r = evaluate_coco(gt, {det(1, 1, 0, 0, 20, 20, 0.9), det(1, 1, 100, 100, 50, 50, 0.8)});
  CHECK(r.map50_95() == Approx(0.5).margin(1e-12));
  CHECK(r.map50() == Approx(0.5).margin(1e-12));
  // AR@1 keeps only d1 per image: recall 0. AR@10: 1.
  CHECK(r.stats[6] == Approx(0.0).margin(1e-12));
  CHECK(r.stats[7] == Approx(1.0).margin(1e-12));
  // ultralytics P and R: conf [.9, .8], tp [0, 1]: recall [0, 1], precision [0, .5]. On the
  // 1000-point confidence grid px, R(px) = 1 and P(px) = .5 for px <= .8, so F1 = 2/3 there and
  // lower above .8 (it falls to 0 past .9); the smoothed F1 peaks in the flat part: P = .5, R = 1.
  CHECK(r.precision == Approx(0.5).margin(1e-9));
  CHECK(r.recall == Approx(1.0).margin(1e-9));
  REQUIRE(r.classes.size() == 1);
  CHECK(r.classes[0].precision == Approx(0.5).margin(1e-9));
  CHECK(r.classes[0].instances == 1);
}

TEST_CASE("COCO: equal scores keep file order (stable sort)", "[coco]") {
  auto gt = one_image_gt({box(1, 1, 100, 100, 50, 50)});
  // FP listed first: rc = [0, 1], pr = [0, .5] -> AP .5 (as above).
  auto fp_first =
      evaluate_coco(gt, {det(1, 1, 0, 0, 20, 20, 0.5), det(1, 1, 100, 100, 50, 50, 0.5)});
  CHECK(fp_first.map50_95() == Approx(0.5).margin(1e-12));
  // TP listed first: rc = [1, 1], pr = [1, .5], env [1, .5] -> AP 1.
  auto tp_first =
      evaluate_coco(gt, {det(1, 1, 100, 100, 50, 50, 0.5), det(1, 1, 0, 0, 20, 20, 0.5)});
  CHECK(tp_first.map50_95() == Approx(1.0).margin(1e-12));
}

TEST_CASE("COCO: only the 100 best detections per image and class count", "[coco]") {
  // 100 misses scored .9 and the only hit scored .1: the hit is the 101st and is cut before
  // matching. All 100 kept are FP: rc all 0, pr all 0, so AP = 0 (r = 0 finds pr 0) and AR = 0.
  std::vector<CocoDetection> dets;
  for (int i = 0; i < 100; ++i) dets.push_back(det(1, 1, 300 + i, 0, 5, 5, 0.9));
  dets.push_back(det(1, 1, 0, 0, 50, 50, 0.1));
  auto gt = one_image_gt({box(1, 1, 0, 0, 50, 50)});
  auto r = evaluate_coco(gt, dets);
  CHECK(r.map50_95() == Approx(0.0).margin(1e-12));
  CHECK(r.stats[8] == Approx(0.0).margin(1e-12));
  // With 99 misses the hit is the 100th: rc = [0 x99, 1], pr = [0 x99, .01] -> env all .01 and
  // AP = .01 at every IoU (every threshold r > 0 finds the last index; r = 0 the first, env .01).
  dets.erase(dets.begin());
  auto r2 = evaluate_coco(gt, dets);
  CHECK(r2.map50_95() == Approx(0.01).margin(1e-12));
  CHECK(r2.stats[8] == Approx(1.0).margin(1e-12));
}

TEST_CASE("COCO: IoU thresholds .50:.05:.95 and the partial-overlap ramp", "[coco]") {
  // GT [0,0,100,100]; the detection [0,0,100,72] has IoU 7200/10000 = .72: a TP at .50 ... .70
  // (5 thresholds), a FP (and the GT missed) at .75 ... .95. AP = (5 * 1 + 5 * 0) / 10 = .5;
  // AP50 = 1, AP75 = 0. AR@100 = 5/10 = .5.
  auto gt = one_image_gt({box(1, 1, 0, 0, 100, 100)});
  auto r = evaluate_coco(gt, {det(1, 1, 0, 0, 100, 72, 0.7)});
  CHECK(r.map50_95() == Approx(0.5).margin(1e-12));
  CHECK(r.map50() == Approx(1.0).margin(1e-12));
  CHECK(r.map75() == Approx(0.0).margin(1e-12));
  CHECK(r.stats[8] == Approx(0.5).margin(1e-12));
  // Large area range (GT area 10000 > 96^2): same numbers; small and medium have no GT: -1.
  CHECK(r.stats[5] == Approx(0.5).margin(1e-12));
  CHECK(r.stats[3] == -1);
  CHECK(r.stats[4] == -1);
}

// The fixture of tests/data/coco: 3 images, categories 1 "cat" and 2 "dog".
//   GT cat: gA img1 [0,0,100,100] area 10000 (large); gB img1 [200,200,20,20] area 400 (small);
//           gC img2 [0,0,50,50] area 2500 (medium); gD img2 [100,0,100,100] crowd.
//   GT dog: gE img3 [10,10,40,40] area 1600 (medium).
//   Detections cat: d1 img1 = gA (.9); d2 img1 [204,200,20,20] (.6), IoU with gB
//     = 16*20 / (400+400-320) = 2/3; d3 img2 = gD (.8): crowd IoU = inter/det area = 1;
//     d4 img2 = gC (.7); d5 img2 [120,10,20,20] (.95) inside the crowd box: crowd IoU 1;
//     d6 img3 [0,0,30,30] (.85) where img3 has no cat.
//   Detections dog: d7 img1 [0,0,100,100] (.5) where img1 has no dog; d8 img3 = gE (.4).
//   A detection of category 7 (not in the GT) is dropped.
//
// cat, area all: npig = 3 (gA, gB, gC; the crowd gD is ignored). d3 and d5 match the crowd box and
// are ignored. Score order: d5(ign) d1(TP) d6(FP) d3(ign) d4(TP) d2.
//   IoU .50-.65 (d2 TP): rc = [0, 1/3, 1/3, 1/3, 2/3, 1], pr = [0, 1, .5, .5, 2/3, 3/4],
//     env = [1, 1, .75, .75, .75, .75]; r = 0..0.33 (34 thresholds) -> 1, r = .34..1 (67) -> .75:
//     AP = (34 + 67 * .75) / 101 = 84.25 / 101.
//   IoU .70-.95 (d2 FP): rc = [0, 1/3, 1/3, 1/3, 2/3, 2/3], pr = [0, 1, .5, .5, 2/3, .5],
//     env = [1, 1, 2/3, 2/3, 2/3, .5]; r = 0..0.33 -> 1 (34), r = .34..0.66 -> 2/3 (33), beyond
//     2/3 -> 0: AP = (34 + 22) / 101 = 56 / 101.
//   cat AP = (4 * 84.25 + 6 * 56) / 1010 = 673 / 1010; AP50 = 84.25 / 101; AP75 = 56 / 101.
// dog, area all: d7 (FP) then d8 (TP): rc = [0, 1], pr = [0, .5], env = [.5, .5]: AP = .5.
// stats[0..2] are the means of the two classes.
// Small (area <= 32^2): cat npig = 1 (gB). In img1 d1 matches gA, now ignored -> ignored; img2's
//   GT are all ignored (gC medium, gD crowd) so d5, d3, d4 match ignored GT -> ignored; d6 (area
//   900, small, unmatched) FP. d2 TP at .50-.65: rc = [0,0,0,0,0,1], pr = [0,0,0,0,0,.5] -> AP .5;
//   d2 FP (unmatched, area 400 small) at .70+: AP 0. cat small AP = (4 * .5) / 10 = .2; dog has no
//   small GT (-1): stats[3] = .2.
// Medium: cat npig = 1 (gC): d4 TP; d1 matches gA (ignored); d2 matches gB (ignored) or is
//   unmatched and outside medium (ignored); d6 area 900 outside (ignored); d3, d5 crowd (ignored).
//   rc = [0,0,0,0,1,1], pr = [0,0,0,0,1,1]: AP 1. dog: d7 (area 10000) unmatched and outside
//   medium: ignored; d8 TP: AP 1. stats[4] = 1.
// Large: cat npig = 1 (gA): d1 TP, all others ignored: AP 1. dog: -1. stats[5] = 1.
// AR@100: cat final recall 1 at .50-.65, 2/3 at .70+: (4 + 4) / 10 = .8; dog 1: stats[8] = .9.
// AR@1: first detection per image only: cat d1 (TP), d5 (ign), d6 (FP) -> 1/3; dog d7 (FP), d8
//   (TP) -> 1: stats[6] = 2/3. AR@10 = AR@100 = .9.
// AR small: cat 1 at .50-.65, 0 at .70+ -> .4. AR medium: 1 and 1 -> 1. AR large: cat 1 -> 1.
TEST_CASE("COCO: two classes, crowd, areas, maxDets (fixture files)", "[coco]") {
  auto gt = load_coco_ground_truth(fixture("gt_two_classes.json"));
  auto dets = load_coco_detections(fixture("dt_two_classes.json"), gt);
  CHECK(dets.size() == 8);  // category 7 dropped
  auto r = evaluate_coco(gt, dets);
  const double cat_ap = 673.0 / 1010, cat_ap50 = 84.25 / 101, cat_ap75 = 56.0 / 101;
  std::array<double, 12> expected{(cat_ap + 0.5) / 2,
                                  (cat_ap50 + 0.5) / 2,
                                  (cat_ap75 + 0.5) / 2,
                                  0.2,
                                  1,
                                  1,
                                  2.0 / 3,
                                  0.9,
                                  0.9,
                                  0.4,
                                  1,
                                  1};
  for (int i = 0; i < 12; ++i) {
    INFO("stats[" << i << "]");
    CHECK(r.stats[i] == Approx(expected[i]).margin(1e-9));
  }
  REQUIRE(r.classes.size() == 2);
  CHECK(r.classes[0].name == "cat");
  CHECK(r.classes[0].ap == Approx(cat_ap).margin(1e-9));
  CHECK(r.classes[0].ap50 == Approx(cat_ap50).margin(1e-9));
  CHECK(r.classes[0].ap75 == Approx(cat_ap75).margin(1e-9));
  CHECK(r.classes[0].images == 2);
  CHECK(r.classes[0].instances == 3);  // the crowd box is not an instance
  CHECK(r.classes[1].ap == Approx(0.5).margin(1e-9));
  CHECK(r.classes[1].images == 1);
  CHECK(r.images == 3);
  CHECK(r.instances == 4);

  std::string summary = format_coco_summary(r);
  CHECK_THAT(summary, Contains(" Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | "
                               "maxDets=100 ] = 0.583\n"));
  CHECK_THAT(summary, Contains(" Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | "
                               "maxDets=  1 ] = 0.667\n"));
  CHECK_THAT(summary, Contains(" Average Precision  (AP) @[ IoU=0.75      | area=   all | "
                               "maxDets=100 ] = 0.527\n"));
  std::string table = format_detection_table(r);
  CHECK_THAT(table, Contains("                   all          3          4"));
  CHECK_THAT(table, Contains("                   cat          2          3"));
}

TEST_CASE("COCO: no detections gives 0, a class without GT is left out", "[coco]") {
  auto gt = one_image_gt({box(1, 1, 0, 0, 10, 10)}, 2);
  auto r = evaluate_coco(gt, {});
  CHECK(r.map50_95() == 0);
  CHECK(r.stats[8] == 0);
  REQUIRE(r.classes.size() == 2);
  CHECK(r.classes[1].ap == -1);
  // Only detections of a class without GT: that class is -1 and does not dilute the mean.
  auto r2 = evaluate_coco(gt, {det(1, 1, 0, 0, 10, 10, 0.9), det(1, 2, 0, 0, 10, 10, 0.9)});
  CHECK(r2.map50_95() == Approx(1.0).margin(1e-12));
}

TEST_CASE("DetectionEvaluator: in-memory xyxy boxes give the same numbers", "[coco]") {
  DetectionEvaluator ev({"a", "b"});
  // The "higher-scored false positive" case, then a second image with a crowd box that swallows
  // a detection (ignored) and nothing else: AP stays .5 for class 0.
  ev.add_image({{0, 100, 100, 150, 150}}, {{0, 0, 0, 20, 20, 0.9f}, {0, 100, 100, 150, 150, 0.8f}});
  EvalBox crowd{0, 0, 0, 300, 300};
  crowd.crowd = true;
  ev.add_image({crowd}, {{0, 10, 10, 50, 50, 0.95f}});
  CHECK(ev.images() == 2);
  auto r = ev.evaluate();
  CHECK(r.map50_95() == Approx(0.5).margin(1e-12));
  CHECK(r.classes[0].instances == 1);
  CHECK(r.classes[1].ap == -1);
  CHECK_THROWS_WITH(ev.add_image({{5, 0, 0, 1, 1}}, {}), Contains("class 5"));
}

TEST_CASE("COCO files: defects are named", "[coco]") {
  auto gt = load_coco_ground_truth(fixture("gt_two_classes.json"));
  CHECK_THROWS_WITH(
      parse_coco_detections("[{\"image_id\": 9, \"category_id\": 1, \"bbox\": [0,0,1,1],"
                            " \"score\": 1}]",
                            "dt.json", gt),
      Contains("dt.json: [0]") && Contains("image_id 9 is not in the ground truth"));
  CHECK_THROWS_WITH(
      parse_coco_detections("[{\"image_id\": 1, \"category_id\": 1, \"bbox\": [0,0,1],"
                            " \"score\": 1}]",
                            "dt.json", gt),
      Contains("[x, y, width, height]"));
  CHECK_THROWS_WITH(
      parse_coco_detections("[{\"image_id\": 1, \"category_id\": 1, \"bbox\": [0,0,1,1]}]",
                            "dt.json", gt),
      Contains("missing field 'score'"));
  CHECK_THROWS_WITH(parse_coco_detections("{\"a\": 1}", "dt.json", gt), Contains("JSON list"));
  CHECK_THROWS_WITH(parse_coco_detections("[{", "dt.json", gt), Contains("not valid JSON"));
  CHECK_THROWS_WITH(parse_coco_ground_truth("{\"images\": [], \"categories\": []}", "gt.json"),
                    Contains("'annotations'"));
  CHECK_THROWS_WITH(
      parse_coco_ground_truth("{\"images\": [{\"id\": 1}], \"categories\": [{\"id\": 1}], "
                              "\"annotations\": [{\"image_id\": 1, \"category_id\": 3, "
                              "\"bbox\": [0,0,1,1]}]}",
                              "gt.json"),
      Contains("gt.json: annotations[0]") && Contains("category_id 3"));
  CHECK_THROWS_WITH(load_coco_ground_truth("/nonexistent/gt.json"),
                    Contains("/nonexistent/gt.json"));
}

TEST_CASE("COCO files: an id that is not an integer is named, not truncated", "[coco]") {
  auto gt = load_coco_ground_truth(fixture("gt_two_classes.json"));
  const auto detection = [](const std::string& image_id) {
    return "[{\"image_id\": " + image_id +
           ", \"category_id\": 1, \"bbox\": [0,0,1,1], \"score\": 1}]";
  };
  CHECK_THROWS_WITH(
      parse_coco_detections(detection("1.5"), "dt.json", gt),
      Contains("dt.json: [0]: field 'image_id': expected an integer") && Contains("got 1.5"));
  // 2^70: once INT64_MIN in messages.
  CHECK_THROWS_WITH(parse_coco_detections(detection("1180591620717411303424"), "dt.json", gt),
                    Contains("expected an integer") && !Contains("-9223372036854775808"));
  CHECK_THROWS_WITH(parse_coco_detections(detection("18446744073709551615"), "dt.json", gt),
                    Contains("expected an integer"));
  CHECK_THROWS_WITH(
      parse_coco_ground_truth("{\"images\": [{\"id\": 2.5}], \"categories\": [], "
                              "\"annotations\": []}",
                              "gt.json"),
      Contains("gt.json: images[0]: field 'id': expected an integer") && Contains("got 2.5"));
  // An integral float is the integer (some writers emit 1.0).
  CHECK_NOTHROW(parse_coco_detections(detection("1.0"), "dt.json", gt));
}
