#pragma once
// What one measurement request may cost the agent: memory (weights, activations, scratch) and work
// (multiply-accumulates over every run), estimated from a layer signature or a loaded package
// before anything large is allocated, so a hostile or mistaken request is refused with a 400
// instead of taking the device's memory or minutes of its time.
#include <cstdint>
#include <string>

#include "evaluators/layer_graph.h"
#include "evaluators/measure.h"

namespace mixnas::rt {
class Model;
}

namespace mixnas::agent {

using eval::LayerSignature;
using eval::MeasureOptions;

struct RequestLimits {
  int64_t max_memory_bytes = int64_t{2} << 30;  // peak bytes of one measurement
  double max_work_gmac = 10000;                 // GMAC of one request, all runs included
};

// Upper bounds, in bytes and GMAC, of one measurement.
struct Footprint {
  int64_t weight_bytes = 0;      // every copy alive while the graph is built, packed and run
  int64_t activation_bytes = 0;  // input + output/arena + the deterministic input staging
  int64_t scratch_bytes = 0;     // im2col-sized scratch of every conv
  double gmac_per_run = 0;
  int64_t total_bytes() const { return weight_bytes + activation_bytes + scratch_bytes; }
};

Footprint layer_footprint(const LayerSignature& sig);
Footprint model_footprint(const rt::Model& model);

// Throws mixnas::Error when `fp` needs more memory than the limit: "<what> needs about N MiB
// (weights .., activations .., scratch ..), more than this agent's limit ...; <advice>".
void check_memory(const Footprint& fp, const RequestLimits& limits, const std::string& what,
                  const std::string& advice);
// Throws mixnas::Error when `gmac` (the whole request) is above the limit.
void check_work(double gmac, const RequestLimits& limits, const std::string& advice);

}  // namespace mixnas::agent
