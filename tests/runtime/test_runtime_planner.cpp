// The memory planner: no two live tensors overlap, and reuse beats one buffer per tensor.
#include <catch2/catch.hpp>

#include "deploy/runtime/planner.h"
#include "tests/runtime/frame_graphs.h"

using namespace mixnas::rt;

namespace {

void require_no_live_overlap(const std::vector<int64_t>& sizes, const std::vector<Lifetime>& life,
                             const std::vector<int64_t>& offsets, int64_t arena) {
  for (size_t a = 0; a < sizes.size(); ++a) {
    if (sizes[a] == 0) continue;
    REQUIRE(offsets[a] % kArenaAlignment == 0);
    REQUIRE(offsets[a] + sizes[a] <= arena);
    for (size_t b = a + 1; b < sizes.size(); ++b) {
      if (sizes[b] == 0) continue;
      const bool live_together = life[a].first <= life[b].last && life[b].first <= life[a].last;
      const bool disjoint =
          offsets[a] + sizes[a] <= offsets[b] || offsets[b] + sizes[b] <= offsets[a];
      INFO("tensors " << a << " and " << b);
      REQUIRE((!live_together || disjoint));
    }
  }
}

}  // namespace

TEST_CASE("Greedy by size reuses memory of dead tensors (hand-worked)", "[runtime][planner]") {
  // t0 [0,1], t1 [1,2], t2 [2,3], all 64 bytes: t0 and t2 may share, t1 may not share with either.
  int64_t arena = 0;
  const auto off = assign_offsets_greedy({64, 64, 64}, {{0, 1}, {1, 2}, {2, 3}}, &arena);
  CHECK(arena == 128);
  CHECK(off[0] == off[2]);
  CHECK(off[1] != off[0]);
  // Sizes are aligned to 64 bytes; a small tensor fills the gap left by a dead one (best fit).
  // t0 (256) [0,1]; t1 (64) [0,3]; t2 (128) [2,3] -> t2 goes into t0's old space.
  const auto off2 = assign_offsets_greedy({256, 10, 128}, {{0, 1}, {0, 3}, {2, 3}}, &arena);
  CHECK(arena == 320);
  CHECK(off2[2] == off2[0]);
}

TEST_CASE("Random lifetimes never overlap while live", "[runtime][planner]") {
  uint32_t s = 12345;
  const auto rnd = [&](int n) {
    s = s * 1103515245u + 12345u;
    return static_cast<int>((s >> 8) % static_cast<uint32_t>(n));
  };
  for (int trial = 0; trial < 50; ++trial) {
    const int n = 1 + rnd(60);
    std::vector<int64_t> sizes(n);
    std::vector<Lifetime> life(n);
    int64_t sum = 0;
    for (int i = 0; i < n; ++i) {
      sizes[i] = rnd(5) == 0 ? 0 : 1 + rnd(5000);
      const int a = rnd(40);
      life[i] = {a, a + rnd(10)};
      sum += (sizes[i] + 63) / 64 * 64;
    }
    int64_t arena = 0;
    const auto off = assign_offsets_greedy(sizes, life, &arena);
    require_no_live_overlap(sizes, life, off, arena);
    CHECK(arena <= sum);
  }
}

TEST_CASE("YOLOv8n-shaped graph: the plan beats one buffer per tensor", "[runtime][planner]") {
  for (bool int8 : {true, false}) {
    testing::YoloOptions o;
    o.int8 = int8;
    o.imgsz = 320;
    const Graph g = testing::make_yolov8n_graph(o);
    const MemoryPlan plan = plan_memory(g, /*fuse_concat=*/false);
    require_no_live_overlap(plan.bytes, plan.lifetimes, plan.offsets, plan.arena_bytes);
    INFO("arena " << plan.arena_bytes << " sum " << plan.sum_tensor_bytes);
    CHECK(plan.arena_bytes * 4 < plan.sum_tensor_bytes);
    // No plan can be smaller than the largest set of tensors live at one node.
    int64_t lower = 0;
    for (int n = 0; n < static_cast<int>(g.nodes.size()); ++n) {
      int64_t live = 0;
      for (size_t t = 0; t < g.tensors.size(); ++t)
        if (plan.bytes[t] && plan.lifetimes[t].first <= n && n <= plan.lifetimes[t].last)
          live += plan.bytes[t];
      lower = std::max(lower, live);
    }
    CHECK(plan.arena_bytes >= lower);
    CHECK(plan.arena_bytes < lower * 2);
  }
}

TEST_CASE("Lifetimes: producer to last reader, outputs to the end", "[runtime][planner]") {
  const Graph g = testing::make_all_ops_graph();
  const std::vector<Lifetime> life = tensor_lifetimes(g);
  const int last = static_cast<int>(g.nodes.size()) - 1;
  for (int t : g.output.tensors) CHECK(life[t].last == last);
  CHECK(life[g.input.tensor].first == 0);
  // c1's float copy is read by the quantize (node 1), the add (node 3) and as residual (node 5).
  const int c1f = g.nodes[0].outputs[1];
  CHECK(life[c1f].first == 0);
  CHECK(life[c1f].last == 3);
}

