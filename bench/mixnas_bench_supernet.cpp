// One training step (forward + backward + optimizer) of the yolov8-pico supernet (activations
// relu, relu6, leakyrelu, hardswish, silu; w_bits {2,4,8}; a_bits {2,4,8}) against the plain
// all-SiLU fp32 model, 128 x 128, batch 16, same process.
// Memory: peak bytes allocated by LibTorch's CPU allocator during a step (parameters, gradients,
// optimizer state, activations and temporaries), counted by an allocator wrapper, each model
// measured on its own after warm-up.
// Time: median of the step times after warm-up. The plain model and the supernet then also run
// alternately, one step each, and the time ratio is taken from those interleaved steps: on a shared
// machine the load changes within seconds, and two runs one after the other can see different
// loads. Subnormal floats are flushed to zero (see main).
// Last line: SUPERNET time_ratio=<r> mem_ratio=<r> (goal: time <= 1.6, memory <= 2).
// Usage: mixnas-bench-supernet [steps (7)]. Environment:
// - MIXNAS_BENCH_DENORMALS=1 keeps subnormal floats;
// - MIXNAS_BENCH_BREAKDOWN=1 adds runs that search only activations or only bit-widths;
// - MIXNAS_BENCH_PROFILE=<prefix> writes one more step of each model as a Chrome trace of
//   LibTorch's profiler to <prefix>-<tag>.json (not timed), with the phases bench::forward,
//   bench::loss, bench::backward and bench::optimizer marked.
#include <ATen/record_function.h>
#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>
#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/torch.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "supernet/loss.h"
#include "supernet/model.h"

namespace sn = mixnas::supernet;

namespace {

// CPU allocator that counts live and peak bytes (c10::alloc_cpu / free_cpu underneath). Data and
// context are the same pointer, as raw_allocate() requires; sizes live in a map.
class CountingAllocator final : public c10::Allocator {
 public:
  c10::DataPtr allocate(size_t n) const override {
    void* data = c10::alloc_cpu(n);
    {
      std::lock_guard<std::mutex> lock(mutex());
      sizes()[data] = n;
    }
    const int64_t now = live().fetch_add(int64_t(n)) + int64_t(n);
    int64_t p = peak_bytes().load();
    while (now > p && !peak_bytes().compare_exchange_weak(p, now)) {
    }
    return {data, data, &release, c10::Device(c10::DeviceType::CPU)};
  }
  c10::DeleterFnPtr raw_deleter() const override { return &release; }
  int64_t peak() const { return peak_bytes().load(); }
  int64_t live_bytes() const { return live().load(); }
  void reset_peak() { peak_bytes().store(live().load()); }

