// Training throughput: mixnas' training loop (search::Trainer: batch loader with mosaic and the
// other augmentations, lr schedule, gradient clipping, EMA, loss bookkeeping, progress) against a
// bare LibTorch loop over the same model architecture and loss on batches held in memory (forward,
// loss, backward, AdamW step; nothing else). yolov8-pico, nc=10, 160 x 160, batch 16, fp32, same
// process and thread count.
//
// The Trainer runs 1 + rounds epochs (default 3); the first is warm-up. Its images/s come from
// EpochRecord, which times the training loop only (validation runs after the last epoch and is not
// counted). The bare loop runs one pass of as many images after every Trainer epoch (through the
// epoch callback), so both sides alternate and see the same drift in machine load; its first pass
// is warm-up too. Last line: TRAIN overhead_pct=<p> mixnas_img_s=<x> bare_img_s=<y> (goal: <= 10).
//
//   mixnas-bench-train [--data DATA.yaml] [--images N] [--rounds R] [--threads T]
// Without --data, an fmnist-det dataset of N train images (default 320) is made in a temp folder.
#include <torch/torch.h>

#include <unistd.h>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/log.h"
#include "datasets/dataset.h"
#include "datasets/fmnist_det.h"
#include "datasets/loader.h"
#include "datasets/torch_batch.h"
#include "search/trainer.h"
#include "supernet/loss.h"
#include "supernet/model.h"

namespace fs = std::filesystem;
using namespace mixnas;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kImgsz = 160;

// The 1-minute load average: other processes on the machine take cores from both loops (the
// Trainer's loader threads most), so the overhead is only comparable between quiet runs.
std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string first;
  in >> first;
  return first.empty() ? "unknown" : first;
}
constexpr int kBatch = 16;
constexpr int kNc = 10;

struct Args {
  std::string data;
  int images = 320;
  int rounds = 3;
  int threads = 0;
};

Args parse_args(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string w = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw Error(w + " needs a value");
      return argv[++i];
    };
    if (w == "--data") {
      a.data = value();
    } else if (w == "--images") {
      a.images = std::atoi(value().c_str());
    } else if (w == "--rounds") {
      a.rounds = std::atoi(value().c_str());
    } else if (w == "--threads") {
      a.threads = std::atoi(value().c_str());
    } else {
      throw Error("unknown argument '" + w +
                  "' (usage: mixnas-bench-train [--data DATA.yaml] [--images N] [--rounds R] "
                  "[--threads T])");
    }
  }
  if (a.images < kBatch || a.rounds < 1) throw Error("--images must be >= 16 and --rounds >= 1");
  return a;
}

supernet::YoloModel make_model() {
  torch::manual_seed(0);
  supernet::BuildOptions o;
  o.nc = kNc;
  return supernet::build_model(std::string(MIXNAS_SOURCE_DIR) + "/configs/models/yolov8-pico.yaml",
                               o);
}

search::TrainOptions trainer_options(int epochs, int threads) {
  search::TrainOptions o;
  o.epochs = epochs;
  o.batch = kBatch;
  o.imgsz = kImgsz;
  o.close_mosaic = 0;  // mosaic on in every epoch, as in most epochs of a real run
  o.val_every = 0;     // validation after the last epoch only
  o.threads = threads;
  return o;
}

// The bare loop: the same architecture, loss and optimizer family, on batches already in memory.
class BareLoop {
 public:
  explicit BareLoop(std::vector<data::TensorBatch> batches)
      : model_(make_model()), batches_(std::move(batches)) {
    supernet::V8LossOptions lo;
    search::TrainOptions defaults;
    lo.box = defaults.box;
    lo.cls = defaults.cls;
    lo.dfl = defaults.dfl;
    loss_ = supernet::make_v8_loss(model_->nc(), model_->strides(), lo);
    optimizer_ = std::make_unique<torch::optim::AdamW>(model_->parameters(),
                                                       torch::optim::AdamWOptions(defaults.lr0)
                                                           .betas({defaults.momentum, 0.999})
                                                           .weight_decay(defaults.weight_decay));
    model_->train();
  }

