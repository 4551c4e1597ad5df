// mixnas val: COCO mAP of a trained model on a dataset's val split, or of COCO result files.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "apps/mixnas/commands.h"
#include "core/error.h"
#include "core/log.h"
#include "core/schemas.h"
#include "datasets/dataset.h"
#include "evaluators/coco_eval.h"
#include "search/trainer.h"

namespace mixnas::cli {
namespace fs = std::filesystem;

namespace {

constexpr const char* kValUsage = R"(
  mixnas val WEIGHTS.pt data=DATA.yaml [key=value ...]
  mixnas val RUN_DIR [key=value ...]       runs/train/NAME: its args.yaml and weights/best.pt
  mixnas val CONFIG.yaml [weights=PATH] [key=value ...]
                                           a train config; weights default to the config's run,
                                           runs/train/<name>/weights/best.pt
  mixnas val --coco-gt GT.json --coco-dt DT.json

Keys are those of a train config: data, nc, imgsz, val.conf, val.iou, val.max_det, train.batch,
train.workers, threads. Prints the table Class Images Instances P R mAP50 mAP50-95 (a row `all`,
then one per class), then `mAP50-95=<x> mAP50=<x>`.
Exit status: 0 ok, 1 bad input (no data, classes that do not match the model), 2 the weights file
does not exist.)";

struct ValArgs {
  std::vector<std::string> words;  // MODEL [key=value ...]
  std::string coco_gt;
  std::string coco_dt;
};

bool is_override(const std::string& word) {
  return word.find('=') != std::string::npos;
}

// What `mixnas val MODEL ...` evaluates: the weights file and the config holding data and val keys.
struct ModelSource {
  std::string weights;
  config::Config cfg;
};

ModelSource resolve_model_source(const std::vector<std::string>& words) {
  const std::string& model = words.front();
  // weights=PATH is val's own word; every other one overrides a train-config key.
  std::string weights;
  ConfigArgs config_args;
  for (size_t i = 1; i < words.size(); ++i) {
    if (words[i].rfind("weights=", 0) == 0) {
      weights = words[i].substr(8);
    } else if (!is_override(words[i])) {
      throw Error("mixnas val: unexpected word '" + words[i] +
                  "' (after the model only key=value overrides may follow)");
    } else {
      config_args.words.push_back(words[i]);
    }
  }
  const fs::path path(model);
  const std::string ext = path.extension().string();
  if (fs::is_directory(path)) {
    // A run folder of `mixnas train`: the config it ran with and its best weights.
    const fs::path args = path / "args.yaml";
    if (!fs::exists(args)) {
      throw Error(model +
                  ": a folder without args.yaml is not a training run (give WEIGHTS.pt "
                  "data=DATA.yaml instead)");
    }
    config_args.words.insert(config_args.words.begin(), args.string());
    if (weights.empty()) weights = (path / "weights" / "best.pt").string();
  } else if (ext == ".yaml" || ext == ".yml") {
    config_args.words.insert(config_args.words.begin(), model);
  } else {
    if (!weights.empty()) {
      throw Error("mixnas val: weights given twice (" + model + " and weights=" + weights + ")");
    }
    weights = model;
    const bool has_data =
        std::any_of(config_args.words.begin(), config_args.words.end(),
                    [](const std::string& w) { return w.rfind("data=", 0) == 0; });
    if (!has_data) {
      throw Error(
          "mixnas val: no dataset; give data=DATA.yaml with the weights (its val split "
          "is evaluated)");
    }
    // The architecture comes with the weights; the train schema still requires its model key.
    config_args.words.insert(config_args.words.begin(), "model=" + weights);
  }
  ModelSource source{weights, load_config_args(config_args, config::train_schema())};
  if (source.weights.empty()) {
    // A train config without weights=: the weights its own run wrote.
    source.weights =
        (fs::path("runs") / "train" / source.cfg.get_string("name") / "weights" / "best.pt")
            .string();
  }
  return source;
}

int validate_model(const std::vector<std::string>& words) {
  ModelSource source = resolve_model_source(words);
  const config::Config& cfg = source.cfg;
  if (!fs::exists(source.weights)) {
    log::error(source.weights + ": no such weights file (train first, or give weights=PATH)");
    return 2;
  }
  const std::string data_path = cfg.resolve_path("data");
  search::TrainOptions options;
  options.imgsz = static_cast<int>(cfg.get_int("imgsz"));
  options.batch = static_cast<int>(cfg.get_int("train.batch"));
  options.workers = static_cast<int>(cfg.get_int("train.workers"));
  options.threads = static_cast<int>(cfg.get_int("threads"));
  options.val_conf = cfg.get_float("val.conf");
  options.val_iou = cfg.get_float("val.iou");
  options.max_det = static_cast<int>(cfg.get_int("val.max_det"));
  if (options.imgsz <= 0 || options.imgsz % 32 != 0) {
    throw Error(cfg.where("imgsz").str() + ": 'imgsz' must be a positive multiple of 32 (got " +
                std::to_string(options.imgsz) + ")");
  }
  if (options.batch <= 0)
    throw Error(cfg.where("train.batch").str() + ": 'train.batch' must be positive");

  data::DatasetConfig dataset = data::load_dataset_config(data_path);
  if (cfg.get_int("nc") > 0 && cfg.get_int("nc") != dataset.num_classes()) {
    throw Error(cfg.where("nc").str() + ": nc=" + std::to_string(cfg.get_int("nc")) + " but " +
                data_path + " names " + std::to_string(dataset.num_classes()) + " classes");
  }
  search::set_torch_threads(options.threads);
  supernet::TrainedModel trained = supernet::load_trained_model(source.weights);
  supernet::YoloModel model = trained.model;
  const std::vector<std::string>& trained_names = trained.class_names;
  if (model->nc() != dataset.num_classes()) {
    throw Error(source.weights + ": the model detects " + std::to_string(model->nc()) +
                " classes but " + data_path + " names " + std::to_string(dataset.num_classes()) +
                "; validate on the dataset the model was trained on");
  }
  if (!trained_names.empty() && trained_names != dataset.names) {
    log::warn(source.weights, ": class names differ from those of ", data_path,
              "; rows are named after the dataset");
  }
  data::DetectionSplit val = data::DetectionSplit::load(dataset, "val");
  log::info(val.report().summary());
  log::info("validating ", source.weights, " on ", data_path, " (val, ", val.size(),
            " images) at imgsz=", options.imgsz);
  search::ValResult r = search::validate(model, val, options, /*with_loss=*/false);
  log::info("speed: ", 1000.0 * r.seconds / static_cast<double>(std::max<size_t>(1, val.size())),
            " ms per image (loading, inference and NMS)");
  std::printf("%s", eval::format_detection_table(r.coco).c_str());
  std::printf("mAP50-95=%.4f mAP50=%.4f\n", r.coco.map50_95(), r.coco.map50());
  return 0;
}

int validate_files(const std::string& gt_path, const std::string& dt_path) {
  eval::CocoGroundTruth gt = eval::load_coco_ground_truth(gt_path);
  std::vector<eval::CocoDetection> dets = eval::load_coco_detections(dt_path, gt);
  log::info("evaluating ", dets.size(), " detections on ", gt.images.size(), " images, ",
            gt.categories.size(), " categories (pycocotools rules, bbox)");
  eval::CocoEvalResult r = eval::evaluate_coco(gt, dets);
  std::printf("%s\n%s", eval::format_coco_summary(r).c_str(),
              eval::format_detection_table(r).c_str());
  std::printf("mAP50-95=%.4f mAP50=%.4f\n", r.map50_95(), r.map50());
  return 0;
}

}  // namespace

