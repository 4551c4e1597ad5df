#include "evaluators/measure.h"

#include <fstream>
#include <string>

#include "core/error.h"
#include "core/hash.h"
#include "deploy/runtime/package.h"
#include "evaluators/device_id.h"

namespace mixnas::eval {
namespace {

// Peak resident set: reset the kernel's high-water mark, read it back after the runs. Not every
// system (or emulator) has these files: -1 then.
void reset_peak_rss() {
  std::ofstream clear("/proc/self/clear_refs");
  if (clear) clear << "5";
}
int64_t read_peak_rss() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) {
      try {
        return std::stoll(line.substr(6)) * 1024;
      } catch (const std::exception&) {
        return -1;
      }
    }
  }
  return -1;
}

nlohmann::json stats_json(const rt::LatencyStats& s) {
  return {{"runs", s.runs},       {"min_ms", s.min_ms}, {"median_ms", s.median_ms},
          {"mean_ms", s.mean_ms}, {"p90_ms", s.p90_ms}, {"std_ms", s.std_ms}};
}
rt::LatencyStats stats_from(const nlohmann::json& j) {
  rt::LatencyStats s;
  s.runs = j.at("runs").get<int>();
  s.min_ms = j.at("min_ms").get<double>();
  s.median_ms = j.at("median_ms").get<double>();
  s.mean_ms = j.at("mean_ms").get<double>();
  s.p90_ms = j.at("p90_ms").get<double>();
  s.std_ms = j.at("std_ms").get<double>();
  return s;
}

int int_field(const nlohmann::json& j, const char* name, int fallback, int lo, int hi) {
  auto it = j.find(name);
  if (it == j.end()) return fallback;
  if (!it->is_number_integer())
    throw Error(std::string("option '") + name + "' must be an integer");
  int64_t v = it->get<int64_t>();
  if (v < lo || v > hi) {
    throw Error(std::string("option '") + name + "' must be in " + std::to_string(lo) + ".." +
                std::to_string(hi));
  }
  return static_cast<int>(v);
}

}  // namespace

void MeasureOptions::validate() const {
  if (runs < 1 || runs > 10000) throw Error("option 'runs' must be in 1..10000");
  if (warmup < 0 || warmup > 1000) throw Error("option 'warmup' must be in 0..1000");
  if (threads < 1 || threads > 256) throw Error("option 'threads' must be in 1..256");
}

nlohmann::json MeasureOptions::to_json() const {
  return {{"runs", runs},
          {"warmup", warmup},
          {"threads", threads},
          {"outputs", outputs},
          {"input_seed", input_seed}};
}

MeasureOptions MeasureOptions::from_json(const nlohmann::json& j) {
  if (!j.is_object()) throw Error("options must be a JSON object");
  MeasureOptions o;
  o.runs = int_field(j, "runs", o.runs, 1, 10000);
  o.warmup = int_field(j, "warmup", o.warmup, 0, 1000);
  o.threads = int_field(j, "threads", o.threads, 1, 256);
  if (auto it = j.find("outputs"); it != j.end()) {
    if (!it->is_boolean()) throw Error("option 'outputs' must be true or false");
    o.outputs = it->get<bool>();
  }
  if (auto it = j.find("input_seed"); it != j.end()) {
    if (!it->is_number_unsigned() && !it->is_number_integer()) {
      throw Error("option 'input_seed' must be an integer");
    }
    o.input_seed = it->get<uint64_t>();
  }
  return o;
}

nlohmann::json MeasureResult::to_json() const {
  nlohmann::json nodes_json = nlohmann::json::array();
  for (const auto& n : nodes) {
    nodes_json.push_back({{"name", n.name},
                          {"op", n.op},
                          {"kernel", n.kernel},
                          {"median_ms", n.median_ms},
                          {"mean_ms", n.mean_ms}});
  }
  nlohmann::json j = {{"device_id", device_id},
                      {"threads", threads},
                      {"latency", stats_json(latency)},
                      {"memory",
                       {{"arena_bytes", memory.arena_bytes},
                        {"sum_tensor_bytes", memory.sum_tensor_bytes},
                        {"weight_bytes", memory.weight_bytes},
                        {"resident_weight_bytes", memory.resident_weight_bytes},
                        {"scratch_bytes", memory.scratch_bytes},
                        {"peak_bytes", memory.peak_bytes}}},
                      {"peak_rss_bytes", peak_rss_bytes},
                      {"nodes", nodes_json}};
  if (!outputs.empty() || !detections.empty()) {
    nlohmann::json outs = nlohmann::json::array();
    for (const auto& o : outputs) {
      outs.push_back({{"name", o.name}, {"shape", o.shape}, {"values", o.values}});
    }
    nlohmann::json dets = nlohmann::json::array();
    for (const auto& d : detections) {
      dets.push_back({d.x1, d.y1, d.x2, d.y2, d.score, d.class_id});
    }
    j["outputs"] = outs;
    j["detections"] = dets;
  }
  return j;
}

