// libFuzzer targets for mixnas-agent's request handling without sockets (evaluators/agent/
// request.h): FUZZ_AGENT_LAYERS feeds the bytes as a /v1/layers body, FUZZ_AGENT_QUERY as a
// /v1/benchmark query string. Every input must be accepted or raise mixnas::Error; an accepted
// layer must also build into a graph the runtime's validator accepts, within the memory the
// budget promised. Any other exception, crash, sanitizer report or timeout is a finding.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "deploy/runtime/graph.h"
#include "evaluators/agent/budget.h"
#include "evaluators/agent/request.h"
#include "evaluators/layer_graph.h"

namespace {

using namespace mixnas::agent;
using namespace mixnas::eval;

#ifdef FUZZ_AGENT_LAYERS
// Small limits: accepted layers are built below, and must stay quick.
RequestLimits fuzz_limits() {
  RequestLimits l;
  l.max_memory_bytes = int64_t{8} << 20;
  l.max_work_gmac = 50;
  return l;
}

void one_input(const std::string& body) {
  LayersRequest r = parse_layers_request(body, 16, 1, fuzz_limits());
  for (const LayerSignature& s : r.layers) {
    // The signature passed validation: the graph must build and validate, or the agent would
    // answer 400 for a request it accepted (or worse, crash while building it).
    mixnas::rt::Graph g = build_layer_graph(s);
    mixnas::rt::validate_graph(g, "<fuzz layer " + s.key() + ">");
    if (LayerSignature::from_json(s.to_json()).key() != s.key()) __builtin_trap();
  }
}
#endif

#ifdef FUZZ_AGENT_QUERY
// "a=1&b=2" split as httplib does (no percent-decoding needed for integers).
QueryParams parse_query(const std::string& q) {
  QueryParams params;
  size_t start = 0;
  while (start <= q.size()) {
    size_t end = q.find('&', start);
    if (end == std::string::npos) end = q.size();
    std::string pair = q.substr(start, end - start);
    size_t eq = pair.find('=');
    if (!pair.empty()) {
      params.emplace(pair.substr(0, eq), eq == std::string::npos ? "" : pair.substr(eq + 1));
    }
    start = end + 1;
  }
  return params;
}

void one_input(const std::string& query) {
  MeasureOptions o = benchmark_options(parse_query(query), 1);
  // Whatever was accepted is in range (the measurement trusts these).
  if (o.runs < 1 || o.runs > 10000 || o.warmup < 0 || o.warmup > 1000 || o.threads < 1 ||
      o.threads > 256) {
    __builtin_trap();
  }
}
#endif

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    one_input(std::string(reinterpret_cast<const char*>(data), size));
  } catch (const mixnas::Error&) {
  }
  return 0;
}
