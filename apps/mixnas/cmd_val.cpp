// mixnas val: COCO mAP of a trained model on a dataset's val split, or of COCO result files.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "apps/mixnas/commands.h"
#include "apps/mixnas/prediction_files.h"
#include "core/error.h"
#include "core/log.h"
#include "core/progress.h"
#include "core/run_dir.h"
#include "core/schemas.h"
#include "datasets/dataset.h"
#include "datasets/image.h"
#include "deploy/runtime/session.h"
#include "evaluators/coco_eval.h"
#include "supernet/checkpoint.h"
#include "training/trainer.h"

namespace mixnas::cli {
namespace fs = std::filesystem;

namespace {

constexpr const char* kValUsage = R"(
  mixnas val WEIGHTS.pt data=DATA.yaml [key=value ...]
  mixnas val RUN_DIR [key=value ...]       runs/train/NAME: its args.yaml and weights/best.pt
  mixnas val MODEL.mxr data=DATA.yaml [key=value ...]
                                           the exported package, run by mixnas' runtime
  mixnas val CONFIG.yaml [weights=PATH] [key=value ...]
                                           a train config; weights default to the config's run,
                                           runs/train/<name>/weights/best.pt
  mixnas val --coco-gt GT.json --coco-dt DT.json

Keys are those of a train config: data, nc, imgsz, val.conf, val.iou, val.max_det, train.batch,
train.workers, threads. Prints the table Class Images Instances P R mAP50 mAP50-95 (a row `all`,
then one per class), then `mAP50-95=<x> mAP50=<x>`. --save-json writes the detections as COCO results into
runs/val/<name>/predictions.json (image_id = file stem, category_id = class index).
A package runs at its own input size (imgsz is ignored) with val.conf, val.iou, val.max_det.
Exit status: 0 ok, 1 bad input (no data, classes that do not match the model), 2 the weights file
does not exist.)";

struct ValArgs {
  std::vector<std::string> words;  // MODEL [key=value ...]
  std::string coco_gt;
  std::string coco_dt;
  bool save_json = false;
  std::string name = "exp";
  bool exist_ok = false;
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

std::vector<PredictedBox> predicted(const std::vector<eval::EvalBox>& boxes) {
  std::vector<PredictedBox> out;
  for (const auto& b : boxes) out.push_back({b.x0, b.y0, b.x1, b.y1, b.score, b.cls});
  return out;
}

// --save-json: the detections of every val image as COCO results in runs/val/<name>/.
void save_predictions(const ValArgs& a, const data::DetectionSplit& val,
                      const std::vector<std::vector<eval::EvalBox>>& detections) {
  CocoResultsWriter json;
  for (size_t i = 0; i < val.size(); ++i)
    json.add(val.samples()[i].image_path, predicted(detections.at(i)));
  const std::string run = make_run_dir("val", a.name, a.exist_ok);
  const std::string path = (fs::path(run) / "predictions.json").string();
  json.write(path);
  log::info("saved ", json.size(), " detections to ", path);
}

// The detections of a package on every val image: the runtime's decoded table, then NMS at val's
// thresholds (not the package's stored ones: mAP wants the low-score tail), mapped back to the
// image.
std::vector<std::vector<eval::EvalBox>> run_package(const std::string& mxr,
                                                    const data::DetectionSplit& val,
                                                    const training::TrainOptions& options) {
  auto model = rt::Model::load(mxr);
  const rt::Graph& g = model->graph();
  if (g.output.decode == rt::DecodeKind::kNone || g.output.detections < 1)
    throw Error(mxr + ": the package has no detection head output to validate");
  // The decoded table [rows, 4 + nc] is the output just before the NMS detections.
  const int table = g.output.tensors[size_t(g.output.detections - 1)];
  const auto& shape = g.tensors[size_t(table)].shape;
  if (shape.size() != 2 || shape[1] != 4 + int(g.output.class_names.size()) ||
      g.tensors[size_t(table)].bits != 32)
    throw Error(mxr +
                ": the output before the NMS detections is not the decoded table [rows, 4 + " +
                "nc] of floats; re-export the package with this mixnas");
  rt::SessionOptions so;
  so.threads = std::max(1, options.threads);
  so.head = rt::HeadMemory::kTable;  // the whole decoded table: NMS at val's own thresholds
  rt::Session session(model, so);
  rt::NmsAttrs nms;
  nms.score_threshold = options.val_conf;
  nms.iou_threshold = options.val_iou;
  nms.max_detections = options.max_det;
  nms.class_aware = true;
  std::vector<std::vector<eval::EvalBox>> out(val.size());
  Progress progress("val", int64_t(val.size()), "image");
  for (size_t i = 0; i < val.size(); ++i) {
    data::Image img = data::load_image(val.samples()[i].image_path);
    const rt::LetterboxInfo lb =
        session.set_input_image({img.pixels.data(), img.width, img.height, img.width * 3});
    session.run_graph();
    const std::vector<uint8_t> bytes = session.tensor_bytes(table);
    const float* rows = reinterpret_cast<const float*>(bytes.data());
    for (const rt::Detection& d : rt::nms(rows, shape[0], shape[1], nms)) {
      const rt::Detection o = rt::map_to_original(d, lb);
      out[i].push_back({o.class_id, o.x1, o.y1, o.x2, o.y2, o.score, false});
    }
    progress.advance();
  }
  progress.finish();
  return out;
}

// COCO mAP of the package's detections against the split's labels.
eval::CocoEvalResult evaluate_detections(const data::DetectionSplit& val,
                                         const std::vector<std::vector<eval::EvalBox>>& dets) {
  eval::DetectionEvaluator evaluator(val.names());
  for (size_t i = 0; i < val.size(); ++i) {
    const data::Sample& s = val.samples()[i];
    std::vector<eval::EvalBox> gt;
    for (const auto& b : s.boxes)
      gt.push_back({b.cls, (b.cx - b.w / 2) * s.width, (b.cy - b.h / 2) * s.height,
                    (b.cx + b.w / 2) * s.width, (b.cy + b.h / 2) * s.height, 1.0f, false});
    evaluator.add_image(gt, dets[i]);
  }
  return evaluator.evaluate();
}

int validate_model(const ValArgs& a) {
  const std::vector<std::string>& words = a.words;
  ModelSource source = resolve_model_source(words);
  const config::Config& cfg = source.cfg;
  if (!fs::exists(source.weights)) {
    log::error(source.weights + ": no such weights file (train first, or give weights=PATH)");
    return 2;
  }
  const std::string data_path = cfg.resolve_path("data");
  training::TrainOptions options;
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
  const bool package = fs::path(source.weights).extension() == ".mxr";
  if (package) {
    auto model = rt::Model::load(source.weights);
    const auto& names = model->graph().output.class_names;
    if (int(names.size()) != dataset.num_classes())
      throw Error(source.weights + ": the package detects " + std::to_string(names.size()) +
                  " classes but " + data_path + " names " + std::to_string(dataset.num_classes()) +
                  "; validate on the dataset the model was trained on");
    data::DetectionSplit val = data::DetectionSplit::load(dataset, "val");
    log::info(val.report().summary());
    log::info("validating ", source.weights, " (mixnas runtime, ", model->graph().input.width, "x",
              model->graph().input.height, ") on ", data_path, " (val, ", val.size(), " images)");
    const auto dets = run_package(source.weights, val, options);
    const eval::CocoEvalResult coco = evaluate_detections(val, dets);
    std::printf("%s", eval::format_detection_table(coco).c_str());
    std::printf("mAP50-95=%.4f mAP50=%.4f\n", coco.map50_95(), coco.map50());
    if (a.save_json) save_predictions(a, val, dets);
    return 0;
  }
  training::set_torch_threads(options.threads);
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
  training::ValResult r = training::validate(model, val, options, /*with_loss=*/false);
  log::info("speed: ", 1000.0 * r.seconds / static_cast<double>(std::max<size_t>(1, val.size())),
            " ms per image (loading, inference and NMS)");
  std::printf("%s", eval::format_detection_table(r.coco).c_str());
  std::printf("mAP50-95=%.4f mAP50=%.4f\n", r.coco.map50_95(), r.coco.map50());
  if (a.save_json) save_predictions(a, val, r.detections);
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
  cmd->add_flag("--save-json", a->save_json,
                "Write the detections as COCO results to runs/val/<name>/predictions.json");
  cmd->add_option("--name", a->name, "Run name for --save-json: runs/val/<name>")
      ->capture_default_str();
  cmd->add_flag("--exist-ok", a->exist_ok, "Reuse runs/val/<name>");
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
      return validate_model(*a);
    }
    if (!a->words.empty()) {
      throw Error("mixnas val: give either a model or --coco-gt/--coco-dt, not both");
    }
    return validate_files(a->coco_gt, a->coco_dt);
  };
}

}  // namespace mixnas::cli
