#include "evaluators/agent/budget.h"

#include <algorithm>
#include <cstdio>

#include "core/error.h"
#include "deploy/runtime/session.h"

namespace mixnas::agent {
namespace {

constexpr double kMiB = 1024.0 * 1024.0;

std::string mib(int64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f MiB", static_cast<double>(bytes) / kMiB);
  return buf;
}

// Every figure is an upper bound computed in double, so that no product of hostile sizes can
// overflow before it is compared with the limit.
int64_t clamp_bytes(double bytes) {
  return bytes > 9e18 ? int64_t{9'000'000'000'000'000'000} : static_cast<int64_t>(bytes);
}

}  // namespace

Footprint layer_footprint(const LayerSignature& s) {
  const double fan_in = static_cast<double>(s.in_c / std::max(s.groups, 1)) * s.kernel * s.kernel;
  const double weights = static_cast<double>(s.out_c) * fan_in;
  // Same padding: ceil(in / stride) outputs along each axis.
  const double out_px = static_cast<double>((s.in_h + s.stride - 1) / s.stride) *
                        ((s.in_w + s.stride - 1) / s.stride);
  const double in_elems = static_cast<double>(s.in_h) * s.in_w * s.in_c;
  Footprint fp;
  // fp32: the generator's floats, the package buffer, the kernel's packed copy (4 bytes each);
  // quantized: the int8 codes, the packed buffer, and a kernel copy of at most 4 bytes a weight.
  fp.weight_bytes = clamp_bytes(s.w_bits == 32 ? weights * 12 : weights * 6);
  // The input twice (the staging vector of the deterministic input, the arena) and the output.
  const double in_bytes = s.a_bits == 32 ? 4 : 1, out_bytes = s.out_bits == 32 ? 4 : 1;
  fp.activation_bytes = clamp_bytes(in_elems * in_bytes * 2 + out_px * s.out_c * out_bytes);
  fp.scratch_bytes = clamp_bytes(out_px * fan_in * 4);  // an im2col of 4-byte elements
  fp.gmac_per_run = out_px * s.out_c * fan_in / 1e9;
  return fp;
}

Footprint model_footprint(const rt::Model& model) {
  const rt::Graph& g = model.graph();
  Footprint fp;
  double weights = 0, scratch = 0, gmac = 0;
  for (const auto& b : g.buffers) {
    // The package's own buffer plus a kernel copy of at most 4 bytes a weight.
    weights += static_cast<double>(b.data.size()) + static_cast<double>(b.count) * 4;
  }
  for (const auto& n : g.nodes) {
    if (n.op != rt::OpType::kConv2d || n.inputs.size() < 2 || n.outputs.empty()) continue;
    const auto& w = g.tensors.at(static_cast<size_t>(n.inputs[1])).shape;
    const auto& out = g.tensors.at(static_cast<size_t>(n.outputs[0])).shape;
    if (w.size() != 4 || out.size() != 3) continue;  // the validator has refused such graphs
    const double fan_in = static_cast<double>(w[1]) * w[2] * w[3];
    const double out_px = static_cast<double>(out[0]) * out[1];
    scratch += out_px * fan_in * 4;
    gmac += out_px * w[0] * fan_in / 1e9;
  }
  const rt::TensorDesc& in = g.tensors.at(static_cast<size_t>(g.input.tensor));
  fp.weight_bytes = clamp_bytes(weights);
  // The arena, plus the staging vector of the deterministic input (floats at most).
  fp.activation_bytes =
      clamp_bytes(static_cast<double>(model.memory_plan().arena_bytes) + in.elements() * 4.0);
  fp.scratch_bytes = clamp_bytes(scratch);
  fp.gmac_per_run = gmac;
  return fp;
}

void check_memory(const Footprint& fp, const RequestLimits& limits, const std::string& what,
                  const std::string& advice) {
  const double total =
      static_cast<double>(fp.weight_bytes) + fp.activation_bytes + fp.scratch_bytes;
  if (total <= static_cast<double>(limits.max_memory_bytes)) return;
  throw Error(what + " needs about " + mib(clamp_bytes(total)) + " (weights " +
              mib(fp.weight_bytes) + ", activations " + mib(fp.activation_bytes) + ", scratch " +
              mib(fp.scratch_bytes) + "), more than this agent's limit of " +
              mib(limits.max_memory_bytes) + " (mixnas-agent --max-memory-mb); " + advice);
}

void check_work(double gmac, const RequestLimits& limits, const std::string& advice) {
  if (gmac <= limits.max_work_gmac) return;
  char buf[160];
  std::snprintf(buf, sizeof buf,
                "the request asks for %.0f GMAC (all layers, runs and warmup runs), more than "
                "this agent's limit of %.0f GMAC (mixnas-agent --max-work-gmac); ",
                gmac, limits.max_work_gmac);
  throw Error(buf + advice);
}

}  // namespace mixnas::agent
