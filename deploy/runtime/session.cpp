#include "deploy/runtime/session.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <utility>

#include "core/error.h"
#include "core/hash.h"
#include "deploy/runtime/codes.h"
#include "deploy/runtime/kernels/conv.h"
#include "deploy/runtime/package.h"
#include "deploy/runtime/packing.h"

namespace mixnas::rt {

// ---------------------------------------------------------------------------------------------
// Model

Model::Model(Graph graph) : graph_(std::move(graph)), plan_(plan_memory(graph_)) {}

std::shared_ptr<const Model> Model::load(const std::string& path) {
  return std::shared_ptr<const Model>(new Model(load_package_file(path)));
}

std::shared_ptr<const Model> Model::from_bytes(const void* data, size_t size,
                                               const std::string& origin) {
  return std::shared_ptr<const Model>(
      new Model(parse_package(static_cast<const uint8_t*>(data), size, origin)));
}

std::shared_ptr<const Model> Model::from_graph(Graph graph, const std::string& origin) {
  validate_graph(graph, origin);
  return std::shared_ptr<const Model>(new Model(std::move(graph)));
}

int64_t Model::weight_bytes() const {
  int64_t total = 0;
  for (const WeightBuffer& b : graph_.buffers) total += static_cast<int64_t>(b.data.size());
  return total;
}

// ---------------------------------------------------------------------------------------------
// Statistics and the profile table

LatencyStats latency_stats(std::vector<double> s) {
  LatencyStats st;
  st.runs = static_cast<int>(s.size());
  if (s.empty()) return st;
  std::sort(s.begin(), s.end());
  const size_t n = s.size();
  st.min_ms = s.front();
  st.median_ms = n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
  st.mean_ms = std::accumulate(s.begin(), s.end(), 0.0) / n;
  const size_t rank = static_cast<size_t>(std::ceil(0.9 * n));
  st.p90_ms = s[std::max<size_t>(rank, 1) - 1];
  double var = 0;
  for (double v : s) var += (v - st.mean_ms) * (v - st.mean_ms);
  st.std_ms = std::sqrt(var / n);
  return st;
}

std::string format_profile(const Profile& p) {
  double sum = 0;
  for (const NodeProfile& n : p.nodes) sum += n.median_ms;
  std::string out;
  char line[512];
  std::snprintf(line, sizeof line, "%-4s %-28s %-10s %-40s %10s %10s %7s\n", "#", "node", "op",
                "kernel", "median_ms", "mean_ms", "share");
  out += line;
  for (size_t i = 0; i < p.nodes.size(); ++i) {
    const NodeProfile& n = p.nodes[i];
    std::snprintf(line, sizeof line, "%-4zu %-28.28s %-10s %-40.40s %10.4f %10.4f %6.1f%%\n", i,
                  n.name.c_str(), n.op.c_str(), n.kernel.c_str(), n.median_ms, n.mean_ms,
                  sum > 0 ? 100.0 * n.median_ms / sum : 0.0);
    out += line;
  }
  std::snprintf(line, sizeof line,
                "total: runs=%d warmup=%d threads=%d min=%.4f median=%.4f mean=%.4f p90=%.4f "
                "std=%.4f ms\n",
                p.total.runs, p.warmup, p.threads, p.total.min_ms, p.total.median_ms,
                p.total.mean_ms, p.total.p90_ms, p.total.std_ms);
  out += line;
  const MemoryReport& m = p.memory;
  std::snprintf(line, sizeof line,
                "memory: arena=%lld (no reuse: %lld) weights=%lld (resident %lld) scratch=%lld "
                "peak=%lld bytes\n",
                static_cast<long long>(m.arena_bytes), static_cast<long long>(m.sum_tensor_bytes),
                static_cast<long long>(m.weight_bytes),
                static_cast<long long>(m.resident_weight_bytes),
                static_cast<long long>(m.scratch_bytes), static_cast<long long>(m.peak_bytes));
  out += line;
  return out;
}

// ---------------------------------------------------------------------------------------------
// Session

void Session::ArenaFree::operator()(uint8_t* p) const {
  std::free(p);
}

namespace {

ConvWeights conv_weights_of(const Graph& g, const Node& node, int input_storage_bits) {
  const TensorDesc& x = g.tensors[node.inputs[0]];
  const TensorDesc& w = g.tensors[node.inputs[1]];
  const ConvAttrs& a = node.conv;
  ConvWeights cw;
  ConvGeometry& geo = cw.geometry;
  geo.in_h = x.shape[0];
  geo.in_w = x.shape[1];
  geo.in_c = x.shape[2];
  geo.out_c = w.shape[0];
  geo.kernel_h = w.shape[2];
  geo.kernel_w = w.shape[3];
  geo.stride_h = a.stride_h;
  geo.stride_w = a.stride_w;
  geo.pad_top = a.pad_top;
  geo.pad_left = a.pad_left;
  geo.pad_bottom = a.pad_bottom;
  geo.pad_right = a.pad_right;
  geo.dilation_h = a.dilation_h;
  geo.dilation_w = a.dilation_w;
  geo.groups = a.groups;
  const WeightBuffer& wb = g.buffers[w.buffer];
  if (w.is_float()) {
    cw.precision = ConvPrecision::kF32;
    cw.weights_f32 = unpack_f32_buffer(wb);
  } else {
    cw.precision = ConvPrecision::kInt;
    cw.w_bits = w.bits;
    cw.a_bits = x.bits;
    cw.weight_codes = unpack_code_buffer(wb);
    cw.weight_scale = w.scale.size() == 1 ? std::vector<float>(geo.out_c, w.scale[0]) : w.scale;
    cw.input_scale = x.scale[0];
    cw.input_zero_point = x.zero_point[0];
    cw.input_storage_bits = input_storage_bits;
  }
  if (a.has_bias) cw.bias = unpack_f32_buffer(g.buffers[g.tensors[node.inputs[2]].buffer]);
  return cw;
}

}  // namespace

Session::Session(std::shared_ptr<const Model> model, SessionOptions options)
    : model_(std::move(model)), options_(options) {
  if (!model_) throw Error("Session: no model");
  threads_ = options_.threads > 0 ? options_.threads : std::max(1, omp_get_max_threads());
  const Graph& g = model_->graph();
  const HeadMemory head =
      options_.arena == ArenaStrategy::kGreedyBySize ? options_.head : HeadMemory::kRaw;
  plan_ = options_.pack_activations && head == HeadMemory::kDetections
              ? model_->memory_plan()
              : plan_memory(g, true, options_.pack_activations, head);
  arena_bytes_ = options_.arena == ArenaStrategy::kGreedyBySize ? plan_.arena_bytes
                                                                : layout_without_reuse(g, &plan_);
  if (arena_bytes_ > kMaxArenaBytes)
    throw Error("Session: the model needs " + std::to_string(arena_bytes_) +
                " bytes of activation memory, more than the runtime's limit of " +
                std::to_string(kMaxArenaBytes) + "; export it with a smaller input size");
  const size_t alloc = static_cast<size_t>(std::max<int64_t>(arena_bytes_, kArenaAlignment));
  arena_.reset(static_cast<uint8_t*>(std::aligned_alloc(kArenaAlignment, alloc)));
  if (!arena_)
    throw Error("Session: cannot allocate an arena of " + std::to_string(alloc) + " bytes");
  std::memset(arena_.get(), 0, alloc);
  conv_plans_.resize(g.nodes.size());
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& node = g.nodes[i];
    if (node.op != OpType::kConv2d) continue;
    try {
      const ConvWeights cw = conv_weights_of(g, node, plan_.storage_bits[node.inputs[0]]);
      conv_plans_[i] =
          options_.reference_kernels ? make_conv_plan_reference(cw) : make_conv_plan(cw);
    } catch (const Error& e) {
      throw Error("conv node '" + node.name + "': " + e.what());
    }
  }
  wire_bit_planes();
  wire_detect_decoding();
}

