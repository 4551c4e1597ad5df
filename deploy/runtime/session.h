#pragma once
// Running an .mxr model: Model (the validated graph and its memory plan, immutable, shareable)
// and Session (conv plans with packed weights, the arena, the executor, the profiler).
//
//   auto model = mixnas::rt::Model::load("best.mxr");
//   mixnas::rt::Session session(model, {/*threads=*/2});
//   std::vector<mixnas::rt::Detection> dets = session.run(image);  // boxes in image pixels
//
// A Session is not thread-safe (one run at a time; conv plans own scratch memory). Use one
// Session per thread; they may share a Model. Results are identical for any thread count.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "deploy/runtime/graph.h"
#include "deploy/runtime/kernels/conv.h"
#include "deploy/runtime/ops.h"
#include "deploy/runtime/planner.h"

namespace mixnas::rt {

class ConvPlan;

// Sessions refuse models whose activation arena exceeds this (a hostile or mis-exported package).
constexpr int64_t kMaxArenaBytes = int64_t{8} << 30;

class Model {
 public:
  static std::shared_ptr<const Model> load(const std::string& path);
  static std::shared_ptr<const Model> from_bytes(const void* data, size_t size,
                                                 const std::string& origin = "<memory>");
  // Validates `graph` (throws mixnas::Error).
  static std::shared_ptr<const Model> from_graph(Graph graph,
                                                 const std::string& origin = "<graph>");

  const Graph& graph() const { return graph_; }
  const MemoryPlan& memory_plan() const { return plan_; }
  // Bytes of the packed weight buffers (low-bit weights count their packed size).
  int64_t weight_bytes() const;

 private:
  explicit Model(Graph graph);
  Graph graph_;
  MemoryPlan plan_;
};

enum class ArenaStrategy : uint8_t {
  kGreedyBySize,  // the memory plan (default)
  kNoReuse,       // one region per tensor: every intermediate stays readable after run (debugging)
};

struct SessionOptions {
  int threads = 1;  // <= 0: OpenMP's default
  ArenaStrategy arena = ArenaStrategy::kGreedyBySize;
  bool reference_kernels = false;  // scalar reference convs instead of the table's kernels
  // true: 1..4-bit code tensors are held packed in the arena (codes.h: 8, 4 or 2 codes per byte,
  // where their rows start on bytes; MemoryPlan::storage_bits); false: one byte per code. Results
  // are identical either way.
  bool pack_activations = true;
  // true: code tensors read by bit-serial convs (conv_lowbit.h) are written as bit planes by their
  // producing convs' epilogues (a producer conv, or the convs writing a concat's slices), so the
  // readers run no packing pass; the codes are written too unless every reader takes the planes
  // (and the tensor is no graph output; kNoReuse and check_memory keep them for inspection).
  // false: each bit-serial reader packs the codes itself. Results are identical either way.
  // Off by default: on AVX-512 the reader's packing (one byte test per 64 channels and plane) costs
  // less than the producer's per-vector plane gather, and chains of W1A1 convs measured 2-3% slower
  // with planes (docs/kernels.md).
  bool bit_plane_activations = false;
  // After every node, check that no live tensor changed since it was written, and fill dead
  // tensors with a poison pattern. Throws mixnas::Error on a violation. Slow; for tests.
  bool check_memory = false;
  // What the YOLOv8 Detect head holds (planner.h HeadMemory). kDetections (deploying): the raw box
  // and class logits are decoded by their convs' epilogues and never held, the decoded table is
  // held compactly (per anchor its best class, what NMS reads); outputs() has neither. kTable:
  // the whole decoded table too (`mixnas val` runs its own NMS on it). kRaw (and any kNoReuse
  // session): every tensor, for comparisons with the trainer's raw outputs. The detections are
  // the same bits in every mode, the table in kTable and kRaw.
  HeadMemory head = HeadMemory::kDetections;
  int runs = 20;   // profile(): timed runs
  int warmup = 3;  // profile(): untimed runs first
};

struct MemoryReport {
  int64_t arena_bytes = 0;            // activations, as planned
  int64_t sum_tensor_bytes = 0;       // one buffer per activation tensor (no reuse)
  int64_t weight_bytes = 0;           // packed weight buffers of the package
  int64_t resident_weight_bytes = 0;  // weights as the chosen kernels hold them (packed)
  int64_t scratch_bytes = 0;          // conv plans' scratch, plus bit-plane activation copies
  int64_t peak_bytes = 0;             // arena + resident weights + scratch
};

struct LatencyStats {
  int runs = 0;
  double min_ms = 0, median_ms = 0, mean_ms = 0, p90_ms = 0, std_ms = 0;
};
// Statistics of samples in ms: median of the middle two for even counts, p90 by nearest rank,
// population standard deviation.
LatencyStats latency_stats(std::vector<double> samples_ms);

struct NodeProfile {
  std::string name;
  std::string op;
  std::string kernel;  // conv kernel name, "" for other ops
  double median_ms = 0;
  double mean_ms = 0;
};

struct Profile {
  int threads = 1;
  int warmup = 0;
  std::vector<NodeProfile> nodes;
  LatencyStats total;
  MemoryReport memory;
};
// A per-node table (name, op, kernel, median, mean, share of the total), then totals.
std::string format_profile(const Profile& profile);

// A graph output as floats (codes dequantized).
struct RawOutput {
  std::string name;
  std::vector<int> shape;
  std::vector<float> values;
};

class Session {
 public:
  explicit Session(std::shared_ptr<const Model> model, SessionOptions options = {});
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Letterboxes `image` into the input, runs the graph, and returns the NMS detections mapped to
  // the original image (empty when the graph has no NMS output).
  std::vector<Detection> run(const ImageView& image);
  // Preprocessing only; returns the mapping to undo it.
  LetterboxInfo set_input_image(const ImageView& image);
  // Raw input: floats for a float input tensor, codes for a code input.
  void set_input(const float* values, size_t count);
  void set_input_codes(const uint8_t* codes, size_t count);
  // Runs every node on the current input. The arena reuses the input's memory after its last
  // reader, so set the input again before the next run.
  void run_graph();

