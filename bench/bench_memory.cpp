// mixnas-bench-memory: the memory a whole YOLOv8n-shaped model takes in the runtime (arena,
// resident weights, scratch, peak; Session::memory), all-int8 against all-W4A4 and all-W2A2 (the
// stem and the head's last 1x1 convs stay 8-bit, tests/runtime/frame_graphs.h), at 320x320 with
// 80 classes, 1 and 2 threads. Also what fills the arena where it peaks: float tensors (residuals,
// the head's outputs, the decoded table) against codes.
// Prints per model one MODEL line, and last
//   MEMORY w4a4_peak/int8_peak=<r> w4a4_arena/int8_arena=<r> w2a2_peak/int8_peak=<r>
//          scratch_share_int8=<r> scratch_share_w4a4=<r>
// (peaks at 1 thread, default session: HeadMemory::kDetections; scratch share = scratch / peak).
// MODEL lines with head=raw and head=table first: the same models with the head held as tests and
// `mixnas val` hold it. MIXNAS_BENCH_MEMORY_NODES=1 also prints
// the live float and code bytes after every node (1 thread).
#include <cstdio>
#include <cstdlib>
#include <string>

#include "deploy/runtime/session.h"
#include "tests/runtime/frame_graphs.h"

using namespace mixnas::rt;

namespace {

struct Figures {
  MemoryReport m;
  int64_t float_live = 0, codes_live = 0;  // bytes live at the arena's busiest node
};

Figures measure(const std::string& name, int imgsz, int bits, int threads,
                HeadMemory head = HeadMemory::kDetections) {
  testing::YoloOptions o;
  o.imgsz = imgsz;
  o.w_bits = o.a_bits = bits;
  const auto model = Model::from_graph(testing::make_yolov8n_graph(o), name);
  SessionOptions so;
  so.threads = threads;
  so.head = head;
  Session s(model, so);
  Figures f;
  f.m = s.memory();
  const Graph& g = model->graph();
  const MemoryPlan& p = s.memory_plan();
  int64_t best = -1;
  for (size_t n = 0; n < g.nodes.size(); ++n) {
    int64_t fl = 0, cd = 0;
    for (size_t t = 0; t < g.tensors.size(); ++t) {
      if (p.offsets[t] < 0 || p.view_of[t] >= 0) continue;
      if (p.lifetimes[t].first > static_cast<int>(n) || p.lifetimes[t].last < static_cast<int>(n))
        continue;
      (g.tensors[t].is_float() ? fl : cd) += p.bytes[t];
    }
    if (fl + cd > best) best = fl + cd, f.float_live = fl, f.codes_live = cd;
    if (std::getenv("MIXNAS_BENCH_MEMORY_NODES") && threads == 1 && head == HeadMemory::kDetections)
      std::printf("NODE %-10s %-28s live_float=%lld live_codes=%lld\n", name.c_str(),
                  g.nodes[n].name.c_str(), static_cast<long long>(fl), static_cast<long long>(cd));
  }
  std::printf(
      "MODEL %-10s head=%s imgsz=%d threads=%d arena=%lld resident_weights=%lld scratch=%lld "
      "peak=%lld "
      "busiest_node_float=%lld busiest_node_codes=%lld\n",
      name.c_str(),
      head == HeadMemory::kDetections ? "detections"
      : head == HeadMemory::kTable    ? "table"
                                      : "raw",
      imgsz, threads, static_cast<long long>(f.m.arena_bytes),
      static_cast<long long>(f.m.resident_weight_bytes), static_cast<long long>(f.m.scratch_bytes),
      static_cast<long long>(f.m.peak_bytes), static_cast<long long>(f.float_live),
      static_cast<long long>(f.codes_live));
  return f;
}

}  // namespace

int main(int argc, char** argv) {
  const int imgsz = argc > 1 ? std::atoi(argv[1]) : 320;
  if (imgsz < 32 || imgsz % 32 != 0) {
    std::fprintf(stderr, "usage: mixnas-bench-memory [IMGSZ, a multiple of 32; default 320]\n");
    return 2;
  }
  std::printf("# mixnas-bench-memory: YOLOv8n-shaped graphs (80 classes), Session::memory()\n");
  // What the head's modes hold (SessionOptions::head; docs/memory.md "The head"), 1 thread.
  for (HeadMemory head : {HeadMemory::kRaw, HeadMemory::kTable}) {
    measure("int8", imgsz, 8, 1, head);
    measure("w4a4", imgsz, 4, 1, head);
  }
  Figures f8{}, f4{}, f2{};
  for (int threads : {2, 1}) {
    f8 = measure("int8", imgsz, 8, threads);
    f4 = measure("w4a4", imgsz, 4, threads);
    f2 = measure("w2a2", imgsz, 2, threads);
  }
  const auto r = [](int64_t a, int64_t b) {
    return static_cast<double>(a) / static_cast<double>(b);
  };
  std::printf(
      "MEMORY w4a4_peak/int8_peak=%.3f w4a4_arena/int8_arena=%.3f w2a2_peak/int8_peak=%.3f "
      "scratch_share_int8=%.3f scratch_share_w4a4=%.3f\n",
      r(f4.m.peak_bytes, f8.m.peak_bytes), r(f4.m.arena_bytes, f8.m.arena_bytes),
      r(f2.m.peak_bytes, f8.m.peak_bytes), r(f8.m.scratch_bytes, f8.m.peak_bytes),
      r(f4.m.scratch_bytes, f4.m.peak_bytes));
  return 0;
}