void Session::wire_detect_decoding() {
  const Graph& g = model_->graph();
  detect_targets_.assign(g.tensors.size(), {});
  for (const Node& n : g.nodes) {
    if (n.op != OpType::kDetectV8) continue;
    const bool compact = plan_.compact_table[n.outputs[0]];
    const int cols = compact ? 6 : 4 + n.v8.num_classes;
    int64_t row0 = 0;
    for (size_t l = 0; l < n.v8.strides.size(); ++l) {
      const TensorDesc& box = g.tensors[n.inputs[2 * l]];
      for (int k = 0; k < 2; ++k) {
        const int t = n.inputs[2 * l + k];
        if (!plan_.decoded_by_conv[t]) continue;
        DetectTarget& d = detect_targets_[t];
        d.table = n.outputs[0];
        d.row0 = row0;
        d.sink.kind = k == 0    ? ConvSink::kDetectBoxes
                      : compact ? ConvSink::kDetectBest
                                : ConvSink::kDetectScores;
        d.sink.row_stride = cols;
        d.sink.channel_offset = k == 0 ? 0 : 4;
        d.sink.reg_max = n.v8.reg_max;
        d.sink.grid_width = box.shape[1];
        d.sink.anchor_stride = n.v8.strides[l];
      }
      row0 += int64_t{box.shape[0]} * box.shape[1];
    }
  }
}

