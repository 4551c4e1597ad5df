// libFuzzer target for the config loader (core/config.h): YAML, the schemas, `base:` includes and
// key=value overrides. Input: the first byte picks the schema (train, search, device); the rest is
// split at NUL bytes into main.yaml, base.yaml (both written to a scratch folder, so that
// `base: base.yaml` includes the second) and one override per further part.
// Every input must load or raise mixnas::Error (anything else reaches the user as "internal
// error", exit 3). A loaded config must answer every key of its schema with its type, and its
// args.yaml (to_yaml) must load again to the same args.yaml: runs are resumed and exported from it.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/error.h"
#include "core/schemas.h"

namespace {

using namespace mixnas::config;

const std::string& scratch_dir() {
  static const std::string dir = [] {
    char name[] = "/tmp/mixnas_fuzz_config_XXXXXX";
    if (!::mkdtemp(name)) std::abort();
    return std::string(name);
  }();
  return dir;
}

std::vector<std::string> split_at_nul(const std::string& s) {
  std::vector<std::string> parts{""};
  for (char c : s) {
    if (c == '\0')
      parts.emplace_back();
    else
      parts.back() += c;
  }
  return parts;
}

// Reads every key with the getter of its type; none may throw once the config loaded.
void read_every_key(const Config& cfg) {
  for (const Field& f : cfg.schema().fields()) {
    switch (f.type) {
      case Type::kBool:
        cfg.get_bool(f.key);
        break;
      case Type::kInt:
        cfg.get_int(f.key);
        break;
      case Type::kFloat:
        cfg.get_float(f.key);
        break;
      case Type::kString:
        cfg.get_string(f.key);
        break;
      case Type::kIntList:
        cfg.get_int_list(f.key);
        break;
      case Type::kFloatList:
        cfg.get_float_list(f.key);
        break;
      case Type::kStringList:
        cfg.get_string_list(f.key);
        break;
      case Type::kNode:
        cfg.get_node(f.key);
        break;
    }
  }
}

void one_input(const Schema& schema, const std::vector<std::string>& parts) {
  const std::string main_path = scratch_dir() + "/main.yaml";
  std::ofstream(main_path, std::ios::binary | std::ios::trunc) << parts[0];
  std::ofstream(scratch_dir() + "/base.yaml", std::ios::binary | std::ios::trunc)
      << (parts.size() > 1 ? parts[1] : "");
  const std::vector<std::string> overrides(parts.begin() + std::min<size_t>(2, parts.size()),
                                           parts.end());
  Config cfg = [&] {
    try {
      return Config::load(main_path, schema, overrides);
    } catch (const mixnas::Error&) {
      throw;
    } catch (const std::exception&) {
      __builtin_trap();  // escaped as "internal error"
    }
  }();
  try {
    read_every_key(cfg);
    const std::string args = cfg.to_yaml();
    const Config again = Config::load_string(args, "args.yaml", schema);
    read_every_key(again);
    if (again.to_yaml() != args) __builtin_trap();
  } catch (...) {
    __builtin_trap();  // a loaded config that cannot be read, or whose args.yaml does not load
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::vector<const Schema*> schemas{&train_schema(), &search_schema(), &device_schema()};
  const Schema& schema = *schemas[data[0] % schemas.size()];
  std::vector<std::string> parts =
      split_at_nul(std::string(reinterpret_cast<const char*>(data) + 1, size - 1));
  // Not the loader's defects: a config naming a device file or /proc reads it whole.
  for (const std::string& p : parts)
    if (p.find("/dev") != std::string::npos || p.find("/proc") != std::string::npos ||
        p.find("/sys") != std::string::npos)
      return 0;
  try {
    one_input(schema, parts);
  } catch (const mixnas::Error&) {
  }
  return 0;
}
