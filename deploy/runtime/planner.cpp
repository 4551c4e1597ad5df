#include "deploy/runtime/planner.h"

#include <algorithm>
#include <numeric>

#include "deploy/runtime/codes.h"

namespace mixnas::rt {
namespace {

int64_t align_up(int64_t v) {
  return (v + kArenaAlignment - 1) / kArenaAlignment * kArenaAlignment;
}

bool overlap(const Lifetime& a, const Lifetime& b) {
  return a.first <= b.last && b.first <= a.last;
}

}  // namespace

namespace {

// Places tensors in `order`, each at the best-fitting gap among the placed tensors whose
// lifetimes overlap it (else after the last of them). Returns the offsets; *total the arena.
std::vector<int64_t> place_in_order(const std::vector<size_t>& order,
                                    const std::vector<int64_t>& sizes,
                                    const std::vector<Lifetime>& lifetimes, int64_t* total) {
  std::vector<int64_t> offsets(sizes.size(), 0);
  std::vector<size_t> placed;
  *total = 0;
  struct Range {
    int64_t begin, end;
  };
  std::vector<Range> busy;
  for (size_t t : order) {
    const int64_t size = align_up(sizes[t]);
    if (size == 0) continue;
    busy.clear();
    for (size_t p : placed)
      if (overlap(lifetimes[t], lifetimes[p]))
        busy.push_back({offsets[p], offsets[p] + align_up(sizes[p])});
    std::sort(busy.begin(), busy.end(),
              [](const Range& a, const Range& b) { return a.begin < b.begin; });
    // Best fit: the smallest gap that holds the tensor; else after the last busy range.
    int64_t best = -1, best_gap = 0, cursor = 0;
    for (const Range& r : busy) {
      const int64_t gap = r.begin - cursor;
      if (gap >= size && (best < 0 || gap < best_gap)) {
        best = cursor;
        best_gap = gap;
      }
      cursor = std::max(cursor, r.end);
    }
    if (best < 0) best = cursor;
    offsets[t] = best;
    *total = std::max(*total, best + size);
    placed.push_back(t);
  }
  return offsets;
}

// Greedy by breadth: the nodes with the most live bytes first, each placing its live tensors
// largest first.
std::vector<size_t> breadth_order(const std::vector<int64_t>& sizes,
                                  const std::vector<Lifetime>& lifetimes) {
  int last = 0;
  for (const Lifetime& l : lifetimes) last = std::max(last, l.last);
  std::vector<std::vector<size_t>> live(static_cast<size_t>(last) + 1);
  std::vector<int64_t> breadth(live.size(), 0);
  for (size_t t = 0; t < sizes.size(); ++t) {
    if (sizes[t] == 0) continue;
    for (int n = lifetimes[t].first; n <= lifetimes[t].last; ++n) {
      live[n].push_back(t);
      breadth[n] += align_up(sizes[t]);
    }
  }
  std::vector<size_t> nodes(live.size());
  std::iota(nodes.begin(), nodes.end(), 0);
  std::stable_sort(nodes.begin(), nodes.end(),
                   [&](size_t a, size_t b) { return breadth[a] > breadth[b]; });
  std::vector<size_t> order;
  std::vector<char> taken(sizes.size(), 0);
  for (size_t n : nodes) {
    std::stable_sort(live[n].begin(), live[n].end(),
                     [&](size_t a, size_t b) { return sizes[a] > sizes[b]; });
    for (size_t t : live[n])
      if (!taken[t]) taken[t] = 1, order.push_back(t);
  }
  return order;
}

}  // namespace

std::vector<int64_t> assign_offsets_greedy(const std::vector<int64_t>& sizes,
                                           const std::vector<Lifetime>& lifetimes,
                                           int64_t* arena_bytes) {
  std::vector<size_t> order(sizes.size());
  std::iota(order.begin(), order.end(), 0);
  // Largest first; ties by earlier first use, then index, so the plan is deterministic.
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (sizes[a] != sizes[b]) return sizes[a] > sizes[b];
    return lifetimes[a].first < lifetimes[b].first;
  });
  int64_t total = 0;
  std::vector<int64_t> offsets = place_in_order(order, sizes, lifetimes, &total);
  // Largest area (bytes x nodes alive) first, and greedy by breadth; the smallest arena wins
  // (docs/memory.md "Measured").
  std::vector<size_t> by_area = order;
  const auto area = [&](size_t t) {
    return static_cast<double>(sizes[t]) * (lifetimes[t].last - lifetimes[t].first + 1);
  };
  std::stable_sort(by_area.begin(), by_area.end(),
                   [&](size_t a, size_t b) { return area(a) > area(b); });
  for (const std::vector<size_t>& other : {by_area, breadth_order(sizes, lifetimes)}) {
    int64_t other_total = 0;
    std::vector<int64_t> placed = place_in_order(other, sizes, lifetimes, &other_total);
    if (other_total < total) offsets.swap(placed), total = other_total;
  }
  if (arena_bytes) *arena_bytes = total;
  return offsets;
}