void Session::wire_bit_planes() {
  const Graph& g = model_->graph();
  const size_t nt = g.tensors.size();
  planes_.assign(nt, {});
  plane_base_.assign(nt, -1);
  plane_channel_.assign(nt, 0);
  planes_only_.assign(nt, 0);
  if (!options_.bit_plane_activations) return;
  std::vector<int> producer(nt, -1);
  std::vector<char> planes_reader(nt, 0), other_reader(nt, 0);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = g.nodes[i];
    for (int t : n.outputs) producer[t] = static_cast<int>(i);
    const bool takes_planes = conv_plans_[i] && conv_plans_[i]->accepts_bit_planes();
    for (size_t k = 0; k < n.inputs.size(); ++k)
      (takes_planes && k == 0 ? planes_reader : other_reader)[n.inputs[k]] = 1;
  }
  for (int t : g.output.tensors) other_reader[t] = 1;
  const bool inspectable = options_.check_memory || options_.arena != ArenaStrategy::kGreedyBySize;
  for (size_t t = 0; t < nt; ++t) {
    const TensorDesc& d = g.tensors[t];
    if (!planes_reader[t] || d.is_float() || plan_.view_of[t] >= 0 || producer[t] < 0) continue;
    // Written by one conv, or by convs writing every slice of a concat in place: those epilogues
    // can write the planes. Anything else (the graph input, split, pool, upsample, a concat that
    // copies a slice) leaves the reader to pack codes.
    const Node& p = g.nodes[producer[t]];
    std::vector<std::pair<int, int>> views;  // (slice tensor, channel offset)
    if (p.op == OpType::kConcat) {
      int offset = 0;
      bool all_views = true;
      for (int in : p.inputs) {
        all_views = all_views && plan_.fused_input[in] && plan_.view_of[in] == static_cast<int>(t);
        views.push_back({in, offset});
        offset += g.tensors[in].shape[2];
      }
      if (!all_views) continue;
    } else if (p.op != OpType::kConv2d) {
      continue;
    }
    const int pixels = d.shape[0] * d.shape[1], wpp = (d.shape[2] + 63) / 64;
    planes_[t].words_per_plane = wpp;
    planes_[t].words.assign(static_cast<size_t>(pixels) * d.bits * wpp, 0);
    planes_only_[t] = !other_reader[t] && !inspectable;
    for (const auto& [view, channel] : views) {
      plane_base_[view] = static_cast<int>(t);
      plane_channel_[view] = channel;
      planes_only_[view] = planes_only_[t];
    }
  }
}

bool Session::reads_bit_planes(int node) const {
  if (node < 0 || node >= static_cast<int>(conv_plans_.size()) || !conv_plans_[node]) return false;
  const int x = model_->graph().nodes[node].inputs[0];
  return conv_plans_[node]->accepts_bit_planes() && !planes_[x].words.empty();
}

Session::~Session() = default;

uint8_t* Session::data(int tensor) const {
  return arena_.get() + plan_.offsets[tensor];
}

int64_t Session::row_bytes(int tensor) const {
  const int cols = plan_.compact_table[tensor] ? plan_.row_stride[tensor]  // [rows, 6]
                                               : model_->graph().tensors[tensor].shape.back();
  return storage_bytes(cols, plan_.storage_bits[tensor]);
}

int64_t Session::stride_bytes(int tensor) const {
  return storage_bytes(plan_.row_stride[tensor], plan_.storage_bits[tensor]);
}