 private:
  static void release(void* data) {
    if (!data) return;
    size_t n = 0;
    {
      std::lock_guard<std::mutex> lock(mutex());
      auto it = sizes().find(data);
      if (it != sizes().end()) {
        n = it->second;
        sizes().erase(it);
      }
    }
    live().fetch_sub(int64_t(n));
    c10::free_cpu(data);
  }
  static std::mutex& mutex() {
    static std::mutex m;
    return m;
  }
  static std::unordered_map<void*, size_t>& sizes() {
    static std::unordered_map<void*, size_t> m;
    return m;
  }
  static std::atomic<int64_t>& live() {
    static std::atomic<int64_t> v{0};
    return v;
  }
  static std::atomic<int64_t>& peak_bytes() {
    static std::atomic<int64_t> v{0};
    return v;
  }
};

CountingAllocator* g_alloc = nullptr;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double elapsed_ms(std::chrono::steady_clock::time_point a,
                  std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

constexpr int64_t kBatch = 16, kSize = 128;

// One model with its loss, optimizers and batch. Its memory counts from the live bytes before it
// was built, so that other models alive in the process (idle while it steps) do not count.
class Runner {
 public:
  Runner(std::string label, std::string tag, const std::string& yaml, sn::BuildOptions options)
      : label_(std::move(label)), tag_(std::move(tag)), base_bytes_(g_alloc->live_bytes()) {
    model_ = sn::build_model(yaml, std::move(options));
    torch::manual_seed(0);
    images_ = torch::rand({kBatch, 3, kSize, kSize});
    std::vector<float> rows;
    for (int64_t b = 0; b < kBatch; ++b)
      for (int k = 0; k < 3; ++k) {
        const float c = float((b + k) % 10), cx = 0.2f + 0.3f * float(k),
                    cy = 0.3f + 0.02f * float(b);
        rows.insert(rows.end(), {float(b), c, cx, cy, 0.2f, 0.25f});
      }
    targets_ = torch::tensor(rows).view({-1, 6});
    model_->train();
    loss_fn_ = sn::make_loss(model_);
    sn::ParamGroups g = model_->param_groups();
    std::vector<torch::Tensor> weights = g.weights;
    weights.insert(weights.end(), g.quant.begin(), g.quant.end());
    opt_w_ =
        std::make_unique<torch::optim::SGD>(weights, torch::optim::SGDOptions(0.01).momentum(0.9));
    if (!g.arch.empty())
      opt_a_ = std::make_unique<torch::optim::Adam>(g.arch, torch::optim::AdamOptions(1e-3));
  }

  // One training step; with `record`, its times and peak memory join the statistics.
  void step(bool record) {
    g_alloc->reset_peak();
    auto t0 = std::chrono::steady_clock::now();
    opt_w_->zero_grad();
    if (opt_a_) opt_a_->zero_grad();
    sn::LossItems items;
    {
      std::vector<torch::Tensor> raw;
      {
        RECORD_FUNCTION("bench::forward", std::vector<c10::IValue>());
        raw = model_->forward(images_).raw;
      }
      RECORD_FUNCTION("bench::loss", std::vector<c10::IValue>());
      items = loss_fn_->compute(raw, targets_, kSize, kSize);
    }
    auto t1 = std::chrono::steady_clock::now();
    {
      RECORD_FUNCTION("bench::backward", std::vector<c10::IValue>());
      items.total.backward();
    }
    auto t2 = std::chrono::steady_clock::now();
    {
      RECORD_FUNCTION("bench::optimizer", std::vector<c10::IValue>());
      opt_w_->step();
      if (opt_a_) opt_a_->step();
    }
    auto t3 = std::chrono::steady_clock::now();
    if (!record) return;
    times_.push_back(elapsed_ms(t0, t3));
    forward_.push_back(elapsed_ms(t0, t1));
    backward_.push_back(elapsed_ms(t1, t2));
    if (measure_memory_) peak_ = std::max(peak_, g_alloc->peak() - base_bytes_);
  }

  // Warm-up, then `steps` recorded steps on its own; prints the line of the model.
  void run_alone(int warmup, int steps) {
    for (int i = 0; i < warmup; ++i) step(false);
    for (int i = 0; i < steps; ++i) step(true);
    std::printf(
        "%-34s step %8.1f ms (median of %d; forward+loss %.1f, backward %.1f)  peak allocated "
        "%8.1f MiB\n",
        label_.c_str(), median(times_), steps, median(forward_), median(backward_), peak_mb());
    if (const char* prefix = std::getenv("MIXNAS_BENCH_PROFILE")) {
      torch::autograd::profiler::RecordProfile guard(std::string(prefix) + "-" + tag_ + ".json");
      step(false);
    }
  }

  // Times of the interleaved phase: the statistics start again. Memory is not measured any more
  // (the other model's steps change the live bytes).
  void restart_times() {
    measure_memory_ = false;
    times_.clear();
    forward_.clear();
    backward_.clear();
  }

  double median_ms() const { return median(times_); }
  double peak_mb() const { return double(peak_) / (1024.0 * 1024.0); }

 private:
  std::string label_, tag_;
  int64_t base_bytes_;
  sn::YoloModel model_{nullptr};
  torch::Tensor images_, targets_;
  std::unique_ptr<sn::DetectionLoss> loss_fn_;
  std::unique_ptr<torch::optim::SGD> opt_w_;
  std::unique_ptr<torch::optim::Adam> opt_a_;
  std::vector<double> times_, forward_, backward_;
  int64_t peak_ = 0;
  bool measure_memory_ = true;
};

}  // namespace

int main(int argc, char** argv) {
  int steps = 7, warmup = 2;
  if (argc > 1) steps = std::max(1, std::atoi(argv[1]));
  // Subnormal floats flushed to zero (both models): after some steps on this synthetic batch the
  // plain model's gradients reach subnormal values and its steps slow down 2-10x at random, which
  // made the ratio swing (0.3 to 1.8 for the same code). MIXNAS_BENCH_DENORMALS=1 keeps them.
  const bool ftz = !std::getenv("MIXNAS_BENCH_DENORMALS");
  if (ftz) at::globalContext().setFlushDenormal(true);
  static CountingAllocator counting;
  g_alloc = &counting;
  c10::SetCPUAllocator(&counting, /*priority=*/100);
  std::printf(
      "mixnas-bench-supernet: yolov8-pico, nc=80, 128x128, batch 16, %d threads, subnormals %s\n",
      at::get_num_threads(), ftz ? "flushed to zero" : "kept");
  const std::string pico = std::string(MIXNAS_SOURCE_DIR) + "/configs/models/yolov8-pico.yaml";
  sn::SearchSpace space = sn::parse_search_space(YAML::Load(R"(
activations: [relu, relu6, leakyrelu, hardswish, silu]
w_bits: [2, 4, 8]
a_bits: [2, 4, 8]
)"),
                                                 "bench");
  sn::BuildOptions plain_opts;
  sn::BuildOptions keep = plain_opts;
  keep.search_space = space;
  keep.recompute = false;
  sn::BuildOptions rec = keep;
  rec.recompute = true;

  Runner plain("plain all-SiLU fp32", "plain", pico, plain_opts);
  plain.run_alone(warmup, steps);
  double kept_ms = 0.0, kept_mb = 0.0;
  {
    Runner kept("supernet, branches kept", "kept", pico, keep);
    kept.run_alone(warmup, steps);
    kept_ms = kept.median_ms();
    kept_mb = kept.peak_mb();
  }
  Runner supernet("supernet, branches recomputed", "supernet", pico, rec);
  supernet.run_alone(warmup, steps);
  if (std::getenv("MIXNAS_BENCH_BREAKDOWN")) {
    sn::BuildOptions acts_only = rec, bits_only = rec;
    acts_only.search_space->w_bits = {32};
    acts_only.search_space->a_bits = {32};
    bits_only.search_space->acts = {sn::Act::kSilu};
    double a_ms = 0.0, b_ms = 0.0;
    {
      Runner a("activation search only", "acts", pico, acts_only);
      a.run_alone(warmup, steps);
      a_ms = a.median_ms();
    }
    {
      Runner b("bit-width search only", "bits", pico, bits_only);
      b.run_alone(warmup, steps);
      b_ms = b.median_ms();
    }
    std::printf("activations only: time_ratio=%.2f  bits only: time_ratio=%.2f\n",
                a_ms / plain.median_ms(), b_ms / plain.median_ms());
  }
  std::printf("branches kept:       time_ratio=%.2f mem_ratio=%.2f (runs one after the other)\n",
              kept_ms / plain.median_ms(), kept_mb / plain.peak_mb());

  // Interleaved timing: plain, supernet, plain, supernet, ... (2 * steps steps each).
  plain.restart_times();
  supernet.restart_times();
  const int rounds = 2 * steps;
  for (int i = 0; i < rounds; ++i) {
    plain.step(true);
    supernet.step(true);
  }
  std::printf("interleaved (%d steps each): plain %.1f ms, supernet %.1f ms\n", rounds,
              plain.median_ms(), supernet.median_ms());
  std::printf("SUPERNET time_ratio=%.2f mem_ratio=%.2f\n", supernet.median_ms() / plain.median_ms(),
              supernet.peak_mb() / plain.peak_mb());
  return 0;
}
