#pragma once
// The agent's request parsing, without sockets: query parameters of /v1/benchmark and the JSON of
// /v1/layers, validated and checked against the request limits before anything is measured or
// allocated. The server calls these; the fuzz targets (fuzz/) call them directly.
#include <map>
#include <string>
#include <vector>

#include "evaluators/agent/budget.h"
#include "evaluators/layer_graph.h"
#include "evaluators/measure.h"

namespace mixnas::agent {

using eval::LayerSignature;
using eval::MeasureOptions;

// httplib's Params type, spelled out so that this header does not need httplib.
using QueryParams = std::multimap<std::string, std::string>;

// MeasureOptions of /v1/benchmark's query (runs, warmup, threads, input_seed as strict integers,
// outputs 0/1/true/false); `threads` defaults to `default_threads`. Throws mixnas::Error naming the
// parameter.
MeasureOptions benchmark_options(const QueryParams& params, int default_threads);

struct LayersRequest {
  std::vector<LayerSignature> layers;
  MeasureOptions options;
};

// Parses and validates a /v1/layers body: at most `max_layers` signatures, each within the
// memory limit, the whole batch within the work limit. Throws mixnas::Error naming the field or
// the layer (layers[i]).
LayersRequest parse_layers_request(const std::string& body, int max_layers, int default_threads,
                                   const RequestLimits& limits);

// Checks a loaded package's memory and the request's work (runs + warmup) against the limits.
void check_package_request(const rt::Model& model, const MeasureOptions& options,
                           const RequestLimits& limits);

}  // namespace mixnas::agent
