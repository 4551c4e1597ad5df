#include "evaluators/device_model/model_evaluator.h"

#include <cstdio>
#include <sstream>

#include "core/error.h"
#include "core/hash.h"
#include "deploy/runtime/session.h"
#include "deploy/runtime/version.h"

namespace mixnas::eval {

namespace {

rt::LatencyStats predicted_stats(double ms) {
  rt::LatencyStats s;
  s.runs = 1;
  s.min_ms = s.median_ms = s.mean_ms = s.p90_ms = ms;
  return s;
}

}  // namespace

ModelEvaluator::ModelEvaluator(DeviceModel model, MeasureOptions options)
    : Evaluator(options), model_(std::move(model)) {}

std::string ModelEvaluator::device_id() {
  return "model:" + model_.spec().name + ":" + model_.spec().core;
}

std::string ModelEvaluator::runtime_version() {
  // Tables are reused by device id and runtime version: a changed model (clock, bandwidth,
  // coefficients, llvm-mca) must not reuse the predictions of the old one.
  const DeviceModelSpec& s = model_.spec();
  std::ostringstream text;
  text << s.core << ' ' << s.clock_ghz << ' ' << s.cores << ' ' << s.mem_bw_gbs << ' '
       << s.coefficients.micro_scale << ' ' << s.coefficients.pass_scale << ' '
       << s.coefficients.layer_overhead_us << ' ' << model_.llvm_mca_version();
  char hash[24];
  std::snprintf(hash, sizeof hash, "%08llx",
                static_cast<unsigned long long>(fnv1a(text.str()) & 0xffffffffu));
  return std::string(rt::runtime_version()) + "+model-" + hash;
}

std::vector<LayerRow> ModelEvaluator::measure_layers(const std::vector<LayerSignature>& layers) {
  const std::vector<LayerPrediction> p = model_.predict_layers(layers);
  std::vector<LayerRow> rows(layers.size());
  for (size_t i = 0; i < layers.size(); ++i) {
    rows[i].key = layers[i].key();
    rows[i].signature = layers[i];
    rows[i].kernel = p[i].kernel;
    rows[i].latency = predicted_stats(p[i].latency_ms);
    rows[i].weight_bytes = p[i].weight_bytes;
    rows[i].resident_weight_bytes = p[i].resident_weight_bytes;
    rows[i].arena_bytes = p[i].arena_bytes;
  }
  return rows;
}

MeasureResult ModelEvaluator::measure_package(const std::string& package) {
  auto model = rt::Model::from_bytes(package.data(), package.size(), "<package>");
  std::vector<int> nodes;
  const std::vector<LayerSignature> convs = conv_signatures(model->graph(), &nodes);
  const std::vector<LayerPrediction> p = model_.predict_layers(convs);
  MeasureResult r;
  r.device_id = device_id();
  r.threads = options().threads;
  double total = 0;
  for (size_t i = 0; i < convs.size(); ++i) {
    rt::NodeProfile n;
    n.name = model->graph().nodes[nodes[i]].name;
    n.op = "conv2d";
    n.kernel = p[i].kernel;
    n.median_ms = n.mean_ms = p[i].latency_ms;
    r.nodes.push_back(n);
    total += p[i].latency_ms;
  }
  r.latency = predicted_stats(total);
  rt::SessionOptions so;
  so.threads = options().threads;
  r.memory = rt::Session(model, so).memory();  // the host build's plan of the package
  return r;
}

std::unique_ptr<Evaluator> make_model_evaluator(const std::string& device_yaml,
                                                const MeasureOptions& options) {
  DeviceModelSpec spec = DeviceModelSpec::load(device_yaml);
  if (options.threads > spec.cores)
    throw Error(device_yaml + ": the device has " + std::to_string(spec.cores) +
                " cores; the config asks for " + std::to_string(options.threads) +
                " threads (cost.threads)");
  spec.threads = options.threads;  // tables are predicted for the threads the config measures
  DeviceModel::Options o;
  o.cache_dir = ".cache/devicemodel";
  return std::make_unique<ModelEvaluator>(DeviceModel(spec, o), options);
}

}  // namespace mixnas::eval
