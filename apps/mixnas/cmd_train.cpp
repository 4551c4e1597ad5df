// mixnas train CONFIG [key=value ...] [--resume]: trains a fixed model into runs/train/<name>.
#include <filesystem>
#include <memory>

#include "apps/mixnas/commands.h"
#include "apps/mixnas/launch.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/log.h"
#include "core/run_dir.h"
#include "core/schemas.h"
#include "datasets/dataset.h"
#include "supernet/model.h"
#include "training/distributed.h"
#include "training/trainer.h"

namespace mixnas::cli {
namespace fs = std::filesystem;

supernet::YoloModel build_fixed_model(const std::string& model_path, int nc) {
  if (!fs::exists(model_path)) {
    // ultralytics' scale rule (yolov8n.yaml -> yolov8.yaml at scale n) is the builder's job.
    std::string stem = fs::path(model_path).stem().string();
    if (stem.empty()) throw Error("model '" + model_path + "' not found");
  }
  std::string text;
  if (fs::exists(model_path)) text = read_file(model_path);
  if (text.find("mixnas-arch/1") != std::string::npos) {
    supernet::ArchFile arch = supernet::read_arch_yaml(model_path);
    if (nc > 0 && arch.nc != nc) {
      throw Error(model_path + ": the architecture has nc=" + std::to_string(arch.nc) +
                  " but the dataset has " + std::to_string(nc) + " classes");
    }
    return supernet::build_from_arch(arch);
  }
  supernet::BuildOptions bo;
  bo.nc = nc;
  return supernet::build_model(model_path, bo);
}

namespace {
void print_results(const training::Trainer& trainer, const std::string& run) {
  const auto& h = trainer.history();
  if (h.empty()) return;
  std::printf("results: %s/results.csv, weights: %s/weights/best.pt\n", run.c_str(), run.c_str());
  std::printf("final mAP50=%.4f mAP50-95=%.4f best_fitness=%.4f\n", h.back().map50,
              h.back().map50_95, trainer.best_fitness());
}
}  // namespace

Runner add_train_command(CLI::App& app) {
  auto* cmd =
      app.add_subcommand("train", "Train a fixed model (model YAML or arch.yaml) from a config");
  auto words = std::make_shared<ConfigArgs>();
  auto resume = std::make_shared<bool>(false);
  auto nproc = std::make_shared<int>(1);
  add_config_args(cmd, *words);
  add_nproc_option(cmd, *nproc);
  cmd->add_flag("--resume", *resume,
                "Continue runs/train/<name> from weights/last.pt (after a crash or kill)");
  return [words, resume, nproc] {
    if (std::optional<int> launched = launch_or_join(*nproc)) return *launched;
    config::Config cfg = load_config_args(*words, config::train_schema());
    training::TrainOptions options = training::TrainOptions::from_config(cfg, "train");
    data::DatasetConfig dataset = data::load_dataset_config(cfg.resolve_path("data"));
    int nc = cfg.get_int("nc") > 0 ? static_cast<int>(cfg.get_int("nc")) : dataset.num_classes();
    data::DetectionSplit train = data::DetectionSplit::load(dataset, "train");
    data::DetectionSplit val = data::DetectionSplit::load(dataset, "val");
    log::info(train.report().summary());
    log::info(val.report().summary());
    // Seeded before the model exists: its initial weights are part of what a seed fixes.
    torch::manual_seed(static_cast<uint64_t>(cfg.get_int("seed")));
    training::set_torch_threads(options.threads);
    supernet::YoloModel model = build_fixed_model(cfg.resolve_path("model"), nc);
    const bool main = training::dist::is_main();
    std::string run =
        make_job_run_dir("train", cfg.get_string("name"), *resume || cfg.get_bool("exist_ok"));
    if (!*resume && main) write_file_atomic(run + "/args.yaml", cfg.to_yaml());
    log::info("training ", cfg.get_string("model"), " (", model->parameter_count(),
              " parameters) on ", dataset.yaml_path, " into ", run);
    try {
      training::Trainer trainer(model, train, val, options, run);
      trainer.fit(*resume);
      if (main) print_results(trainer, run);
    } catch (...) {
      if (main) remove_unused_run_dir(run);
      throw;
    }
    return 0;
  };
}

}  // namespace mixnas::cli
