#pragma once
// Integer ids in JSON files (COCO image_id, category_id, id): nlohmann's get<int64_t> truncates
// 1.5 to 1 and turns 2^70 into INT64_MIN; this one takes only values that are exactly an int64.
// Header-only: its users (datasets, evaluators) already build with nlohmann-json.
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "core/error.h"

namespace mixnas {

// `value` as an int64, or mixnas::Error "<where>: expected an integer, got 1.5".
inline int64_t json_int64(const nlohmann::json& value, const std::string& where) {
  if (value.is_number_unsigned()) {
    if (value.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      return static_cast<int64_t>(value.get<uint64_t>());
  } else if (value.is_number_integer()) {
    return value.get<int64_t>();
  } else if (value.is_number_float()) {
    // Exactly integral and inside int64 (2^63 itself is not: it is the first double above).
    const double v = value.get<double>();
    if (std::isfinite(v) && v == std::floor(v) && v >= -9223372036854775808.0 &&
        v < 9223372036854775808.0)
      return static_cast<int64_t>(v);
  }
  throw Error(where + ": expected an integer (a 64-bit id), got " + value.dump());
}

}  // namespace mixnas
