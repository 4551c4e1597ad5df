#pragma once
// What `mixnas search` and `mixnas lut` share: the evaluator of the config's `device` key (with
// its cost.runs, cost.warmup, cost.threads) and the supernet of its model + search space.
#include <memory>
#include <string>

#include "core/config.h"
#include "evaluators/evaluator.h"
#include "supernet/model.h"

namespace mixnas::cli {

// `device: local` measures in this process; `device: configs/devices/X.yaml` as that file says.
std::unique_ptr<eval::Evaluator> evaluator_from_config(const config::Config& cfg);
// The supernet of the config (model, nc from the config or the dataset, search_space).
supernet::YoloModel supernet_from_config(const config::Config& cfg);

}  // namespace mixnas::cli
