// Training throughput: mixnas' training loop (training::Trainer: batch loader with mosaic and the
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
//   mixnas-bench-train [--data DATA.yaml] [--images N] [--rounds R] [--threads T] [--nproc P]
// Without --data, an fmnist-det dataset of N train images (default 320) is made in a temp folder.
//
// With --nproc P (> 1), data-parallel scaling instead: the Trainer in one process with P threads
// against a job of P processes with one thread each (training/distributed.h, the same global
// batch), both timed as above. Last line: DISTRIBUTED scaling_2proc=<r> allreduce_share=<x>, r the
// job's images/s over the single process's, x the share of the job's training time rank 0 spent in
// the gradients' all-reduce. The ranks are this program again, with RANK and WORLD_SIZE set.
#include <torch/torch.h>

#include <sys/wait.h>
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
#include "supernet/loss.h"
#include "supernet/model.h"
#include "training/distributed.h"
#include "training/trainer.h"

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
  int nproc = 1;
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
    } else if (w == "--nproc") {
      a.nproc = std::atoi(value().c_str());
    } else {
      throw Error("unknown argument '" + w +
                  "' (usage: mixnas-bench-train [--data DATA.yaml] [--images N] [--rounds R] "
                  "[--threads T] [--nproc P])");
    }
  }
  if (a.images < kBatch || a.rounds < 1) throw Error("--images must be >= 16 and --rounds >= 1");
  if (a.nproc < 1 || kBatch % a.nproc != 0) throw Error("--nproc must divide the batch (16)");
  return a;
}

supernet::YoloModel make_model() {
  torch::manual_seed(0);
  supernet::BuildOptions o;
  o.nc = kNc;
  return supernet::build_model(std::string(MIXNAS_SOURCE_DIR) + "/configs/models/yolov8-pico.yaml",
                               o);
}