std::vector<uint8_t> Session::tensor_bytes(int tensor) const {
  const Graph& g = model_->graph();
  if (tensor >= 0 && tensor < static_cast<int>(g.tensors.size()) &&
      (plan_.decoded_by_conv[tensor] || plan_.compact_table[tensor]))
    throw Error("Session::tensor_bytes: '" + g.tensors[tensor].name + "' is " +
                (plan_.decoded_by_conv[tensor] ? "decoded by its conv into the Detect table"
                                               : "held compactly (the best class per anchor)") +
                " and not held whole; set SessionOptions::head to HeadMemory::kRaw (or kTable "
                "for the decoded table) to keep it");
  if (tensor < 0 || tensor >= static_cast<int>(g.tensors.size()) || plan_.offsets[tensor] < 0)
    throw Error("Session::tensor_bytes: " + std::to_string(tensor) +
                " is not an activation tensor");
  const TensorDesc& d = g.tensors[tensor];
  const int64_t cols = d.shape.back(), rows = d.elements() / cols;
  const int sb = storage_bits(tensor);
  if (sb < 8) {  // packed codes: one byte per code out
    std::vector<uint8_t> out(static_cast<size_t>(rows * cols));
    for (int64_t r = 0; r < rows; ++r)
      unpack_codes(data(tensor), sb, r * plan_.row_stride[tensor], cols, &out[r * cols]);
    return out;
  }
  const int64_t row = row_bytes(tensor), stride = stride_bytes(tensor);
  std::vector<uint8_t> out(static_cast<size_t>(rows * row));
  for (int64_t r = 0; r < rows; ++r) std::memcpy(&out[r * row], data(tensor) + r * stride, row);
  return out;
}

uint64_t Session::checksum(int tensor) const {
  const TensorDesc& d = model_->graph().tensors[tensor];
  const int64_t row = row_bytes(tensor), stride = stride_bytes(tensor);
  const int64_t rows = d.elements() / d.shape.back();
  uint64_t h = kFnv1aOffset;  // over the tensor's own bytes (its rows, not the gaps of a view)
  for (int64_t r = 0; r < rows; ++r)
    h = fnv1a(data(tensor) + r * stride, static_cast<size_t>(row), h);
  return h;
}

std::string Session::kernel_name(int node) const {
  if (node < 0 || node >= static_cast<int>(conv_plans_.size()) || !conv_plans_[node]) return "";
  return conv_plans_[node]->kernel_name();
}

MemoryReport Session::memory() const {
  MemoryReport m;
  m.arena_bytes = arena_bytes_;
  m.sum_tensor_bytes = plan_.sum_tensor_bytes;
  m.weight_bytes = model_->weight_bytes();
  // Plans own their indirection and padding buffers; the per-block working memory is one
  // buffer per thread shared by every plan (kernels/conv.h, thread_scratch), so it counts once
  // per thread at the largest size a plan needs.
  size_t thread_scratch = 0;
  for (const auto& p : conv_plans_) {
    if (!p) continue;
    m.resident_weight_bytes += static_cast<int64_t>(p->packed_weight_bytes());
    m.scratch_bytes += static_cast<int64_t>(p->scratch_bytes());
    thread_scratch = std::max(thread_scratch, p->thread_scratch_bytes() + 64);
  }
  // Packed max-pool / quantize / dequantize: a band per thread (ops.h), outside the conv scratch.
  size_t op_scratch = 0;
  const Graph& g = model_->graph();
  for (const Node& n : g.nodes) {
    const int x = n.inputs.empty() ? -1 : n.inputs[0], y = n.outputs.empty() ? -1 : n.outputs[0];
    const bool packed = (x >= 0 && storage_bits(x) > 0 && storage_bits(x) < 8) ||
                        (y >= 0 && storage_bits(y) > 0 && storage_bits(y) < 8);
    if (!packed) continue;
    const TensorDesc& d = g.tensors[x];
    if (n.op == OpType::kMaxPool)
      op_scratch =
          std::max(op_scratch, packed_op_scratch_bytes(d.shape[1], d.shape[2], n.pool.kernel));
    else if (n.op == OpType::kQuantize || n.op == OpType::kDequantize)
      op_scratch = std::max(op_scratch, packed_op_scratch_bytes(1, 1, 1));
  }
  m.scratch_bytes += static_cast<int64_t>(thread_scratch + op_scratch) * threads_;
  for (const PlaneBuffer& b : planes_) m.scratch_bytes += static_cast<int64_t>(b.words.size() * 8);
  m.peak_bytes = m.arena_bytes + m.resident_weight_bytes + m.scratch_bytes;
  return m;
}

