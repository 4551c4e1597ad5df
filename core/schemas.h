#pragma once
// The schema of every config kind. docs/configs.md documents them; a test keeps the two in step.
#include <vector>

#include "core/config.h"

namespace mixnas::config {

const Schema& train_schema();   // mixnas train / val / predict
const Schema& search_schema();  // mixnas search / lut
const Schema& device_schema();  // configs/devices/*.yaml
std::vector<const Schema*> all_schemas();

}  // namespace mixnas::config