  // One pass over the batches; images per second.
  double pass() {
    int64_t images = 0;
    auto t0 = Clock::now();
    for (const auto& b : batches_) {
      std::vector<torch::Tensor> raw = model_->forward_raw(b.images);
      supernet::LossItems items = loss_->compute(raw, b.targets, kImgsz, kImgsz);
      optimizer_->zero_grad();
      items.total.backward();
      optimizer_->step();
      images += b.images.size(0);
    }
    return double(images) / std::chrono::duration<double>(Clock::now() - t0).count();
  }

 private:
  supernet::YoloModel model_;
  std::vector<data::TensorBatch> batches_;
  std::unique_ptr<supernet::DetectionLoss> loss_;
  std::unique_ptr<torch::optim::AdamW> optimizer_;
};

// The batches of the Trainer's first epoch (same loader options), as tensors.
std::vector<data::TensorBatch> load_batches(const data::DetectionSplit& train) {
  data::LoaderOptions lo;
  lo.batch_size = kBatch;
  lo.aug.imgsz = kImgsz;
  lo.aug.mosaic = true;
  data::BatchLoader loader(train, lo);
  loader.start_epoch(0);
  std::vector<data::TensorBatch> out;
  data::Batch b;
  while (loader.next(&b)) out.push_back(data::to_tensors(b));
  return out;
}

int run(const Args& args) {
  // As the Trainer does (threads 0 = every core): both loops run with this many LibTorch threads.
  search::set_torch_threads(args.threads);
  const int threads = torch::get_num_threads();
  const fs::path work =
      fs::temp_directory_path() / ("mixnas_bench_train_" + std::to_string(::getpid()));
  fs::create_directories(work);
  struct Cleanup {
    fs::path p;
    ~Cleanup() { fs::remove_all(p); }
  } cleanup{work};

  std::string yaml = args.data;
  if (yaml.empty()) {
    data::FmnistDetOptions fo;
    fo.out = (work / "fmnist-det").string();
    fo.train = args.images;
    fo.val = kBatch;
    fo.imgsz = kImgsz;
    yaml = data::make_fmnist_det(fo);
  }
  data::DatasetConfig dataset = data::load_dataset_config(yaml);
  if (dataset.num_classes() != kNc) {
    throw Error(yaml + ": the benchmark model has nc=10, the dataset " +
                std::to_string(dataset.num_classes()) + " classes");
  }
  data::DetectionSplit train = data::DetectionSplit::load(dataset, "train");
  data::DetectionSplit val = data::DetectionSplit::load(dataset, "val");
  std::printf(
      "mixnas-bench-train: yolov8-pico, nc=10, %dx%d, batch %d, fp32, %d torch threads, "
      "%zu train images per epoch, %d measured rounds, load average %s\n",
      kImgsz, kImgsz, kBatch, threads, train.size(), args.rounds, load_average().c_str());

  BareLoop bare(load_batches(train));
  std::vector<double> bare_rates;
  search::Trainer trainer(make_model(), train, val, trainer_options(1 + args.rounds, threads),
                          (work / "run").string());
  trainer.on_epoch_end([&](const search::EpochRecord& rec) {
    bare_rates.push_back(bare.pass());
    std::printf("round %d  mixnas %7.1f img/s  bare %7.1f img/s%s\n", rec.epoch - 1,
                rec.images_per_s, bare_rates.back(), rec.epoch == 1 ? "  (warm-up)" : "");
    std::fflush(stdout);
  });
  trainer.fit(/*resume=*/false);

  double mixnas_sum = 0, bare_sum = 0;
  const auto& history = trainer.history();
  for (size_t e = 1; e < history.size(); ++e) {
    mixnas_sum += history[e].images_per_s;
    bare_sum += bare_rates[e];
  }
  const double n = double(history.size() - 1);
  const double mixnas_rate = mixnas_sum / n, bare_rate = bare_sum / n;
  const double overhead = 100.0 * (bare_rate / mixnas_rate - 1.0);
  std::printf("mixnas Trainer %8.1f img/s (mean of %d epochs)\n", mixnas_rate, args.rounds);
  std::printf("bare LibTorch  %8.1f img/s (mean of %d passes); load average now %s\n", bare_rate,
              args.rounds, load_average().c_str());
  std::printf("TRAIN overhead_pct=%.1f mixnas_img_s=%.1f bare_img_s=%.1f\n", overhead, mixnas_rate,
              bare_rate);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    log::set_level(log::Level::kWarn);
    return run(parse_args(argc, argv));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mixnas-bench-train: %s\n", e.what());
    return 1;
  }
}
