// mixnas data: build the built-in dataset, convert COCO/VOC to YOLO format, check a dataset.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "apps/mixnas/commands.h"
#include "core/error.h"
#include "core/log.h"
#include "datasets/convert.h"
#include "datasets/dataset.h"
#include "datasets/fmnist_det.h"

namespace mixnas::cli {

namespace {

struct DataArgs {
  // make
  std::string name;
  data::FmnistDetOptions fmnist;
  // check
  std::string yaml;
  std::vector<std::string> splits;
  bool no_cache = false;
  // convert
  std::string from;
  std::string source;
  std::string images;
  std::string out;
  std::string split = "auto";
  bool copy = false;
  bool skip_difficult = false;
  bool force = false;
};

int run_check(const DataArgs& a) {
  data::DatasetConfig config = data::load_dataset_config(a.yaml);
  std::vector<std::string> splits = a.splits;
  if (splits.empty()) {
    for (const auto& [name, sources] : config.splits) splits.push_back(name);
  }
  size_t skipped = 0;
  for (const std::string& split : splits) {
    data::SplitLoadOptions options;
    options.use_cache = !a.no_cache;
    auto s = data::DetectionSplit::load(config, split, options);
    std::printf("%s\n", s.report().summary(s.report().corrupt.size()).c_str());
    skipped += s.report().corrupt.size();
  }
  std::printf("%d classes: ", config.num_classes());
  for (int i = 0; i < config.num_classes(); ++i) {
    std::printf("%s%d: %s", i ? ", " : "", i, config.names[i].c_str());
  }
  std::printf("\n");
  if (skipped == 0) return 0;
  // A script must tell a dataset with defects from a clean one (exit 1 is: not readable at all).
  std::printf("%zu file(s) skipped (listed above): exit status 2\n", skipped);
  return 2;
}

}  // namespace

Runner add_data_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "data", "Build, convert and check datasets (make fmnist-det, convert coco|voc, check)");
  cmd->require_subcommand(1);
  auto a = std::make_shared<DataArgs>();

  auto* make = cmd->add_subcommand("make", "Build a built-in dataset: fmnist-det");
  make->add_option("name", a->name, "Dataset to build")
      ->required()
      ->check(CLI::IsMember({"fmnist-det"}));
  make->add_option("--out", a->fmnist.out, "Output folder")->capture_default_str();
  make->add_option("--train", a->fmnist.train, "Train images")->capture_default_str();
  make->add_option("--val", a->fmnist.val, "Val images")->capture_default_str();
  make->add_option("--imgsz", a->fmnist.imgsz, "Image side in pixels")->capture_default_str();
  make->add_option("--seed", a->fmnist.seed, "Seed (same seed, same bytes)")->capture_default_str();
  make->add_option("--threads", a->fmnist.threads, "Worker threads (0: all cores)")
      ->capture_default_str();
  make->add_option("--source", a->fmnist.source_dir, "Fashion-MNIST IDX .gz folder")
      ->capture_default_str();
  make->add_flag("--force", a->fmnist.force, "Replace a dataset already in --out");

  auto* check = cmd->add_subcommand(
      "check", "Scan a dataset YAML: report every defect per file (exit 2 when files are skipped)");
  check->add_option("yaml", a->yaml, "Dataset YAML")->required();
  check->add_option("--split", a->splits, "Splits to check (default: all)")->delimiter(',');
  check->add_flag("--no-cache", a->no_cache, "Do not read or write the label cache");

  auto* convert = cmd->add_subcommand("convert", "Convert COCO json or Pascal VOC to YOLO format");
  convert->add_option("--from", a->from, "Source format")
      ->required()
      ->check(CLI::IsMember({"coco", "voc"}));
  convert
      ->add_option("source", a->source,
                   "COCO instances json, or the VOC root (Annotations/, JPEGImages/)")
      ->required();
  convert->add_option("--images", a->images, "COCO: folder of the images the json names");
  convert->add_option("--out", a->out, "Output dataset folder")->required();
  convert->add_option("--split", a->split,
                      "COCO: split name (default: from the json file name, e.g. val2017); "
                      "VOC: ImageSets/Main lists to convert (default: train,val)");
  convert->add_flag("--copy", a->copy, "Copy images instead of hard-linking them");
  convert->add_flag("--skip-difficult", a->skip_difficult, "VOC: drop objects marked difficult");
  convert->add_flag("--force", a->force, "Write into an --out that already holds files");

  return [a, make, check, convert]() -> int {
    if (make->parsed()) {
      std::string yaml = data::make_fmnist_det(a->fmnist);
      std::printf("%s\n", yaml.c_str());
      return 0;
    }
    if (check->parsed()) return run_check(*a);
    if (convert->parsed()) {
      data::ConvertOptions o;
      o.out = a->out;
      o.images = a->images;
      o.split = a->split;
      o.copy = a->copy;
      o.skip_difficult = a->skip_difficult;
      o.force = a->force;
      data::ConvertReport r =
          a->from == "coco" ? data::convert_coco(a->source, o) : data::convert_voc(a->source, o);
      std::printf("%s\n%s\n", r.summary().c_str(), r.yaml_path.c_str());
      return 0;
    }
    return 1;
  };
}

}  // namespace mixnas::cli
