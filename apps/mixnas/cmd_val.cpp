// mixnas val: COCO-exact evaluation of result files (--coco-gt/--coco-dt); model mode later.
#include <cstdio>
#include <memory>
#include <string>

#include "apps/mixnas/commands.h"
#include "core/error.h"
#include "core/log.h"
#include "evaluators/coco_eval.h"

namespace mixnas::cli {

namespace {
struct ValArgs {
  std::string model;  // CONFIG or WEIGHTS
  std::string coco_gt;
  std::string coco_dt;
};
}  // namespace

Runner add_val_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "val", "Evaluate a model, or COCO result files (--coco-gt GT.json --coco-dt DT.json)");
  auto a = std::make_shared<ValArgs>();
  cmd->add_option("model", a->model, "Run config or weights to evaluate (not implemented yet)");
  auto* gt = cmd->add_option("--coco-gt", a->coco_gt, "COCO instances json (ground truth)");
  auto* dt = cmd->add_option("--coco-dt", a->coco_dt, "COCO results json (detections)");
  gt->needs(dt);
  dt->needs(gt);
  return [a]() -> int {
    if (a->coco_gt.empty()) {
      if (a->model.empty()) {
        throw Error(
            "mixnas val: give a model (CONFIG or WEIGHTS) or --coco-gt GT.json --coco-dt "
            "DT.json");
      }
      return not_implemented("val " + a->model, "issue 6: training");
    }
    if (!a->model.empty()) {
      throw Error("mixnas val: give either a model or --coco-gt/--coco-dt, not both");
    }
    eval::CocoGroundTruth gt = eval::load_coco_ground_truth(a->coco_gt);
    std::vector<eval::CocoDetection> dets = eval::load_coco_detections(a->coco_dt, gt);
    log::info("evaluating ", dets.size(), " detections on ", gt.images.size(), " images, ",
              gt.categories.size(), " categories (pycocotools rules, bbox)");
    eval::CocoEvalResult r = eval::evaluate_coco(gt, dets);
    std::printf("%s\n%s", eval::format_coco_summary(r).c_str(),
                eval::format_detection_table(r).c_str());
    std::printf("mAP50-95=%.4f mAP50=%.4f\n", r.map50_95(), r.map50());
    return 0;
  };
}

}  // namespace mixnas::cli