  // After run_graph(): the graph outputs (those held: SessionOptions::raw_head_outputs), and the
  // NMS rows (input pixels) if any.
  std::vector<RawOutput> outputs() const;
  std::vector<Detection> detections() const;
  // The elements of any activation tensor, densely packed (float bytes or codes). Intermediates
  // are only meaningful with kNoReuse.
  std::vector<uint8_t> tensor_bytes(int tensor) const;

  // warmup runs, then `runs` timed runs of the graph, each on the input set before the call.
  Profile profile(int runs, int warmup);
  Profile profile() { return profile(options_.runs, options_.warmup); }
  MemoryReport memory() const;
  int threads() const { return threads_; }
  const Model& model() const { return *model_; }
  // The memory plan this session runs: the model's, or one made for its options (head, arena,
  // pack_activations).
  const MemoryPlan& memory_plan() const { return plan_; }
  // Conv kernel chosen for a node ("" for other ops).
  std::string kernel_name(int node) const;
  // Whether the conv node reads its input as bit planes written by the producer's epilogue
  // (SessionOptions::bit_plane_activations), i.e. runs no packing pass.
  bool reads_bit_planes(int node) const;

 private:
  void run_node(int index);
  void run_conv(int index);
  void run_concat(const Node& node);
  void run_split(const Node& node);
  void run_resample(const Node& node);
  void run_quantize(const Node& node);
  void run_detect(const Node& node);
  void run_nms(const Node& node);
  float* f32(int tensor) const;
  uint8_t* data(int tensor) const;
  int storage_bits(int tensor) const { return plan_.storage_bits[tensor]; }
  // Bytes of one row of `tensor` (its channels) and between rows (its row stride).
  int64_t row_bytes(int tensor) const;
  int64_t stride_bytes(int tensor) const;
  uint64_t checksum(int tensor) const;
  void check_memory_after(int node);
  void wire_bit_planes();
  void wire_detect_decoding();

  std::shared_ptr<const Model> model_;
  SessionOptions options_;
  int threads_ = 1;
  MemoryPlan plan_;  // the model's plan, or its no-reuse layout
  int64_t arena_bytes_ = 0;
  struct ArenaFree {
    void operator()(uint8_t* p) const;
  };
  std::unique_ptr<uint8_t, ArenaFree> arena_;
  std::vector<std::unique_ptr<ConvPlan>> conv_plans_;  // per node, null for other ops
  // Bit-plane activations (wire_bit_planes): per tensor its planes (BitPlaneLayout of its channels
  // and bits; empty = none), and for a concat slice written in place the concat tensor whose planes
  // it also writes, at which channel.
  struct PlaneBuffer {
    std::vector<uint64_t> words;
    int words_per_plane = 0;
  };
  std::vector<PlaneBuffer> planes_;
  std::vector<int> plane_base_, plane_channel_;
  // Per tensor: only read as bit planes (every reader takes the planes, not a graph output, no
  // debugging arena), so its producers write no codes.
  std::vector<char> planes_only_;
  // Per tensor decoded by its conv (MemoryPlan::decoded_by_conv): the table tensor, its first row
  // and the sink's decode fields (data filled per run).
  struct DetectTarget {
    int table = -1;
    int64_t row0 = 0;
    ConvSink sink;
  };
  std::vector<DetectTarget> detect_targets_;
  std::vector<uint64_t> checksums_;            // check_memory
  std::vector<char> written_;                  // check_memory: producer has run
  std::vector<double>* node_times_ = nullptr;  // profiling
};

}  // namespace mixnas::rt