training::TrainOptions trainer_options(int epochs, int threads) {
  training::TrainOptions o;
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
    training::TrainOptions defaults;
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

// A scratch folder removed when the benchmark ends.
struct WorkDir {
  fs::path path;
  explicit WorkDir(const std::string& tag)
      : path(fs::temp_directory_path() /
             ("mixnas_bench_train_" + tag + std::to_string(::getpid()))) {
    fs::create_directories(path);
  }
  ~WorkDir() { fs::remove_all(path); }
};

// --data, or an fmnist-det dataset of --images train images made in `work`.
std::string dataset_yaml(const Args& args, const fs::path& work) {
  if (!args.data.empty()) return args.data;
  data::FmnistDetOptions fo;
  fo.out = (work / "fmnist-det").string();
  fo.train = args.images;
  fo.val = kBatch;
  fo.imgsz = kImgsz;
  return data::make_fmnist_det(fo);
}

struct Splits {
  data::DetectionSplit train, val;
};
Splits load_splits(const std::string& yaml) {
  data::DatasetConfig dataset = data::load_dataset_config(yaml);
  if (dataset.num_classes() != kNc) {
    throw Error(yaml + ": the benchmark model has nc=10, the dataset " +
                std::to_string(dataset.num_classes()) + " classes");
  }
  return {data::DetectionSplit::load(dataset, "train"), data::DetectionSplit::load(dataset, "val")};
}

// The Trainer for 1 + rounds epochs: mean images/s of the measured epochs (all ranks' images),
// and the share of all epochs' time spent in the gradients' all-reduce.
struct Scaling {
  double images_per_s = 0, allreduce_share = 0;
};
Scaling train_timed(const Args& args, const Splits& splits, int threads, const fs::path& run) {
  training::Trainer trainer(make_model(), splits.train, splits.val,
                            trainer_options(1 + args.rounds, threads), run.string());
  trainer.fit(/*resume=*/false);
  Scaling out;
  double seconds = 0;
  const auto& history = trainer.history();
  for (size_t e = 0; e < history.size(); ++e) {
    seconds += history[e].seconds;
    if (e > 0) out.images_per_s += history[e].images_per_s / double(history.size() - 1);
  }
  out.allreduce_share = seconds > 0 ? trainer.allreduce_seconds() / seconds : 0;
  return out;
}

// One rank of the --nproc job (RANK set by run_scaling): one thread; rank 0 writes its figures to
// MIXNAS_BENCH_RESULT.
int run_rank(const Args& args) {
  training::dist::init(training::dist::Environment::from_process());
  WorkDir work("rank" + std::string(std::getenv("RANK")) + "_");
  const Scaling s = train_timed(args, load_splits(args.data), 1, work.path / "run");
  if (training::dist::is_main()) {
    std::ofstream(std::getenv("MIXNAS_BENCH_RESULT")) << s.images_per_s << ' ' << s.allreduce_share;
  }
  return 0;
}

// This program again as rank `rank` of `nproc` (the job's rendezvous on 127.0.0.1:port).
pid_t start_rank(const Args& args, int rank, int port, const std::string& result) {
  const pid_t pid = ::fork();
  if (pid != 0) return pid;
  ::setenv("RANK", std::to_string(rank).c_str(), 1);
  ::setenv("LOCAL_RANK", std::to_string(rank).c_str(), 1);
  ::setenv("WORLD_SIZE", std::to_string(args.nproc).c_str(), 1);
  ::setenv("LOCAL_WORLD_SIZE", std::to_string(args.nproc).c_str(), 1);
  ::setenv("MASTER_ADDR", "127.0.0.1", 1);
  ::setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
  ::setenv("MIXNAS_BENCH_RESULT", result.c_str(), 1);
  const std::string rounds = std::to_string(args.rounds);
  ::execl("/proc/self/exe", "mixnas-bench-train", "--data", args.data.c_str(), "--rounds",
          rounds.c_str(), static_cast<char*>(nullptr));
  ::_exit(127);
}

int run_scaling(Args args) {
  WorkDir work("");
  args.data = dataset_yaml(args, work.path);
  std::printf(
      "mixnas-bench-train --nproc %d: yolov8-pico, nc=10, %dx%d, global batch %d, %d "
      "measured rounds, load average %s\n",
      args.nproc, kImgsz, kImgsz, kBatch, args.rounds, load_average().c_str());
  const std::string result = (work.path / "result.txt").string();
  const int port = 29400 + static_cast<int>(::getpid() % 500);
  std::vector<pid_t> ranks;
  for (int r = 0; r < args.nproc; ++r) ranks.push_back(start_rank(args, r, port, result));
  for (pid_t p : ranks) {
    int status = 0;
    ::waitpid(p, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) throw Error("a rank of the job failed");
  }
  Scaling job;
  std::ifstream(result) >> job.images_per_s >> job.allreduce_share;
  std::printf("%d processes x 1 thread   %8.1f img/s (all-reduce %.1f%% of the time)\n", args.nproc,
              job.images_per_s, 100 * job.allreduce_share);
  std::fflush(stdout);
  const Scaling single = train_timed(args, load_splits(args.data), args.nproc, work.path / "one");
  std::printf("1 process x %d threads   %8.1f img/s\n", args.nproc, single.images_per_s);
  std::printf("DISTRIBUTED scaling_2proc=%.3f allreduce_share=%.3f\n",
              job.images_per_s / single.images_per_s, job.allreduce_share);
  return 0;
}

int run(const Args& args) {
  // As the Trainer does (threads 0 = every core): both loops run with this many LibTorch threads.
  training::set_torch_threads(args.threads);
  const int threads = torch::get_num_threads();
  WorkDir work("");
  const std::string yaml = dataset_yaml(args, work.path);
  const Splits splits = load_splits(yaml);
  const data::DetectionSplit& train = splits.train;
  const data::DetectionSplit& val = splits.val;
  std::printf(
      "mixnas-bench-train: yolov8-pico, nc=10, %dx%d, batch %d, fp32, %d torch threads, "
      "%zu train images per epoch, %d measured rounds, load average %s\n",
      kImgsz, kImgsz, kBatch, threads, train.size(), args.rounds, load_average().c_str());

  BareLoop bare(load_batches(train));
  std::vector<double> bare_rates;
  training::Trainer trainer(make_model(), train, val, trainer_options(1 + args.rounds, threads),
                            (work.path / "run").string());
  trainer.on_epoch_end([&](const training::EpochRecord& rec) {
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
    const Args args = parse_args(argc, argv);
    if (std::getenv("RANK")) return run_rank(args);
    return args.nproc > 1 ? run_scaling(args) : run(args);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mixnas-bench-train: %s\n", e.what());
    return 1;
  }
}