LetterboxInfo Session::set_input_image(const ImageView& image) {
  const Graph& g = model_->graph();
  const InputSpec& spec = g.input;
  const TensorDesc& in = g.tensors[spec.tensor];
  if (in.shape[2] != 3 || !(in.is_float() || in.bits == 8)) {
    throw Error("the model's input is not an RGB image (shape [" + std::to_string(in.shape[0]) +
                ", " + std::to_string(in.shape[1]) + ", " + std::to_string(in.shape[2]) + "], " +
                std::to_string(in.bits) + " bits); set it with set_input/set_input_codes");
  }
  if (!in.is_float()) return letterbox(image, spec, data(spec.tensor));
  std::vector<uint8_t> pixels(static_cast<size_t>(spec.height) * spec.width * 3);
  const LetterboxInfo info = letterbox(image, spec, pixels.data());
  float* dst = reinterpret_cast<float*>(data(spec.tensor));
  for (size_t i = 0; i < pixels.size(); ++i) {
    const int c = static_cast<int>(i % 3);
    const float mean = spec.mean.empty() ? 0.0f : spec.mean[c];
    const float stdv = spec.std.empty() ? 1.0f : spec.std[c];
    dst[i] = (pixels[i] * spec.pixel_scale - mean) / stdv;
  }
  return info;
}

void Session::set_input(const float* values, size_t count) {
  const Graph& g = model_->graph();
  const TensorDesc& in = g.tensors[g.input.tensor];
  if (!in.is_float())
    throw Error("Session::set_input: the model's input takes codes (set_input_codes)");
  if (count != static_cast<size_t>(in.elements()))
    throw Error("Session::set_input: " + std::to_string(count) + " values, the input needs " +
                std::to_string(in.elements()));
  std::memcpy(data(g.input.tensor), values, count * sizeof(float));
}

void Session::set_input_codes(const uint8_t* codes, size_t count) {
  const Graph& g = model_->graph();
  const TensorDesc& in = g.tensors[g.input.tensor];
  if (in.is_float())
    throw Error("Session::set_input_codes: the model's input takes floats (set_input)");
  if (count != static_cast<size_t>(in.elements()))
    throw Error("Session::set_input_codes: " + std::to_string(count) + " codes, the input needs " +
                std::to_string(in.elements()));
  const uint8_t top = count ? *std::max_element(codes, codes + count) : 0;
  if (top >> in.bits)
    throw Error("Session::set_input_codes: code " + std::to_string(top) +
                " does not fit the input's " + std::to_string(in.bits) + "-bit grid");
  pack_codes(codes, static_cast<int64_t>(count), storage_bits(g.input.tensor), data(g.input.tensor),
             0);
}

std::vector<Detection> Session::run(const ImageView& image) {
  const LetterboxInfo info = set_input_image(image);
  run_graph();
  std::vector<Detection> dets = detections();
  for (Detection& d : dets) d = map_to_original(d, info);
  return dets;
}

void Session::run_graph() {
  const Graph& g = model_->graph();
  if (options_.check_memory) {
    checksums_.assign(g.tensors.size(), 0);
    written_.assign(g.tensors.size(), 0);
    checksums_[g.input.tensor] = checksum(g.input.tensor);
    written_[g.input.tensor] = 1;
  }
  using Clock = std::chrono::steady_clock;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Clock::time_point t0 = node_times_ ? Clock::now() : Clock::time_point{};
    run_node(static_cast<int>(i));
    if (node_times_)
      (*node_times_)[i] = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    if (options_.check_memory) check_memory_after(static_cast<int>(i));
  }
}

void Session::check_memory_after(int node) {
  const Graph& g = model_->graph();
  for (int t : g.nodes[node].outputs) {
    if (plan_.offsets[t] < 0) continue;  // decoded into the Detect table, not held
    checksums_[t] = checksum(t);
    written_[t] = 1;
  }
  for (size_t t = 0; t < g.tensors.size(); ++t) {
    if (plan_.offsets[t] < 0 || !written_[t]) continue;
    const Lifetime& life = plan_.lifetimes[t];
    if (life.first > node || life.last < node) continue;
    if (checksum(static_cast<int>(t)) != checksums_[t])
      throw Error("memory plan: tensor '" + g.tensors[t].name +
                  "' changed while live, after node " + std::to_string(node) + " '" +
                  g.nodes[node].name + "'");
  }
  // Poison what dies here (views belong to their concat), so that a later reader of an
  // overlapping region is caught.
  const bool last_node = node + 1 == static_cast<int>(g.nodes.size());
  for (size_t t = 0; t < g.tensors.size(); ++t)
    if (plan_.offsets[t] >= 0 && plan_.view_of[t] < 0 && plan_.lifetimes[t].last == node &&
        !last_node)
      std::memset(data(static_cast<int>(t)), 0xA5, plan_.bytes[t]);
}

