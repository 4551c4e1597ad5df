// `mixnas export WEIGHTS|RUN_DIR [--format mxr,onnx] [--imgsz N] [--onnx-float] [--onnx-raw]
// [--arch FILE]`:
// writes model.mxr, model.onnx and arch.yaml into the run folder (docs/export.md).
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>
#include "apps/mixnas/commands.h"
#include "core/error.h"
#include "core/log.h"
#include "core/text.h"

#include "datasets/dataset.h"
#include "deploy/export/export.h"

namespace mixnas::cli {

namespace {
struct ExportArgs {
  std::string input;
  std::string formats = "mxr,onnx";
  int imgsz = 0;
  bool onnx_float = false;
  bool onnx_raw = false;
  std::string arch;
  std::string names;
  std::string output;
  float conf = 0.25f, iou = 0.45f;
  int max_det = 300;
};

namespace fs = std::filesystem;

// The args.yaml of the run holding `dir`: its own, else the nearest ancestor's (a baseline or
// finetune folder inside runs/search/<name>/ has none; the search run's args.yaml is its recipe).
fs::path run_args(const fs::path& dir) {
  fs::path d = fs::absolute(dir).lexically_normal();
  for (int up = 0; up < 4 && !d.empty(); ++up, d = d.parent_path()) {
    if (fs::exists(d / "args.yaml")) return d / "args.yaml";
    if (d == d.parent_path()) break;
  }
  return {};
}

// imgsz and class names of the run that trained the weights (its args.yaml), when known.
void defaults_from_run(const fs::path& run_dir, int* imgsz, std::vector<std::string>* names) {
  const fs::path args = run_args(run_dir);
  if (args.empty()) return;
  log::info("export: defaults from ", args.string());
  try {
    YAML::Node root = YAML::LoadFile(args.string());
    for (const char* section : {"train", "finetune", "search"})
      if (*imgsz == 0 && root[section] && root[section]["imgsz"])
        *imgsz = root[section]["imgsz"].as<int>();
    if (*imgsz == 0 && root["imgsz"]) *imgsz = root["imgsz"].as<int>();
    if (names->empty() && root["data"]) {
      fs::path data = root["data"].as<std::string>();
      if (fs::exists(data)) *names = data::load_dataset_config(data.string()).names;
    }
  } catch (const std::exception& e) {
    log::warn(args.string(), ": not used for export defaults (", e.what(), ")");
  }
}
}  // namespace

Runner add_export_command(CLI::App& app) {
  auto args = std::make_shared<ExportArgs>();
  auto* cmd = app.add_subcommand("export", "Export trained weights to .mxr, ONNX and arch.yaml");
  cmd->add_option("weights", args->input,
                  "Weights file (runs/.../weights/best.pt) or a run folder holding weights/")
      ->required();
  cmd->add_option("--format", args->formats,
                  "Comma-separated formats: mxr, onnx (arch.yaml always)");
  cmd->add_option("--imgsz", args->imgsz,
                  "Network input size (default: the run's imgsz from args.yaml, else 640)");
  cmd->add_flag("--onnx-float", args->onnx_float,
                "ONNX with float weights already on their grid and no Q/DQ nodes");
  cmd->add_flag("--onnx-raw", args->onnx_raw,
                "ONNX with the raw head outputs per level instead of the decoded output0");
  cmd->add_option("--arch", args->arch,
                  "Architecture (arch.yaml or model YAML) instead of the one in the checkpoint");
  cmd->add_option("--names", args->names,
                  "Comma-separated class names (default: the run's dataset)");
  cmd->add_option("--output", args->output, "Output folder (default: the run folder)");
  cmd->add_option("--conf", args->conf, "NMS score threshold stored in the .mxr");
  cmd->add_option("--iou", args->iou, "NMS IoU threshold stored in the .mxr");
  cmd->add_option("--max-det", args->max_det, "Maximum detections per image");
  return [args]() -> int {
    exporter::ExportRequest req;
    req.input = args->input;
    req.formats.clear();
    for (const std::string& f : text::split(args->formats, ','))
      if (!text::trim(f).empty()) req.formats.push_back(text::trim(f));
    if (req.formats.empty())
      throw Error("mixnas export: --format lists no format (valid: mxr, onnx)");
    if (!args->arch.empty()) req.arch = args->arch;
    req.output_dir = args->output;
    req.onnx.float_weights = args->onnx_float;
    req.onnx.decoded = !args->onnx_raw;
    int imgsz = args->imgsz;
    std::vector<std::string> names;
    if (!args->names.empty())
      for (const std::string& n : text::split(args->names, ',')) names.push_back(text::trim(n));
    fs::path run_dir = args->input;
    if (fs::exists(run_dir) && !fs::is_directory(run_dir)) {
      run_dir = fs::absolute(run_dir).parent_path();
      if (run_dir.filename() == "weights") run_dir = run_dir.parent_path();
    }
    defaults_from_run(run_dir, &imgsz, &names);
    if (imgsz == 0) imgsz = 640;
    if (imgsz < 32 || imgsz % 32)
      throw Error("mixnas export: --imgsz " + std::to_string(imgsz) + " must be a multiple of 32");
    req.options.imgsz = imgsz;
    req.options.class_names = names;
    req.options.conf = args->conf;
    req.options.iou = args->iou;
    req.options.max_det = args->max_det;
    exporter::ExportResult result = exporter::run_export(req);
    for (const std::string& f : result.files) std::printf("%s\n", f.c_str());
    return 0;
  };
}

}  // namespace mixnas::cli