TEST_CASE("Concat fusion: conv outputs read only by a concat become views of its output",
          "[runtime][planner]") {
  testing::YoloOptions o;
  o.imgsz = 160;
  const Graph g = testing::make_yolov8n_graph(o);
  const MemoryPlan fused = plan_memory(g), plain = plan_memory(g, false);
  int views = 0;
  for (size_t t = 0; t < g.tensors.size(); ++t) {
    if (fused.view_of[t] < 0) continue;
    ++views;
    const int base = fused.view_of[t];
    // The slice lies inside the concat output, with the concat's row stride.
    CHECK(fused.row_stride[t] == g.tensors[base].shape[2]);
    CHECK(fused.offsets[t] >= fused.offsets[base]);
    CHECK(fused.offsets[t] + storage_bytes(g.tensors[t].shape[2], fused.storage_bits[t]) <=
          fused.offsets[base] + storage_bytes(fused.row_stride[t], fused.storage_bits[t]));
    // The concat output is live from the view's producer on.
    CHECK(fused.lifetimes[base].first <= fused.lifetimes[t].first);
  }
  CHECK(views >= 8);  // the neck's concats and the last bottleneck of every C2f
  // Bases and ordinary tensors still never overlap while live.
  std::vector<int64_t> sizes = fused.bytes;
  for (size_t t = 0; t < g.tensors.size(); ++t)
    if (fused.view_of[t] >= 0) sizes[t] = 0;
  require_no_live_overlap(sizes, fused.lifetimes, fused.offsets, fused.arena_bytes);
  // Most live bytes at any node: fusion copies nothing and holds no more.
  const auto most_live = [&](const MemoryPlan& p, const std::vector<int64_t>& bytes) {
    int64_t most = 0;
    for (size_t n = 0; n < g.nodes.size(); ++n) {
      int64_t live = 0;
      for (size_t t = 0; t < g.tensors.size(); ++t)
        if (p.lifetimes[t].first <= int(n) && p.lifetimes[t].last >= int(n)) live += bytes[t];
      most = std::max(most, live);
    }
    return most;
  };
  const int64_t live_fused = most_live(fused, sizes), live_plain = most_live(plain, plain.bytes);
  INFO("arena fused " << fused.arena_bytes << " plain " << plain.arena_bytes << "; most live "
                      << live_fused << " / " << live_plain);
  CHECK(live_fused <= live_plain);
  // The greedy placement stays within 2% of that lower bound (alignment and gaps).
  CHECK(fused.arena_bytes >= live_fused);
  CHECK(fused.arena_bytes <= live_fused * 102 / 100);
  CHECK(plain.arena_bytes <= live_plain * 102 / 100);
}

TEST_CASE("Storage bits: packed codes where rows start on bytes, layout ops agree",
          "[runtime][planner][packed]") {
  for (const auto& [bits, div] : {std::pair{4, 1}, std::pair{2, 1}, std::pair{1, 4}}) {
    testing::YoloOptions o;
    o.imgsz = 64;
    o.w_bits = bits;
    o.a_bits = bits;
    o.channel_div = div;  // div 4 at 1 bit: 4-channel tensors are not whole bytes
    const Graph g = testing::make_yolov8n_graph(o);
    const MemoryPlan plan = plan_memory(g), bytes = plan_memory(g, true, false);
    int packed = 0, unaligned = 0;
    for (size_t t = 0; t < g.tensors.size(); ++t) {
      const TensorDesc& d = g.tensors[t];
      INFO("tensor " << d.name << " bits " << d.bits);
      if (d.kind != TensorKind::kActivation) {
        CHECK(plan.storage_bits[t] == 0);
        continue;
      }
      const int sb = plan.storage_bits[t];
      CHECK(bytes.storage_bits[t] == (d.is_float() ? 32 : 8));
      if (d.is_float()) {
        CHECK(sb == 32);
      } else if (d.bits > 4) {  // the image input among them
        CHECK(sb == 8);
      } else if (d.shape.back() * bits % 8 != 0) {
        CHECK(sb == 8);
        ++unaligned;
      } else {
        CHECK((sb == bits || sb == 8));
        packed += sb == bits;
      }
      // The head's raw logits are decoded in their convs and take nothing, the decoded table is
      // held as [rows, 6] (planner.h HeadMemory::kDetections).
      const int64_t whole = (d.elements() * sb + 7) / 8;
      CHECK(plan.bytes[t] == (plan.decoded_by_conv[t] ? 0
                              : plan.compact_table[t] ? d.shape[0] * 24
                                                      : whole));
      if (plan.view_of[t] >= 0) {  // a slice starts on a byte, inside its concat
        const int base = plan.view_of[t];
        CHECK(plan.storage_bits[base] == sb);
        CHECK(plan.offsets[t] + storage_bytes(d.shape[2], sb) <=
              plan.offsets[base] + storage_bytes(plan.row_stride[t], sb));
      }
    }
    CHECK(packed > 20);
    if (div == 4) CHECK(unaligned > 0);
    // The tensors of a layout op share one storage (they move bytes).
    for (const Node& n : g.nodes) {
      if (n.op != OpType::kConcat && n.op != OpType::kSplit && n.op != OpType::kMaxPool &&
          n.op != OpType::kUpsample)
        continue;
      for (int t : n.inputs) CHECK(plan.storage_bits[t] == plan.storage_bits[n.outputs[0]]);
      for (int t : n.outputs) CHECK(plan.storage_bits[t] == plan.storage_bits[n.outputs[0]]);
    }
    // The arena's peak sits at the float head outputs here; the tensors themselves shrink.
    CHECK(plan.sum_tensor_bytes < bytes.sum_tensor_bytes);
    CHECK(plan.arena_bytes <= bytes.arena_bytes);
  }
}