Profile Session::profile(int runs, int warmup) {
  if (runs < 1) throw Error("profile: runs must be >= 1, got " + std::to_string(runs));
  const Graph& g = model_->graph();
  // The arena reuses the input's memory once it is dead: restore the input before every run.
  const int in = g.input.tensor;
  const std::vector<uint8_t> input(data(in), data(in) + plan_.bytes[in]);
  const auto restore_input = [&] { std::memcpy(data(in), input.data(), input.size()); };
  for (int i = 0; i < warmup; ++i) {
    restore_input();
    run_graph();
  }
  std::vector<std::vector<double>> per_node(g.nodes.size());
  std::vector<double> node_ms(g.nodes.size()), totals;
  using Clock = std::chrono::steady_clock;
  for (int r = 0; r < runs; ++r) {
    restore_input();
    node_times_ = &node_ms;
    const Clock::time_point t0 = Clock::now();
    try {
      run_graph();
    } catch (...) {
      node_times_ = nullptr;
      throw;
    }
    totals.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    node_times_ = nullptr;
    for (size_t i = 0; i < g.nodes.size(); ++i) per_node[i].push_back(node_ms[i]);
  }
  Profile p;
  p.threads = threads_;
  p.warmup = warmup;
  p.total = latency_stats(totals);
  p.memory = memory();
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const LatencyStats st = latency_stats(per_node[i]);
    p.nodes.push_back({g.nodes[i].name, op_type_name(g.nodes[i].op),
                       kernel_name(static_cast<int>(i)), st.median_ms, st.mean_ms});
  }
  return p;
}

std::vector<RawOutput> Session::outputs() const {
  const Graph& g = model_->graph();
  std::vector<RawOutput> outs;
  for (int t : g.output.tensors) {
    if (plan_.decoded_by_conv[t] || plan_.compact_table[t]) continue;  // not held whole
    const TensorDesc& d = g.tensors[t];
    RawOutput o{d.name, d.shape, std::vector<float>(d.elements())};
    if (d.is_float())
      std::memcpy(o.values.data(), data(t), o.values.size() * sizeof(float));
    else
      dequantize_packed(data(t), storage_bits(t), o.values.size(), d.grid(), o.values.data(), 1);
    outs.push_back(std::move(o));
  }
  return outs;
}

std::vector<Detection> Session::detections() const {
  const Graph& g = model_->graph();
  std::vector<Detection> dets;
  if (g.output.detections < 0) return dets;
  const int t = g.output.tensors[g.output.detections];
  const float* rows = reinterpret_cast<const float*>(data(t));
  for (int r = 0; r < g.tensors[t].shape[0]; ++r) {
    const float* row = rows + r * 6;
    if (row[5] < 0) break;
    dets.push_back({row[0], row[1], row[2], row[3], row[4], static_cast<int>(row[5])});
  }
  return dets;
}