std::vector<Lifetime> tensor_lifetimes(const Graph& g) {
  const int last_node = std::max(0, static_cast<int>(g.nodes.size()) - 1);
  std::vector<Lifetime> life(g.tensors.size(), Lifetime{-1, -1});
  if (g.input.tensor >= 0) life[g.input.tensor] = {0, 0};
  for (int i = 0; i < static_cast<int>(g.nodes.size()); ++i) {
    for (int t : g.nodes[i].outputs) life[t] = {i, i};
    for (int t : g.nodes[i].inputs)
      if (g.tensors[t].kind == TensorKind::kActivation && life[t].first >= 0)
        life[t].last = std::max(life[t].last, i);
  }
  for (int t : g.output.tensors)
    if (life[t].first >= 0) life[t].last = last_node;
  for (Lifetime& l : life)
    if (l.first < 0) l = {0, 0};
  return life;
}

namespace {

// Marks conv outputs read only by one concat (once) as views of that concat's output. Returns
// the channel offset of each view (0 elsewhere).
std::vector<int> plan_concat_views(const Graph& g, MemoryPlan* plan) {
  const size_t nt = g.tensors.size();
  std::vector<int> readers(nt, 0), produced_by_conv(nt, 0), channel_offset(nt, 0);
  for (const Node& n : g.nodes) {
    for (int t : n.inputs) ++readers[t];
    if (n.op == OpType::kConv2d)
      for (int t : n.outputs) produced_by_conv[t] = 1;
  }
  std::vector<char> is_output(nt, 0);
  for (int t : g.output.tensors) is_output[t] = 1;
  for (const Node& n : g.nodes) {
    if (n.op != OpType::kConcat) continue;
    const int out = n.outputs[0];
    int offset = 0;
    for (int t : n.inputs) {
      if (produced_by_conv[t] && readers[t] == 1 && !is_output[t] && t != g.input.tensor) {
        plan->view_of[t] = out;
        plan->fused_input[t] = 1;
        channel_offset[t] = offset;
        plan->row_stride[t] = g.tensors[out].shape[2];
      }
      offset += g.tensors[t].shape[2];
    }
  }
  return channel_offset;
}

// Storage bits per activation tensor: packed codes where `pack` and the tensor's pixel rows start
// on bytes (an image input has 8-bit codes: one byte each; Session::set_input_codes packs others);
// then the
// tensors a layout op moves as bytes (concat, split, max-pool, upsample) share one storage, or all
// fall back to one byte per code.
std::vector<int> plan_storage_bits(const Graph& g, bool pack) {
  std::vector<int> bits(g.tensors.size(), 0);
  for (size_t t = 0; t < g.tensors.size(); ++t) {
    const TensorDesc& d = g.tensors[t];
    if (d.kind != TensorKind::kActivation) continue;
    if (d.is_float()) {
      bits[t] = 32;
      continue;
    }
    const int s = pack ? code_storage_bits(d.bits) : 8;
    bits[t] = int64_t{d.shape.back()} * s % 8 == 0 ? s : 8;
  }
  for (bool changed = true; changed;) {
    changed = false;
    for (const Node& n : g.nodes) {
      if (n.op != OpType::kConcat && n.op != OpType::kSplit && n.op != OpType::kMaxPool &&
          n.op != OpType::kUpsample)
        continue;
      bool agree = true;
      const int s = bits[n.outputs[0]];
      for (int t : n.inputs) agree = agree && bits[t] == s;
      for (int t : n.outputs) agree = agree && bits[t] == s;
      if (agree || s == 32) continue;
      for (int t : n.inputs) changed |= bits[t] != 8, bits[t] = 8;
      for (int t : n.outputs) changed |= bits[t] != 8, bits[t] = 8;
    }
  }
  return bits;
}

// Marks split outputs read only by convs (input or residual) and concats as views of the split's
// input: those readers take a row stride, so the split copies nothing for them. Returns the
// channel offsets into `channel_offset`.
void plan_split_views(const Graph& g, MemoryPlan* plan, std::vector<int>& channel_offset) {
  const size_t nt = g.tensors.size();
  std::vector<char> strided_readers_only(nt, 1);
  for (const Node& n : g.nodes)
    for (size_t k = 0; k < n.inputs.size(); ++k) {
      const bool conv_read =
          n.op == OpType::kConv2d && (k == 0 || (n.conv.has_residual && k + 1 == n.inputs.size()));
      if (!conv_read && n.op != OpType::kConcat) strided_readers_only[n.inputs[k]] = 0;
    }
  for (int t : g.output.tensors) strided_readers_only[t] = 0;
  for (const Node& n : g.nodes) {
    if (n.op != OpType::kSplit || plan->view_of[n.inputs[0]] >= 0) continue;
    const int x = n.inputs[0];
    int offset = 0;
    for (int t : n.outputs) {
      if (strided_readers_only[t]) {
        plan->view_of[t] = x;
        channel_offset[t] = offset;
        plan->row_stride[t] = g.tensors[x].shape.back();
      }
      offset += g.tensors[t].shape.back();
    }
  }
}

// Marks the YOLOv8 Detect inputs its convs can decode into the table (HeadMemory::kTable); the
// table then lives from the first of those convs. With `compact`, a table whose levels are all
// decoded so and whose only reader is an NMS is held as [rows, 6].
void plan_detect_decoding(const Graph& g, bool compact, MemoryPlan* plan,
                          std::vector<Lifetime>& life) {
  const size_t nt = g.tensors.size();
  std::vector<int> readers(nt, 0), producer(nt, -1);
  for (int i = 0; i < static_cast<int>(g.nodes.size()); ++i) {
    for (int t : g.nodes[i].inputs) ++readers[t];
    if (g.nodes[i].op == OpType::kConv2d)
      for (int t : g.nodes[i].outputs) producer[t] = i;
  }
  for (const Node& n : g.nodes) {
    if (n.op != OpType::kDetectV8) continue;
    const int table = n.outputs[0];
    bool all_decoded = true;
    for (size_t l = 0; l + 1 < n.inputs.size(); l += 2) {
      const int box = n.inputs[l], cls = n.inputs[l + 1];
      bool ok = box != cls;
      for (int t : {box, cls})
        ok = ok && producer[t] >= 0 && readers[t] == 1 && g.tensors[t].is_float() &&
             plan->view_of[t] < 0 && g.nodes[producer[t]].outputs.size() == 1 &&
             g.tensors[t].shape[2] == g.tensors[g.nodes[producer[t]].inputs[1]].shape[0];
      all_decoded = all_decoded && ok;
      if (!ok) continue;
      for (int t : {box, cls}) {
        plan->decoded_by_conv[t] = 1;
        plan->bytes[t] = 0;
        life[table].first = std::min(life[table].first, producer[t]);
      }
    }
    if (!compact || !all_decoded || readers[table] != 1) continue;
    for (const Node& r : g.nodes)
      if (r.op == OpType::kNms && r.inputs[0] == table) {
        plan->compact_table[table] = 1;
        plan->row_stride[table] = 6;
        plan->bytes[table] = storage_bytes(g.tensors[table].shape[0] * int64_t{6}, 32);
      }
  }
}

}  // namespace

