// mixnas-devicemodel-pick: for each layer signature on stdin (one JSON object a line, as
// eval::LayerSignature::to_json writes it), the conv kernel the runtime's own tables pick and the
// memory the session holds, one JSON object a line on stdout. Nothing is run or timed.
//
// The device model (device_model.h) needs the pick of the target's build: the kernel tables are
// compiled per architecture, so for an aarch64 core this program is the aarch64 build, run under
// qemu-aarch64, with MIXNAS_CPU_DISABLE masking what the modelled core lacks (dotprod on a
// Cortex-A72). It builds the same one-layer graph and Session a latency-table measurement does.
#include <iostream>
#include <string>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "deploy/runtime/session.h"
#include "evaluators/layer_graph.h"

namespace {

nlohmann::json pick(const mixnas::eval::LayerSignature& sig) {
  auto model = mixnas::rt::Model::from_graph(mixnas::eval::build_layer_graph(sig), sig.key());
  mixnas::rt::Session session(model);
  std::string kernel;
  const auto& nodes = model->graph().nodes;
  for (size_t i = 0; i < nodes.size(); ++i) {
    const std::string k = session.kernel_name(static_cast<int>(i));
    if (!k.empty()) kernel = k;
  }
  const mixnas::rt::MemoryReport m = session.memory();
  return {{"key", sig.key()},
          {"kernel", kernel},
          {"weight_bytes", m.weight_bytes},
          {"resident_weight_bytes", m.resident_weight_bytes},
          {"arena_bytes", m.arena_bytes},
          {"scratch_bytes", m.scratch_bytes}};
}

}  // namespace

int main() {
  std::string line;
  int line_no = 0;
  try {
    while (std::getline(std::cin, line)) {
      ++line_no;
      if (line.empty()) continue;
      const auto sig = mixnas::eval::LayerSignature::from_json(nlohmann::json::parse(line));
      std::cout << pick(sig).dump() << "\n";
    }
  } catch (const std::exception& e) {
    std::cerr << "mixnas-devicemodel-pick: stdin line " << line_no << ": " << e.what() << "\n";
    return 1;
  }
  return 0;
}