void Session::run_conv(int index) {
  const Graph& g = model_->graph();
  const Node& node = g.nodes[index];
  const TensorDesc& x = g.tensors[node.inputs[0]];
  ConvInputView in;
  in.row_stride = plan_.row_stride[node.inputs[0]];  // > channels for a split's view
  if (x.is_float()) {
    in.f32 = reinterpret_cast<const float*>(data(node.inputs[0]));
  } else {
    in.codes = data(node.inputs[0]);
    in.code_storage_bits = storage_bits(node.inputs[0]);
  }
  if (reads_bit_planes(index)) {  // written by the producer's epilogue: no packing pass
    const PlaneBuffer& b = planes_[node.inputs[0]];
    in.codes = nullptr;
    in.bit_planes = b.words.data();
    in.plane_stride = b.words_per_plane;
    in.row_stride = x.bits * b.words_per_plane;
  }
  ConvEpilogue ep;
  ep.act.kind = static_cast<Activation>(node.conv.activation);
  ep.act.alpha = node.conv.alpha;
  if (node.conv.has_residual) {
    const int r = node.inputs[node.conv.has_bias ? 3 : 2];
    ep.residual = reinterpret_cast<const float*>(data(r));
    ep.residual_row_stride = plan_.row_stride[r];
  }
  for (int t : node.outputs) {
    const TensorDesc& o = g.tensors[t];
    if (plan_.decoded_by_conv[t]) {  // into the decoded table (wire_detect_decoding)
      const DetectTarget& d = detect_targets_[t];
      ConvSink s = d.sink;
      s.data = f32(d.table) + d.row0 * s.row_stride;
      ep.sinks.push_back(s);
      continue;
    }
    ConvSink s;
    s.kind = o.is_float() ? ConvSink::kF32 : ConvSink::kCodes;
    s.data = data(t);
    s.row_stride = plan_.row_stride[t];  // > channels when writing into a concat's slice
    if (o.is_float() && o.shape[2] != g.tensors[node.inputs[1]].shape[0]) {
      s.first_channel = node.conv.f32_channel_begin;  // floats for some channels only
      s.channels = o.shape[2];
    }
    if (!o.is_float()) {
      s.scale = o.scale[0];
      s.zero_point = o.zero_point[0];
      s.bits = o.bits;
      s.storage_bits = storage_bits(t);
    }
    if (!planes_only_[t]) ep.sinks.push_back(s);
    // The same codes as bit planes, for bit-serial readers of this tensor or of the concat it is
    // a slice of.
    const int base = planes_[t].words.empty() ? plane_base_[t] : t;
    if (base >= 0) {
      PlaneBuffer& b = planes_[base];
      ConvSink p = s;  // a code sink: every channel
      p.kind = ConvSink::kBitPlanes;
      p.storage_bits = 8;
      p.data = b.words.data();
      p.plane_stride = b.words_per_plane;
      p.row_stride = o.bits * b.words_per_plane;
      p.channel_offset = base == t ? 0 : plane_channel_[t];
      ep.sinks.push_back(p);
    }
  }
  conv_plans_[index]->run(in, ep, threads_);
}

void Session::run_node(int index) {
  const Node& node = model_->graph().nodes[index];
  switch (node.op) {
    case OpType::kConv2d:
      return run_conv(index);
    case OpType::kConcat:
      return run_concat(node);
    case OpType::kSplit:
      return run_split(node);
    case OpType::kAdd:
      return add_f32(f32(node.inputs[0]), f32(node.inputs[1]),
                     model_->graph().tensors[node.outputs[0]].elements(), f32(node.outputs[0]),
                     threads_);
    case OpType::kMaxPool:
    case OpType::kUpsample:
      return run_resample(node);
    case OpType::kQuantize:
    case OpType::kDequantize:
      return run_quantize(node);
    case OpType::kDetectV8:
    case OpType::kDetectV5:
      return run_detect(node);
    case OpType::kNms:
      return run_nms(node);
  }
}

float* Session::f32(int t) const {
  return reinterpret_cast<float*>(data(t));
}

// Inputs planned as views were written in place by their convs; copy the others. Rows of every
// tensor start on bytes (packed codes too, MemoryPlan::storage_bits).
void Session::run_concat(const Node& node) {
  const TensorDesc& o = model_->graph().tensors[node.outputs[0]];
  const int64_t pixels = int64_t{o.shape[0]} * o.shape[1];
  const int64_t out_row = row_bytes(node.outputs[0]);
  const int th = threads_;
  int64_t offset = 0;
  uint8_t* out = data(node.outputs[0]);
  for (int t : node.inputs) {
    const int64_t row = row_bytes(t), stride = stride_bytes(t);  // a split's view: strided
    if (!plan_.fused_input[t]) {
      const uint8_t* in = data(t);
#pragma omp parallel for num_threads(th) if (th > 1 && pixels > 256)
      for (int64_t p = 0; p < pixels; ++p)
        std::memcpy(out + p * out_row + offset, in + p * stride, row);
    }
    offset += row;
  }
}

// Outputs planned as views of the input are read in place; copy the others, as bytes per row
// (packed rows start on bytes).
void Session::run_split(const Node& node) {
  const TensorDesc& x = model_->graph().tensors[node.inputs[0]];
  const int64_t pixels = int64_t{x.shape[0]} * x.shape[1];
  const int64_t in_row = row_bytes(node.inputs[0]);
  const uint8_t* in = data(node.inputs[0]);
  const int th = threads_;
  int64_t offset = 0;
  for (int t : node.outputs) {
    const int64_t row = row_bytes(t);
    if (plan_.view_of[t] < 0) {
      uint8_t* out = data(t);
#pragma omp parallel for num_threads(th) if (th > 1 && pixels > 256)
      for (int64_t p = 0; p < pixels; ++p)
        std::memcpy(out + p * row, in + p * in_row + offset, row);
    }
    offset += row;
  }
}

