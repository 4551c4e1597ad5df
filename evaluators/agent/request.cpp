#include "evaluators/agent/request.h"

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace mixnas::agent {

MeasureOptions benchmark_options(const QueryParams& params, int default_threads) {
  nlohmann::json j = nlohmann::json::object();
  for (const char* name : {"runs", "warmup", "threads", "input_seed"}) {
    auto it = params.find(name);
    if (it == params.end()) continue;
    const std::string& v = it->second;
    size_t used = 0;
    long long x = 0;
    try {
      x = std::stoll(v, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != v.size()) {
      throw Error(std::string("query parameter '") + name + "' must be an integer, got '" +
                  v.substr(0, 64) + "'");
    }
    j[name] = x;
  }
  if (auto it = params.find("outputs"); it != params.end()) {
    const std::string& v = it->second;
    if (v != "0" && v != "1" && v != "true" && v != "false") {
      throw Error("query parameter 'outputs' must be 0 or 1");
    }
    j["outputs"] = (v == "1" || v == "true");
  }
  if (!j.contains("threads")) j["threads"] = default_threads;
  return MeasureOptions::from_json(j);
}

LayersRequest parse_layers_request(const std::string& body, int max_layers, int default_threads,
                                   const RequestLimits& limits) {
  nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    throw Error("the request body must be a JSON object {\"layers\": [...], \"options\": {...}}");
  }
  auto layers_it = j.find("layers");
  if (layers_it == j.end() || !layers_it->is_array()) {
    throw Error("field 'layers' must be an array of layer signatures");
  }
  if (layers_it->size() > static_cast<size_t>(max_layers)) {
    throw Error("too many layers in one request (" + std::to_string(layers_it->size()) + " > " +
                std::to_string(max_layers) + "); split the batch");
  }
  nlohmann::json opts = nlohmann::json::object();
  if (auto it = j.find("options"); it != j.end()) opts = *it;
  if (!opts.is_object()) throw Error("field 'options' must be an object");
  if (!opts.contains("threads")) opts["threads"] = default_threads;
  LayersRequest r;
  r.options = MeasureOptions::from_json(opts);
  double gmac = 0;
  for (size_t i = 0; i < layers_it->size(); ++i) {
    std::string where = "layers[" + std::to_string(i) + "]";
    try {
      r.layers.push_back(LayerSignature::from_json((*layers_it)[i]));
    } catch (const Error& e) {
      throw Error(where + ": " + e.what());
    }
    Footprint fp = layer_footprint(r.layers.back());
    check_memory(fp, limits, where + ": layer signature " + r.layers.back().key(),
                 "measure a smaller layer (fewer channels, a smaller kernel or input)");
    gmac += fp.gmac_per_run * (r.options.runs + r.options.warmup);
  }
  check_work(gmac, limits, "send fewer layers per request, or fewer runs");
  return r;
}

void check_package_request(const rt::Model& model, const MeasureOptions& options,
                           const RequestLimits& limits) {
  Footprint fp = model_footprint(model);
  check_memory(fp, limits, "the package",
               "export it with a smaller input size or a smaller model, or raise the limit");
  check_work(fp.gmac_per_run * (options.runs + options.warmup), limits,
             "ask for fewer runs, or export a smaller model");
}

}  // namespace mixnas::agent
