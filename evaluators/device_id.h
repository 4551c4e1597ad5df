#pragma once
// A device's identity: stable across restarts of the same build on the same hardware, different
// when the CPU, core count, ISA features or runtime version differ. Latency tables are keyed by it.
#include <string>

#include <nlohmann/json.hpp>

namespace mixnas::eval {

// e.g. "x86_64-intel-xeon-processor-2c-1f3a9c0d".
std::string device_id();
// Device id, CPU model, arch, cores, features, runtime version, threads, conv kernels picked.
nlohmann::json device_info(int threads);

}  // namespace mixnas::eval
