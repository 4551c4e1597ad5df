// One training step (forward + backward + optimizer) of the yolov8-pico supernet (activations
// relu, relu6, leakyrelu, hardswish, silu; w_bits {2,4,8}; a_bits {2,4,8}) against the plain
// all-SiLU fp32 model, 128 x 128, batch 16, same process. Time: median of several steps after
// warm-up. Memory: peak bytes allocated by LibTorch's CPU allocator during a step (parameters,
// gradients, optimizer state, activations and temporaries), counted by an allocator wrapper.
// Last line: SUPERNET time_ratio=<r> mem_ratio=<r> (goal: time <= 1.6, memory <= 2).
#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>
#include <torch/torch.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
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

struct Result {
  double median_ms;
  double peak_mb;
};

Result run(const std::string& label, sn::YoloModel model, int warmup, int steps) {
  const int64_t batch = 16, size = 128;
  torch::manual_seed(0);
  torch::Tensor images = torch::rand({batch, 3, size, size});
  std::vector<float> rows;
  for (int64_t b = 0; b < batch; ++b)
    for (int k = 0; k < 3; ++k) {
      const float c = float((b + k) % 10), cx = 0.2f + 0.3f * float(k),
                  cy = 0.3f + 0.02f * float(b);
      rows.insert(rows.end(), {float(b), c, cx, cy, 0.2f, 0.25f});
    }
  torch::Tensor targets = torch::tensor(rows).view({-1, 6});
  model->train();
  auto loss_fn = sn::make_loss(model);
  sn::ParamGroups g = model->param_groups();
  std::vector<torch::Tensor> weights = g.weights;
  weights.insert(weights.end(), g.quant.begin(), g.quant.end());
  torch::optim::SGD opt_w(weights, torch::optim::SGDOptions(0.01).momentum(0.9));
  std::unique_ptr<torch::optim::Adam> opt_a;
  if (!g.arch.empty())
    opt_a = std::make_unique<torch::optim::Adam>(g.arch, torch::optim::AdamOptions(1e-3));
  std::vector<double> times;
  int64_t peak = 0;
  for (int i = 0; i < warmup + steps; ++i) {
    g_alloc->reset_peak();
    auto t0 = std::chrono::steady_clock::now();
    opt_w.zero_grad();
    if (opt_a) opt_a->zero_grad();
    auto items = loss_fn->compute(model->forward(images).raw, targets, size, size);
    items.total.backward();
    opt_w.step();
    if (opt_a) opt_a->step();
    auto t1 = std::chrono::steady_clock::now();
    if (i >= warmup) {
      times.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
      peak = std::max(peak, g_alloc->peak());
    }
  }
  std::sort(times.begin(), times.end());
  Result r{times[times.size() / 2], double(peak) / (1024.0 * 1024.0)};
  std::printf("%-34s step %8.1f ms (median of %d)  peak allocated %8.1f MiB\n", label.c_str(),
              r.median_ms, steps, r.peak_mb);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  int steps = 7, warmup = 2;
  if (argc > 1) steps = std::max(1, std::atoi(argv[1]));
  static CountingAllocator counting;
  g_alloc = &counting;
  c10::SetCPUAllocator(&counting, /*priority=*/100);
  std::printf("mixnas-bench-supernet: yolov8-pico, nc=80, 128x128, batch 16, %d threads\n",
              at::get_num_threads());
  const std::string pico = std::string(MIXNAS_SOURCE_DIR) + "/configs/models/yolov8-pico.yaml";
  sn::SearchSpace space = sn::parse_search_space(YAML::Load(R"(
activations: [relu, relu6, leakyrelu, hardswish, silu]
w_bits: [2, 4, 8]
a_bits: [2, 4, 8]
)"),
                                                 "bench");
  sn::BuildOptions plain_opts;
  Result plain = run("plain all-SiLU fp32", sn::build_model(pico, plain_opts), warmup, steps);
  sn::BuildOptions keep = plain_opts;
  keep.search_space = space;
  keep.recompute = false;
  Result kept = run("supernet, branches kept", sn::build_model(pico, keep), warmup, steps);
  sn::BuildOptions rec = keep;
  rec.recompute = true;
  Result recomputed =
      run("supernet, branches recomputed", sn::build_model(pico, rec), warmup, steps);
  if (std::getenv("MIXNAS_BENCH_BREAKDOWN")) {
    sn::BuildOptions acts_only = rec, bits_only = rec;
    acts_only.search_space->w_bits = {32};
    acts_only.search_space->a_bits = {32};
    bits_only.search_space->acts = {sn::Act::kSilu};
    Result a = run("activation search only", sn::build_model(pico, acts_only), warmup, steps);
    Result b = run("bit-width search only", sn::build_model(pico, bits_only), warmup, steps);
    std::printf("activations only: time_ratio=%.2f  bits only: time_ratio=%.2f\n",
                a.median_ms / plain.median_ms, b.median_ms / plain.median_ms);
  }
  std::printf("branches kept:       time_ratio=%.2f mem_ratio=%.2f\n",
              kept.median_ms / plain.median_ms, kept.peak_mb / plain.peak_mb);
  std::printf("SUPERNET time_ratio=%.2f mem_ratio=%.2f\n", recomputed.median_ms / plain.median_ms,
              recomputed.peak_mb / plain.peak_mb);
  return 0;
}