// Max-pool and nearest upsampling, on floats, byte codes or packed codes.
void Session::run_resample(const Node& node) {
  const TensorDesc& x = model_->graph().tensors[node.inputs[0]];
  const int h = x.shape[0], w = x.shape[1], c = x.shape[2], th = threads_;
  const int in = node.inputs[0], out = node.outputs[0];
  if (node.op == OpType::kUpsample) {
    if (x.is_float())
      upsample_nearest(f32(in), h, w, c, node.upsample_factor, f32(out), th);
    else  // whole pixels are copied: packed rows move as their bytes
      upsample_nearest(data(in), h, w, static_cast<int>(row_bytes(in)), node.upsample_factor,
                       data(out), th);
    return;
  }
  const PoolAttrs& p = node.pool;
  const int sb = storage_bits(in);
  if (x.is_float())
    maxpool2d(f32(in), h, w, c, p.kernel, p.stride, p.pad, f32(out), th);
  else if (sb < 8)
    maxpool2d_packed(data(in), sb, h, w, c, p.kernel, p.stride, p.pad, data(out), th);
  else
    maxpool2d(data(in), h, w, c, p.kernel, p.stride, p.pad, data(out), th);
}

void Session::run_quantize(const Node& node) {
  const Graph& g = model_->graph();
  const int in = node.inputs[0], out = node.outputs[0];
  if (node.op == OpType::kDequantize) {
    const TensorDesc& x = g.tensors[in];
    dequantize_packed(data(in), storage_bits(in), x.elements(), x.grid(), f32(out), threads_);
    return;
  }
  const TensorDesc& o = g.tensors[out];
  if (storage_bits(out) < 8)
    quantize_packed(f32(in), o.elements(), o.grid(), storage_bits(out), data(out), threads_);
  else
    quantize(f32(in), o.elements(), o.grid(), data(out), threads_);
}

// The decoded [anchors, 4 + nc] table, level after level.
void Session::run_detect(const Node& node) {
  const Graph& g = model_->graph();
  float* out = f32(node.outputs[0]);
  if (node.op == OpType::kDetectV8) {
    const DetectV8Attrs& a = node.v8;
    for (size_t l = 0; l < a.strides.size(); ++l) {
      const TensorDesc& box = g.tensors[node.inputs[2 * l]];
      if (plan_.decoded_by_conv[node.inputs[2 * l]]) {  // its convs wrote these rows
        out += int64_t{box.shape[0]} * box.shape[1] * (4 + a.num_classes);
        continue;
      }
      decode_yolov8_level(f32(node.inputs[2 * l]), f32(node.inputs[2 * l + 1]), box.shape[0],
                          box.shape[1], a.reg_max, a.num_classes, a.strides[l], out, threads_);
      out += int64_t{box.shape[0]} * box.shape[1] * (4 + a.num_classes);
    }
    return;
  }
  const DetectV5Attrs& a = node.v5;
  for (size_t l = 0; l < a.strides.size(); ++l) {
    const TensorDesc& x = g.tensors[node.inputs[l]];
    decode_yolov5_level(f32(node.inputs[l]), x.shape[0], x.shape[1], a.num_anchors, a.num_classes,
                        a.strides[l], a.anchors.data() + l * a.num_anchors * 2, out, threads_);
    out += int64_t{x.shape[0]} * x.shape[1] * a.num_anchors * (4 + a.num_classes);
  }
}

// max_detections rows of (x1, y1, x2, y2, score, class); rows past the detections hold class -1.
void Session::run_nms(const Node& node) {
  const TensorDesc& x = model_->graph().tensors[node.inputs[0]];
  const std::vector<Detection> dets =
      plan_.compact_table[node.inputs[0]]
          ? nms_best_rows(f32(node.inputs[0]), x.shape[0], node.nms)
          : nms(f32(node.inputs[0]), x.shape[0], x.shape[1], node.nms);
  float* out = f32(node.outputs[0]);
  for (int r = 0; r < node.nms.max_detections; ++r) {
    float* row = out + r * 6;
    if (r < static_cast<int>(dets.size())) {
      const Detection& d = dets[r];
      row[0] = d.x1, row[1] = d.y1, row[2] = d.x2, row[3] = d.y2, row[4] = d.score;
      row[5] = static_cast<float>(d.class_id);
    } else {
      std::fill(row, row + 5, 0.0f);
      row[5] = -1.0f;
    }
  }
}

}  // namespace mixnas::rt