Runner add_val_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "val", "Validate a model on the val split of a dataset (COCO mAP), or COCO result files");
  cmd->footer(kValUsage);
  auto a = std::make_shared<ValArgs>();
  cmd->add_option("model", a->words,
                  "WEIGHTS.pt, RUN_DIR or CONFIG.yaml, then key=value overrides (data=DATA.yaml, "
                  "weights=PATH, imgsz=160, val.conf=0.001)");
  auto* gt = cmd->add_option("--coco-gt", a->coco_gt, "COCO instances json (ground truth)");
  auto* dt = cmd->add_option("--coco-dt", a->coco_dt, "COCO results json (detections)");
  gt->needs(dt);
  dt->needs(gt);
  return [a]() -> int {
    if (a->coco_gt.empty()) {
      if (a->words.empty()) {
        throw Error(
            "mixnas val: give a model (WEIGHTS.pt data=DATA.yaml, RUN_DIR or CONFIG.yaml) or "
            "--coco-gt GT.json --coco-dt DT.json");
      }
      if (is_override(a->words.front())) {
        throw Error(
            "mixnas val: the first word must be the model (WEIGHTS.pt, RUN_DIR or "
            "CONFIG.yaml), not '" +
            a->words.front() + "'");
      }
      return validate_model(a->words);
    }
    if (!a->words.empty()) {
      throw Error("mixnas val: give either a model or --coco-gt/--coco-dt, not both");
    }
    return validate_files(a->coco_gt, a->coco_dt);
  };
}

}  // namespace mixnas::cli
