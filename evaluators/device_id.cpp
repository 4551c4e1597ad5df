#include "evaluators/device_id.h"

#include <cctype>
#include <cstdio>

#include "core/hash.h"
#include "core/text.h"
#include "core/version.h"
#include "deploy/runtime/cpu_features.h"
#include "deploy/runtime/version.h"

namespace mixnas::eval {

std::string device_id() {
  const rt::CpuFeatures& cpu = rt::cpu_features();
  std::string basis = cpu.arch + "|" + cpu.model_name + "|" + std::to_string(cpu.logical_cores) +
                      "|" + text::join(cpu.names(), ",") + "|" + rt::runtime_version();
  const uint64_t h = fnv1a(basis);
  std::string model;
  for (char c : cpu.model_name) {
    if (std::isalnum(static_cast<unsigned char>(c))) {
      model += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    } else if (!model.empty() && model.back() != '-') {
      model += '-';
    }
  }
  while (!model.empty() && model.back() == '-') model.pop_back();
  if (model.size() > 40) model.resize(40);
  if (model.empty()) model = "unknown";
  char hash[16];
  std::snprintf(hash, sizeof hash, "%08x", static_cast<unsigned>(h ^ (h >> 32)));
  return cpu.arch + "-" + model + "-" + std::to_string(cpu.logical_cores) + "c-" + hash;
}

nlohmann::json device_info(int threads) {
  const rt::CpuFeatures& cpu = rt::cpu_features();
  return {{"device_id", device_id()}, {"cpu", cpu.model_name},
          {"arch", cpu.arch},         {"cores", cpu.logical_cores},
          {"features", cpu.names()},  {"runtime_version", rt::runtime_version()},
          {"threads", threads}};
}

}  // namespace mixnas::eval
