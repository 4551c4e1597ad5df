// `mixnas model MODEL.yaml [nc=80 imgsz=640 scale=n]`: builds a model YAML and prints its
// per-layer summary (as ultralytics does) and a last line `summary: L layers, P parameters, G
// GFLOPs`.
#include <cstdio>
#include <string>
#include <vector>

#include "apps/mixnas/commands.h"
#include "core/error.h"
#include "core/log.h"
#include "core/text.h"
#include "supernet/model.h"

namespace mixnas::cli {

namespace {
struct ModelArgs {
  std::string model;
  std::vector<std::string> overrides;
  bool sites = false;
};

int parse_int(const std::string& key, const std::string& value) {
  try {
    size_t used = 0;
    int v = std::stoi(value, &used);
    if (used == value.size()) return v;
  } catch (const std::exception&) {
  }
  throw Error("mixnas model: " + key + "=" + value + " is not an integer");
}
}  // namespace

Runner add_model_command(CLI::App& app) {
  auto args = std::make_shared<ModelArgs>();
  auto* cmd = app.add_subcommand("model", "Build a model YAML and print its per-layer summary");
  cmd->add_option("model", args->model, "Model YAML (e.g. configs/models/yolov8n.yaml)")
      ->required();
  cmd->add_option("overrides", args->overrides, "key=value: nc=80 imgsz=640 scale=n");
  cmd->add_flag("--sites", args->sites, "Also list the search sites and their conv geometry");
  return [args]() -> int {
    try {
      int nc = 0, imgsz = 640;
      std::string scale;
      for (const auto& kv : args->overrides) {
        auto eq = kv.find('=');
        if (eq == std::string::npos)
          throw Error("mixnas model: expected key=value, got '" + kv +
                      "' (keys: nc, imgsz, scale)");
        const std::string key = kv.substr(0, eq), value = kv.substr(eq + 1);
        if (key == "nc")
          nc = parse_int(key, value);
        else if (key == "imgsz")
          imgsz = parse_int(key, value);
        else if (key == "scale")
          scale = value;
        else
          throw Error("mixnas model: unknown key '" + key + "' (keys: nc, imgsz, scale)");
      }
      if (imgsz < 32 || imgsz % 32)
        throw Error("mixnas model: imgsz=" + std::to_string(imgsz) + " must be a multiple of 32");
      supernet::BuildOptions options;
      options.nc = nc;
      auto model = supernet::build_model(args->model, options, scale);
      auto summary = model->summary(imgsz);
      std::printf("%3s%20s%3s%10s  %-30s%s\n", "", "from", "n", "params", "module", "arguments");
      for (const auto& l : summary.layers)
        std::printf("%3d%20s%3d%10lld  %-30s%s\n", l.index, l.from.c_str(), l.repeats,
                    static_cast<long long>(l.params), l.module.c_str(), l.arguments.c_str());
      if (args->sites) {
        std::printf("\n%-24s %-8s %6s %6s %3s %3s %9s %9s  %s\n", "site", "module", "in", "out",
                    "k", "s", "in_hw", "out_hw", "candidates");
        for (const auto& s : model->sites_at(imgsz, imgsz)) {
          std::vector<std::string> acts;
          for (auto a : s.acts) acts.push_back(supernet::act_name(a));
          const auto& g = s.geometry;
          std::printf("%-24s %-8s %6lld %6lld %3lld %3lld %4lldx%-4lld %4lldx%-4lld  act=[%s]\n",
                      s.name.c_str(), s.module.c_str(), (long long)g.in_channels,
                      (long long)g.out_channels, (long long)g.kernel, (long long)g.stride,
                      (long long)g.in_h, (long long)g.in_w, (long long)g.out_h, (long long)g.out_w,
                      text::join(acts, ",").c_str());
        }
      }
      std::printf("summary: %lld layers, %lld parameters, %.1f GFLOPs\n",
                  static_cast<long long>(summary.modules), static_cast<long long>(summary.params),
                  summary.gflops);
      return 0;
    } catch (const Error& e) {
      log::error(e.what());
      return 1;
    }
  };
}

}  // namespace mixnas::cli