MeasureResult MeasureResult::from_json(const nlohmann::json& j) {
  MeasureResult r;
  r.device_id = j.at("device_id").get<std::string>();
  r.threads = j.at("threads").get<int>();
  r.latency = stats_from(j.at("latency"));
  const auto& m = j.at("memory");
  r.memory.arena_bytes = m.at("arena_bytes").get<int64_t>();
  r.memory.sum_tensor_bytes = m.at("sum_tensor_bytes").get<int64_t>();
  r.memory.weight_bytes = m.at("weight_bytes").get<int64_t>();
  r.memory.resident_weight_bytes = m.at("resident_weight_bytes").get<int64_t>();
  r.memory.scratch_bytes = m.at("scratch_bytes").get<int64_t>();
  r.memory.peak_bytes = m.at("peak_bytes").get<int64_t>();
  r.peak_rss_bytes = j.at("peak_rss_bytes").get<int64_t>();
  for (const auto& n : j.at("nodes")) {
    rt::NodeProfile p;
    p.name = n.at("name").get<std::string>();
    p.op = n.at("op").get<std::string>();
    p.kernel = n.at("kernel").get<std::string>();
    p.median_ms = n.at("median_ms").get<double>();
    p.mean_ms = n.at("mean_ms").get<double>();
    r.nodes.push_back(p);
  }
  if (j.contains("outputs")) {
    for (const auto& o : j.at("outputs")) {
      r.outputs.push_back(rt::RawOutput{o.at("name").get<std::string>(),
                                        o.at("shape").get<std::vector<int>>(),
                                        o.at("values").get<std::vector<float>>()});
    }
    for (const auto& d : j.at("detections")) {
      rt::Detection det;
      det.x1 = d.at(0).get<float>();
      det.y1 = d.at(1).get<float>();
      det.x2 = d.at(2).get<float>();
      det.y2 = d.at(3).get<float>();
      det.score = d.at(4).get<float>();
      det.class_id = d.at(5).get<int>();
      r.detections.push_back(det);
    }
  }
  return r;
}

void set_deterministic_input(rt::Session& session, uint64_t seed) {
  const rt::Graph& g = session.model().graph();
  const rt::TensorDesc& in = g.tensors.at(g.input.tensor);
  size_t n = static_cast<size_t>(in.elements());
  uint64_t state = seed;
  if (in.is_float()) {
    std::vector<float> values(n);
    for (auto& v : values)
      v = static_cast<float>(splitmix64(state) >> 40) / static_cast<float>(1 << 24);
    session.set_input(values.data(), n);
  } else {
    std::vector<uint8_t> codes(n);
    uint64_t levels = uint64_t{1} << in.bits;
    for (auto& c : codes) c = static_cast<uint8_t>(splitmix64(state) % levels);
    session.set_input_codes(codes.data(), n);
  }
}

MeasureResult measure_model(const std::shared_ptr<const rt::Model>& model,
                            const MeasureOptions& options) {
  options.validate();
  rt::SessionOptions so;
  so.threads = options.threads;
  so.reference_kernels = options.reference_kernels;
  rt::Session session(model, so);
  set_deterministic_input(session, options.input_seed);
  reset_peak_rss();
  rt::Profile profile = session.profile(options.runs, options.warmup);
  MeasureResult r;
  r.peak_rss_bytes = read_peak_rss();
  r.device_id = device_id();
  r.threads = session.threads();
  r.latency = profile.total;
  r.memory = profile.memory;
  r.nodes = profile.nodes;
  if (options.outputs) {
    // The outputs of one more run on the same input (profiling left them there already).
    session.run_graph();
    r.outputs = session.outputs();
    r.detections = session.detections();
  }
  return r;
}

MeasureResult measure_package(const std::string& package, const MeasureOptions& options) {
  auto model = rt::Model::from_bytes(package.data(), package.size(), "<request body>");
  return measure_model(model, options);
}

nlohmann::json LayerRow::to_json() const {
  return {{"key", key},
          {"signature", signature.to_json()},
          {"kernel", kernel},
          {"latency", stats_json(latency)},
          {"weight_bytes", weight_bytes},
          {"resident_weight_bytes", resident_weight_bytes},
          {"arena_bytes", arena_bytes}};
}

LayerRow LayerRow::from_json(const nlohmann::json& j) {
  LayerRow r;
  r.key = j.at("key").get<std::string>();
  r.signature = LayerSignature::from_json(j.at("signature"));
  r.kernel = j.at("kernel").get<std::string>();
  r.latency = stats_from(j.at("latency"));
  r.weight_bytes = j.at("weight_bytes").get<int64_t>();
  r.resident_weight_bytes = j.contains("resident_weight_bytes")
                                ? j.at("resident_weight_bytes").get<int64_t>()
                                : r.weight_bytes;
  r.arena_bytes = j.at("arena_bytes").get<int64_t>();
  return r;
}

LayerRow measure_layer(const LayerSignature& signature, const MeasureOptions& options) {
  auto model = rt::Model::from_graph(build_layer_graph(signature), signature.key());
  MeasureResult m = measure_model(model, options);
  LayerRow row;
  row.key = signature.key();
  row.signature = signature;
  for (const auto& n : m.nodes) {
    if (!n.kernel.empty()) row.kernel = n.kernel;
  }
  row.latency = m.latency;
  row.weight_bytes = m.memory.weight_bytes;
  row.resident_weight_bytes = m.memory.resident_weight_bytes;
  row.arena_bytes = m.memory.arena_bytes;
  return row;
}

}  // namespace mixnas::eval
