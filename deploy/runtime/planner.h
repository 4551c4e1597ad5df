#pragma once
// Memory planner: every activation tensor gets an offset in one arena. Lifetimes come from the
// graph (producer .. last consumer; graph outputs live to the end); offsets are assigned greedily,
// each tensor taking the best-fitting gap among the tensors whose lifetimes overlap it, in three
// orders: largest first ("greedy by size", TFLite's arena planner), largest bytes x lifetime
// first, and node by node, the nodes with the most live bytes first ("greedy by breadth"); the
// smallest arena wins (Pisarchyk & Lee, "Efficient Memory Management for Deep Neural Net
// Inference", 2020).
#include <cstdint>
#include <vector>

#include "deploy/runtime/graph.h"

namespace mixnas::rt {

// Offsets are multiples of this (cache line, and the widest vector loads).
constexpr int64_t kArenaAlignment = 64;

struct Lifetime {
  int first = 0;  // index of the producing node (0 for the graph input)
  int last = 0;   // index of the last node that reads it (the last node for graph outputs)
};

struct MemoryPlan {
  std::vector<int64_t> offsets;  // per tensor, bytes into the arena; -1: constants, decoded_by_conv
  std::vector<int64_t> bytes;    // per tensor, dense size; 0 for constants
  std::vector<Lifetime> lifetimes;
  // Concat fusion: a conv output whose only reader is a concat is written by the conv straight
  // into its channel slice of the concat's output ("view" of it). Split fusion: a split output
  // read only by convs (as input or residual) and concats is its channel slice of the split's
  // input, read in place with the input's row stride. For such a tensor view_of is the concat
  // output (the split input), row_stride its channel count, and offsets[] points at the slice
  // start; every other tensor has view_of = -1 and row_stride = its channel count (dense).
  std::vector<int> view_of;
  std::vector<int> row_stride;
  std::vector<char> fused_input;  // per tensor: a view the concat need not copy
  // Per tensor, bits per element in the arena (codes.h): 32 floats, 8 one byte per code, 1/2/4
  // packed codes; 0 for constants. A row of row_stride elements takes row_stride * bits / 8 bytes.
  std::vector<int> storage_bits;
  // Per tensor: a YOLOv8 Detect input (a level's raw box or class logits) that its conv decodes
  // straight into the decoded table (ConvSink::kDetectBoxes / kDetectScores / kDetectBest): never
  // held, 0 bytes.
  std::vector<char> decoded_by_conv;
  // Per tensor: a decoded table [rows, 4 + nc] held compactly as [rows, 6] (x1, y1, x2, y2, best
  // score, its class): all its NMS reads (HeadMemory::kDetections).
  std::vector<char> compact_table;
  int64_t arena_bytes = 0;
  int64_t sum_tensor_bytes = 0;  // what one buffer per tensor would take (aligned, no fusion)
};

// Offsets for tensors of `sizes` bytes alive over `lifetimes` (inclusive node ranges), the smallest
// arena of the three orders above. Tensors of
// size 0 get offset 0 and take no space. Two tensors whose lifetimes intersect never overlap.
std::vector<int64_t> assign_offsets_greedy(const std::vector<int64_t>& sizes,
                                           const std::vector<Lifetime>& lifetimes,
                                           int64_t* arena_bytes);

// Lifetimes of every activation tensor of a validated graph.
std::vector<Lifetime> tensor_lifetimes(const Graph& graph);

// `fuse_concat`: plan conv outputs as views into the concats that are their only reader, and split
// outputs as views of the split's input where their readers take a row stride.
// `pack_codes`: hold 1..4-bit code tensors packed (codes.h) where their pixel rows start on bytes
// and every concat/split/pool/upsample they meet agrees; false: one byte per code everywhere.
// What a YOLOv8 Detect head holds (docs/memory.md "The head"):
// - kRaw: every tensor, the raw box and class logits among them;
// - kTable: the raw inputs that convs produce (as their only output, every channel) and only the
//   Detect reads (graph outputs or not) are decoded in their convs' epilogues into the decoded
//   table and take no memory (both inputs of a level or neither);
// - kDetections: as kTable, and a table read only by an NMS is held as its compact [rows, 6]
//   (per anchor the best class, all the runtime's NMS uses): only the detections are whole.
enum class HeadMemory : uint8_t { kRaw, kTable, kDetections };

MemoryPlan plan_memory(const Graph& graph, bool fuse_concat = true, bool pack_codes = true,
                       HeadMemory head = HeadMemory::kDetections);

// Bytes of `elements` values at `storage_bits` per value.
inline int64_t storage_bytes(int64_t elements, int storage_bits) {
  return (elements * storage_bits + 7) / 8;
}

// Lays out tensors one after another (no reuse), keeping the views of `plan`: for debugging
// sessions where every intermediate stays readable. Returns the arena size.
int64_t layout_without_reuse(const Graph& graph, MemoryPlan* plan);

}  // namespace mixnas::rt