MemoryPlan plan_memory(const Graph& g, bool fuse_concat, bool pack_codes, HeadMemory head) {
  MemoryPlan plan;
  const size_t nt = g.tensors.size();
  plan.lifetimes = tensor_lifetimes(g);
  plan.bytes.assign(nt, 0);
  plan.view_of.assign(nt, -1);
  plan.fused_input.assign(nt, 0);
  plan.row_stride.assign(nt, 0);
  plan.storage_bits = plan_storage_bits(g, pack_codes);
  plan.decoded_by_conv.assign(nt, 0);
  plan.compact_table.assign(nt, 0);
  for (size_t t = 0; t < nt; ++t) {
    const TensorDesc& d = g.tensors[t];
    if (d.kind != TensorKind::kActivation) continue;
    plan.bytes[t] = storage_bytes(d.elements(), plan.storage_bits[t]);
    plan.row_stride[t] = d.shape.back();
    plan.sum_tensor_bytes += align_up(plan.bytes[t]);
  }
  std::vector<int> channel_offset(nt, 0);
  if (fuse_concat) {
    channel_offset = plan_concat_views(g, &plan);
    plan_split_views(g, &plan, channel_offset);
  }
  // A concat output lives from the first write into any of its views; a split input as long as
  // any of its views is read.
  std::vector<Lifetime> life = plan.lifetimes;
  if (head != HeadMemory::kRaw)
    plan_detect_decoding(g, head == HeadMemory::kDetections, &plan, life);
  std::vector<int64_t> sizes = plan.bytes;
  for (size_t t = 0; t < nt; ++t) {
    const int base = plan.view_of[t];
    if (base < 0) continue;
    sizes[t] = 0;
    life[base].first = std::min(life[base].first, plan.lifetimes[t].first);
    life[base].last = std::max(life[base].last, plan.lifetimes[t].last);
  }
  plan.offsets = assign_offsets_greedy(sizes, life, &plan.arena_bytes);
  for (size_t t = 0; t < nt; ++t) {
    if (g.tensors[t].kind != TensorKind::kActivation || plan.decoded_by_conv[t]) {
      plan.offsets[t] = -1;
    } else if (plan.view_of[t] >= 0) {
      plan.offsets[t] =
          plan.offsets[plan.view_of[t]] + storage_bytes(channel_offset[t], plan.storage_bits[t]);
    }
  }
  plan.lifetimes = life;
  return plan;
}

int64_t layout_without_reuse(const Graph& g, MemoryPlan* plan) {
  int64_t cursor = 0;
  std::vector<int64_t> base_offset(g.tensors.size(), -1);
  for (size_t t = 0; t < g.tensors.size(); ++t) {
    if (g.tensors[t].kind != TensorKind::kActivation || plan->view_of[t] >= 0) continue;
    base_offset[t] = cursor;
    cursor += align_up(plan->bytes[t]);
  }
  const std::vector<int64_t> planned = plan->offsets;
  for (size_t t = 0; t < g.tensors.size(); ++t) {
    const int base = plan->view_of[t];
    if (base >= 0)
      plan->offsets[t] = base_offset[base] + (planned[t] - planned[base]);
    else
      plan->offsets[t] = base_offset[t];
  }
  return cursor;
}

}  // namespace mixnas::rt
