#pragma once
// What `mixnas search` and `mixnas lut` share: the measurer of the config's `device` key and the
// supernet of its model + search space.
#include <string>

#include "core/config.h"
#include "search/dnas.h"
#include "supernet/model.h"

namespace mixnas::cli {

// `device: local` measures in this process; `device: configs/devices/X.yaml` through its agents.
search::Measurer measurer_from_config(const config::Config& cfg);
// The supernet of the config (model, nc from the config or the dataset, search_space).
supernet::YoloModel supernet_from_config(const config::Config& cfg);

}  // namespace mixnas::cli
