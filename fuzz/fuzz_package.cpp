// libFuzzer target for the .mxr loader: any byte string must either load into a consistent graph
// or raise mixnas::Error. Graphs that load are memory-planned; with MIXNAS_FUZZ_SESSION small ones
// also run (memory checks on), with code tensors packed and as bytes, so the executor and the conv
// plans see hostile (but valid) shapes too and both storages must give the same outputs. Any other
// exception, crash, sanitizer report, output mismatch or timeout is a finding.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "deploy/runtime/package.h"
#include "deploy/runtime/planner.h"
#ifdef MIXNAS_FUZZ_SESSION
#include "deploy/runtime/session.h"
#endif

#ifdef MIXNAS_FUZZ_SESSION
namespace {

// Work of one run, to skip graphs that are valid but too slow to execute per fuzz input.
double graph_cost(const mixnas::rt::Graph& g) {
  double cost = 0;
  for (const auto& t : g.tensors) cost += static_cast<double>(t.elements());
  for (const auto& n : g.nodes) {
    if (n.op != mixnas::rt::OpType::kConv2d) continue;
    const auto& w = g.tensors[n.inputs[1]];
    cost += static_cast<double>(g.tensors[n.outputs[0]].elements()) * w.elements() / w.shape[0];
  }
  return cost;
}

}  // namespace
#endif

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mixnas::rt;
  try {
    Graph g = parse_package(data, size, "<fuzz>");
    const MemoryPlan plan = plan_memory(g);
    if (plan.arena_bytes < 0) __builtin_trap();
#ifdef MIXNAS_FUZZ_SESSION
    if (graph_cost(g) > 2e6) return 0;
    const auto model = Model::from_graph(std::move(g), "<fuzz>");
    SessionOptions options;
    options.check_memory = true;  // a planner bug shows up as an exception here
    Session session(model, options);
    const InputSpec& spec = model->graph().input;
    std::vector<uint8_t> image(static_cast<size_t>(spec.width) * spec.height * 3, 77);
    session.run({image.data(), spec.width, spec.height, 0});
    // Packed code tensors are a storage choice: one byte per code must give the same bits.
    options.pack_activations = false;
    Session bytes(model, options);
    bytes.run({image.data(), spec.width, spec.height, 0});
    const std::vector<RawOutput> a = session.outputs(), b = bytes.outputs();
    for (size_t i = 0; i < a.size(); ++i)
      if (a[i].values.size() != b[i].values.size() ||
          std::memcmp(a[i].values.data(), b[i].values.data(), a[i].values.size() * 4) != 0)
        __builtin_trap();
    // The Detect decoded in its convs or from held raw logits: the same bits in every output
    // both hold.
    options.head = HeadMemory::kRaw;
    Session raw(model, options);
    raw.run({image.data(), spec.width, spec.height, 0});
    const std::vector<RawOutput> c = raw.outputs();
    for (const RawOutput& x : a)
      for (const RawOutput& y : c)
        if (x.name == y.name &&
            (x.values.size() != y.values.size() ||
             std::memcmp(x.values.data(), y.values.data(), x.values.size() * 4) != 0))
          __builtin_trap();
#endif
  } catch (const mixnas::Error&) {
  }
  return 0;
}
