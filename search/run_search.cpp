#include "search/run_search.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include "core/atomic_file.h"
#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "core/text.h"
#include "datasets/dataset.h"
#include "deploy/export/export.h"
#include "search/cost.h"
#include "search/lut.h"
#include "search/pareto.h"
#include "search/report.h"
#include "search/sensitivity.h"
#include "search/strategy.h"
#include "search/weight_sharing.h"
#include "training/distributed.h"
#include "training/trainer.h"

namespace mixnas::search {
namespace fs = std::filesystem;
namespace sn = mixnas::supernet;
using Clock = std::chrono::steady_clock;
using text::fmt;
using training::EpochRecord;
using training::TrainOptions;
namespace dist = training::dist;

namespace {

// ------------------------------------------------------------------ what the phases hand on

struct SearchData {
  data::DatasetConfig dataset;
  int nc = 0;
  data::DetectionSplit train, val;
};

struct Supernet {
  std::string model_path;
  sn::BuildOptions build;  // the search space grows the pruning rules
  sn::YoloModel model{nullptr};
};

// One trained, exported and measured model of the comparison.
struct Figures {
  std::string name;
  sn::ArchChoices choices;
  double map50_95 = -1, map50 = -1;
  double latency_ms = 0;
  double predicted_ms = -1;
  double predicted_memory_bytes = -1, budget_ms = -1;  // found architectures only
  int64_t peak_bytes = 0, weight_bytes = 0, arena_bytes = 0;
  Proxies proxies;
  std::vector<rt::NodeProfile> nodes;
  std::string dir;
  std::string package;  // the exported model.mxr
  // Found architectures: the budget it competed for and its rank by the strategy's proxy; the
  // kept one of several candidates lists them all (search.finetune_top).
  std::string budget;
  int rank = 1;
  nlohmann::json candidates;
};

std::string in_run(const std::string& run_dir, const std::string& name) {
  return (fs::path(run_dir) / name).string();
}

// ------------------------------------------------------------------ phase: data and supernet

SearchData load_data(const config::Config& cfg, const SearchOptions& o) {
  SearchData d;
  d.dataset = data::load_dataset_config(cfg.resolve_path("data"));
  d.nc = cfg.get_int("nc") > 0 ? static_cast<int>(cfg.get_int("nc")) : d.dataset.num_classes();
  data::DetectionSplit full_train = data::DetectionSplit::load(d.dataset, "train");
  d.val = data::DetectionSplit::load(d.dataset, "val");
  log::info(full_train.report().summary());
  log::info(d.val.report().summary());
  d.train = o.fraction < 1 ? full_train.partition(o.fraction, o.train.seed).first : full_train;
  if (o.fraction < 1)
    log::info("using ", d.train.size(), " train images (fraction ", o.fraction, ")");
  return d;
}

Supernet build_supernet(const config::Config& cfg, const SearchOptions& o, int nc) {
  torch::manual_seed(o.train.seed);
  if (!cfg.get_node("search_space") || cfg.get_node("search_space").IsNull()) {
    throw Error(cfg.where("search_space").str() +
                ": 'search_space' is required (candidates per site; docs/search_space.md)");
  }
  Supernet s;
  s.build.nc = nc;
  s.build.search_space =
      sn::parse_search_space(cfg.get_node("search_space"), cfg.where("search_space").file);
  s.build.recompute = o.recompute;
  s.model_path = cfg.resolve_path("model");
  s.model = sn::build_model(s.model_path, s.build);
  log::info("supernet ", s.model_path, ": ", s.model->parameter_count(), " parameters, ",
            s.model->site_refs().size(), " sites");
  return s;
}

// ------------------------------------------------------------------ phase: prepare table

// The latency table of this device, calibrated on whole models.
eval::LatencyTable prepare_search_table(Supernet& net, const CostModel& cost,
                                        eval::Evaluator& evaluator, const SearchOptions& o,
                                        const std::string& run_dir, bool resume) {
  LutRequest lr;
  lr.model_key = model_key(net.model, o.train.imgsz);
  lr.cache_dir = o.lut_cache;
  lr.run_copy = in_run(run_dir, "lut.json");
  lr.calibrate_n = o.calibrate_n;
  lr.seed = o.train.seed;
  lr.imgsz = o.train.imgsz;
  lr.reuse_run_copy = resume;
  // Measured once, by rank 0; the other ranks read its run copy (docs/distributed.md).
  if (!dist::is_main()) {
    dist::barrier("waiting for rank 0's latency table");
    eval::LatencyTable table = eval::LatencyTable::load(lr.run_copy);
    table.use_calibration(lr.model_key);
    return table;
  }
  eval::LatencyTable table = prepare_table(net.model, cost, evaluator, lr);
  dist::barrier("handing out the latency table");
  return table;
}

// ------------------------------------------------------------------ phase: prune

// Bit-widths that cannot pay on this device leave the search space (cost.prune_margin): the
// supernet is built again without them, from the same seed (so the same initial weights).
std::vector<CostModel::Pruned> prune_dominated_bits(Supernet& net, CostModel& cost,
                                                    const eval::LatencyTable& table,
                                                    eval::Evaluator& evaluator,
                                                    const SearchOptions& o,
                                                    const std::string& run_dir) {
  const std::vector<CostModel::Pruned> pruned = cost.dominated_bits(table, o.prune_margin);
  if (pruned.empty()) return pruned;
  std::map<std::string, int> dropped;  // "w2" -> sites
  for (const auto& p : pruned) {
    sn::SearchRule rule;
    rule.name = p.site;
    rule.w_bits = p.w_bits;
    rule.a_bits = p.a_bits;
    rule.where = in_run(run_dir, "lut.json") + " (cost.prune_margin)";
    net.build.search_space->rules.push_back(rule);
    for (int b : p.dropped_w_bits) ++dropped["w" + std::to_string(b)];
    for (int b : p.dropped_a_bits) ++dropped["a" + std::to_string(b)];
  }
  std::string what;
  for (const auto& [bits, n] : dropped)
    what += (what.empty() ? "" : ", ") + bits + " at " + std::to_string(n) + " sites";
  log::info("bit-widths with no gain in time or memory on ", evaluator.device_id(),
            " dropped: ", what, " (", pruned.size(), " of ", cost.sites().size(),
            " sites; cost.prune_margin ", fmt("%.2f", o.prune_margin), ")");
  torch::manual_seed(o.train.seed);
  net.model = sn::build_model(net.model_path, net.build);
  cost = CostModel(net.model, o.train.imgsz);
  cost.attach(table);
  return pruned;
}

// ------------------------------------------------------------------ phase: targets

// The budget: absolute targets, or fractions of the reference (all-8-bit) model's cost.
std::pair<double, double> cost_targets(const CostModel& cost, const SearchOptions& o) {
  sn::ArchChoices reference = cost.reference_choices();
  const double ref_lat = cost.latency_ms(reference), ref_mem = cost.memory_bytes(reference);
  double lat = o.target_latency_ms > 0 ? o.target_latency_ms : o.target_latency_ratio * ref_lat;
  double mem = o.target_memory_bytes > 0 ? o.target_memory_bytes : o.target_memory_ratio * ref_mem;
  log::info("targets: latency ", fmt("%.3f", lat), " ms, memory ", fmt("%.0f", mem / 1024),
            " KiB (reference: ", fmt("%.3f", ref_lat), " ms, ", fmt("%.0f", ref_mem / 1024),
            " KiB)");
  return {lat, mem};
}

// ------------------------------------------------------------------ phase: finetune and export

// The epoch record with the best fitness (what weights/best.pt holds).
EpochRecord best_record(const std::vector<EpochRecord>& h) {
  EpochRecord best;
  double bf = -1;
  for (const auto& r : h) {
    double f = training::fitness(r.map50, r.map50_95);
    if (f > bf) {
      bf = f;
      best = r;
    }
  }
  return best;
}

// The package of a trained run: model.mxr (+ onnx and arch.yaml when `all_formats`) in out_dir.
std::string export_trained(const std::string& dir, const std::string& out_dir, bool all_formats,
                           const TrainOptions& options,
                           const std::vector<std::string>& class_names) {
  exporter::ExportRequest req;
  req.input = (fs::path(dir) / "weights" / "best.pt").string();
  req.formats =
      all_formats ? std::vector<std::string>{"mxr", "onnx"} : std::vector<std::string>{"mxr"};
  if (all_formats && !exporter::onnx_available()) req.formats = {"mxr"};
  req.options.imgsz = options.imgsz;
  req.options.class_names = class_names;
  req.output_dir = out_dir;
  exporter::run_export(req);
  return (fs::path(out_dir) / "model.mxr").string();
}

struct TrainJob {
  std::string name;
  sn::YoloModel model{nullptr};
  sn::ArchChoices choices;
  TrainOptions options;
  std::string dir, out_dir;
  bool all_formats = false;
};

// Trains `job.model` into job.dir (resuming a started run), exports it into job.out_dir and
// measures it.
Figures train_export_measure(const TrainJob& job, const SearchContext& ctx,
                             const std::vector<std::string>& class_names) {
  Figures f;
  f.name = job.name;
  f.choices = job.choices;
  f.dir = job.dir;
  fs::create_directories(job.dir);
  bool started = fs::exists(fs::path(job.dir) / "weights" / "last.pt");
  log::info(job.name, ": training into ", job.dir, started && ctx.resume ? " (resuming)" : "");
  training::Trainer trainer(job.model, ctx.train, ctx.val, job.options, job.dir);
  trainer.fit(ctx.resume && started);
  if (!dist::is_main()) return f;  // rank 0 exports and measures
  EpochRecord best = best_record(trainer.history());
  f.map50 = best.map50;
  f.map50_95 = best.map50_95;
  f.package = export_trained(job.dir, job.out_dir, job.all_formats, job.options, class_names);
  eval::MeasureResult r = ctx.evaluator.measure_package(read_file(f.package));
  f.latency_ms = r.latency.median_ms;
  f.peak_bytes = r.memory.peak_bytes;
  f.weight_bytes = r.memory.resident_weight_bytes;
  f.arena_bytes = r.memory.arena_bytes;
  f.nodes = r.nodes;
  f.proxies = ctx.cost.proxies(job.choices);
  log::info(job.name, ": mAP50-95 ", fmt("%.4f", f.map50_95), " mAP50 ", fmt("%.4f", f.map50),
            ctx.evaluator.kind() == "model" ? ", predicted " : ", measured ",
            fmt("%.3f", f.latency_ms), " ms, peak ", f.peak_bytes, " bytes");
  return f;
}

// Of each budget's candidates (in the strategy's order, a budget's first one first), the one of
// best finetuned mAP50-95 (the better-ranked of equals), named after its budget and listing all.
std::vector<Figures> keep_best_candidates(const std::vector<Figures>& all) {
  std::vector<std::string> budgets;
  std::vector<double> maps;
  for (const Figures& f : all) {
    budgets.push_back(f.budget);
    maps.push_back(f.map50_95);
  }
  std::vector<Figures> kept;
  for (size_t best : best_per_group(budgets, maps)) {
    Figures k = all[best];
    std::vector<const Figures*> group;
    for (const Figures& f : all)
      if (f.budget == k.budget) group.push_back(&f);
    if (group.size() >= 2) {
      k.name = k.budget;
      k.candidates = nlohmann::json::array();
      for (const Figures* c : group)
        k.candidates.push_back({{"name", c->name},
                                {"rank", c->rank},
                                {"map50_95", c->map50_95},
                                {"map50", c->map50},
                                {"predicted_latency_ms", c->predicted_ms},
                                {"dir", c->dir}});
      log::info(k.budget, ": kept the candidate of proxy rank ", k.rank, " of ", group.size(),
                " (finetuned mAP50-95 ", fmt("%.4f", k.map50_95), ")");
    }
    kept.push_back(k);
  }
  return kept;
}

// The run folder's model, arch.yaml and weights/best.pt: the kept winner's. Its first candidate
// was exported there already; another one is exported there now.
void promote_winner(Figures& winner, const SearchContext& ctx,
                    const std::vector<std::string>& class_names) {
  if (winner.rank != 1) {
    winner.package = export_trained(winner.dir, ctx.run_dir, true, ctx.options.train, class_names);
    sn::write_arch_yaml(in_run(ctx.run_dir, "arch.yaml"), ctx.supernet, winner.choices);
  }
  write_file_atomic(in_run(ctx.run_dir, "weights/best.pt"),
                    read_file((fs::path(winner.dir) / "weights" / "best.pt").string()));
}

// The found architectures, each finetuned from its inherited weights and exported: the first
// (the first candidate at the config's budget) into finetune/ and the run folder, the others
// into found/<name>/. Of several candidates per budget the best finetuned is kept; the kept
// winner at the config's budget becomes the run folder's model.
std::vector<Figures> finetune_found(const SearchResult& result, const SearchContext& ctx,
                                    const std::vector<std::string>& class_names) {
  std::vector<Figures> all;
  for (size_t i = 0; i < result.found.size(); ++i) {
    const FoundArchitecture& a = result.found[i];
    const std::string dir =
        i == 0 ? in_run(ctx.run_dir, "finetune") : in_run(ctx.run_dir, "found/" + a.name);
    TrainJob job{a.name, a.model, a.choices, ctx.options.train, dir, i == 0 ? ctx.run_dir : dir,
                 i == 0};
    Figures f = train_export_measure(job, ctx, class_names);
    f.predicted_ms = a.predicted_latency_ms;
    f.predicted_memory_bytes = a.predicted_memory_bytes;
    f.budget_ms = a.budget_latency_ms;
    f.budget = a.budget.empty() ? a.name : a.budget;
    f.rank = a.rank;
    if (i > 0 && dist::is_main())
      sn::write_arch_yaml((fs::path(dir) / "arch.yaml").string(), ctx.supernet, a.choices);
    all.push_back(f);
  }
  std::vector<Figures> kept = keep_best_candidates(all);
  if (!kept.empty() && dist::is_main()) promote_winner(kept.front(), ctx, class_names);
  return kept;
}

// ------------------------------------------------------------------ phase: sensitivity

// Per site, the held-out score change of each one-site change of the start model in the trained
// supernet (search.sensitivity): sensitivity.csv. Nothing for a strategy without a trained
// supernet (uniform).
std::string sensitivity_phase(const SearchStrategy& strategy, const SearchContext& ctx) {
  if (!ctx.options.sensitivity) return {};
  if (strategy.name() == "uniform") {
    log::warn("search.sensitivity: the uniform strategy trains no supernet; no sensitivity");
    return {};
  }
  SubnetEvaluator evaluator(ctx.supernet, shared_splits(ctx), ctx.options);
  const std::string csv = sensitivity_csv(sensitivity(evaluator, ctx.cost, start_choices(ctx)));
  if (dist::is_main()) write_file_atomic(in_run(ctx.run_dir, "sensitivity.csv"), csv);
  log::info("sensitivity: ", in_run(ctx.run_dir, "sensitivity.csv"));
  return csv;
}

// ------------------------------------------------------------------ phase: baselines

bool predictable(const CostModel& cost, const sn::ArchChoices& choices) {
  try {
    cost.raw_latency_ms(choices);
    return true;
  } catch (const Error&) {
    return false;
  }
}

// One activation everywhere at one baseline's bits policy, the same budget.
Figures train_baseline(const SearchStrategy& strategy, const SearchContext& ctx,
                       const std::string& text, const sn::ArchChoices& searched,
                       const std::vector<std::string>& class_names) {
  const SearchOptions& o = ctx.options;
  const BaselineSpec spec = BaselineSpec::parse(text, o.baseline_bits, "baselines");
  TrainJob job;
  job.name = spec.name;
  job.choices = ctx.cost.uniform_choices(spec.act, spec.bits, searched);
  job.dir = job.out_dir = in_run(ctx.run_dir, "baselines/" + job.name);
  job.options = o.train;
  job.model = strategy.baseline_model(ctx, job.choices, job.options);
  Figures f = train_export_measure(job, ctx, class_names);
  if (predictable(ctx.cost, job.choices)) f.predicted_ms = ctx.cost.latency_ms(job.choices);
  return f;
}

// Every baseline in the config's order; the teacher (finetune.distill), trained before the found
// models, is `teacher` and not trained again.
std::vector<Figures> train_baselines(const SearchStrategy& strategy, const SearchContext& ctx,
                                     const sn::ArchChoices& searched,
                                     const std::vector<std::string>& class_names,
                                     const std::optional<Figures>& teacher) {
  const SearchOptions& o = ctx.options;
  std::vector<Figures> baselines;
  for (size_t i = 0; i < o.baselines.size(); ++i) {
    if (teacher && static_cast<int>(i) == o.teacher_baseline)
      baselines.push_back(*teacher);
    else
      baselines.push_back(train_baseline(strategy, ctx, o.baselines[i], searched, class_names));
  }
  return baselines;
}

// ------------------------------------------------------------------ phase: measure

// Each model was measured right after its training, while its own checkpoints and logs were
// still being written. The figures reported are made again once nothing else runs: rounds in
// which every model is measured once, in alternating order (forward, then backward), and each
// model's figure is the median of its round medians. Alternating puts every model through the
// same bursts of load; a median of many short measurements is not moved by one burst, and unlike
// a lowest median it does not favour the model whose latency spreads more. A device model's
// prediction is the same every time, so it is made once.
void measure_again(const std::vector<Figures*>& all, eval::Evaluator& evaluator) {
  if (all.empty()) return;
  const int rounds = evaluator.kind() == "model" ? 1 : 15;
  std::vector<std::vector<eval::MeasureResult>> runs(all.size());
  std::vector<std::string> packages;
  for (const Figures* f : all) packages.push_back(read_file(f->package));
  for (int round = 0; round < rounds; ++round) {
    for (size_t k = 0; k < all.size(); ++k) {
      const size_t i = round % 2 == 0 ? k : all.size() - 1 - k;
      runs[i].push_back(evaluator.measure_package(packages[i]));
    }
  }
  for (size_t i = 0; i < all.size(); ++i) {
    std::vector<eval::MeasureResult>& r = runs[i];
    std::sort(r.begin(), r.end(), [](const eval::MeasureResult& a, const eval::MeasureResult& b) {
      return a.latency.median_ms < b.latency.median_ms;
    });
    const eval::MeasureResult& mid = r[r.size() / 2];  // rounds is odd: the median itself
    all[i]->latency_ms = mid.latency.median_ms;
    all[i]->nodes = mid.nodes;
    if (rounds == 1)
      log::info(all[i]->name, ": ", fmt("%.3f", all[i]->latency_ms), " ms (predicted)");
    else
      log::info(all[i]->name, ": ", fmt("%.3f", all[i]->latency_ms), " ms (median of ", rounds,
                " alternated measurements of ", evaluator.options().runs, " runs)");
  }
}

// ------------------------------------------------------------------ phase: check

// How well the table predicts whole models it was not calibrated on: the trained models and
// cost.validate_n random architectures.
LutAccuracy check_table(const std::vector<Figures*>& all, const SearchContext& ctx) {
  std::vector<std::pair<double, double>> pred_meas;
  std::vector<std::string> checked;  // what each pair is, for the log
  for (const Figures* f : all) {
    if (f->predicted_ms < 0) continue;
    pred_meas.push_back({f->predicted_ms, f->latency_ms});
    checked.push_back(f->name);
  }
  sn::YoloModel supernet = ctx.supernet;
  std::vector<std::pair<double, double>> val_pairs =
      measure_random_architectures(supernet, ctx.cost, ctx.evaluator, ctx.options.validate_n,
                                   ctx.options.train.seed + 7919, ctx.options.train.imgsz);
  pred_meas.insert(pred_meas.end(), val_pairs.begin(), val_pairs.end());
  for (size_t i = 0; i < val_pairs.size(); ++i)
    checked.push_back("random " + std::to_string(i + 1));
  for (size_t i = 0; i < pred_meas.size(); ++i) {
    const auto& [p, m] = pred_meas[i];
    log::info("LUT check ", checked[i], ": predicted ", fmt("%.3f", p), " ms, ",
              ctx.evaluator.kind() == "model" ? "package predicted " : "measured ", fmt("%.3f", m),
              " ms (", fmt("%+.1f", m > 0 ? 100.0 * (p - m) / m : 0.0), "%)");
  }
  return lut_accuracy(pred_meas);
}

// ------------------------------------------------------------------ phase: report

nlohmann::json figures_json(const Figures& f) {
  nlohmann::json j = {{"map50_95", f.map50_95},         {"map50", f.map50},
                      {"latency_ms", f.latency_ms},     {"peak_bytes", f.peak_bytes},
                      {"weight_bytes", f.weight_bytes}, {"arena_bytes", f.arena_bytes},
                      {"macs", f.proxies.macs},         {"bops", f.proxies.bops},
                      {"params", f.proxies.params}};
  if (f.predicted_ms >= 0) j["predicted_latency_ms"] = f.predicted_ms;
  if (f.predicted_memory_bytes >= 0) j["predicted_memory_bytes"] = f.predicted_memory_bytes;
  if (f.budget_ms >= 0) {
    j["budget_latency_ms"] = f.budget_ms;
    j["meets_budget"] = f.predicted_ms <= f.budget_ms * (1 + 1e-9);
  }
  if (!f.candidates.is_null()) {
    j["rank"] = f.rank;
    j["candidates"] = f.candidates;
  }
  return j;
}

// What is known before any model is trained.
nlohmann::json search_summary(const SearchContext& ctx, const std::string& strategy,
                              const std::vector<CostModel::Pruned>& pruned) {
  nlohmann::json summary;
  summary["run_dir"] = ctx.run_dir;
  summary["device_id"] = ctx.evaluator.device_id();
  // "predicted" (a device model: its file, core, llvm-mca) or "measured": every latency below.
  summary["latency_provenance"] = ctx.evaluator.provenance();
  summary["strategy"] = strategy;
  summary["imgsz"] = ctx.options.train.imgsz;
  summary["targets"] = {{"latency_ms", ctx.target_latency_ms},
                        {"memory_bytes", ctx.target_memory_bytes}};
  summary["pruned_bits"] = nlohmann::json::object();
  for (const auto& p : pruned) {
    summary["pruned_bits"][p.site] = {{"w_bits", p.w_bits},
                                      {"a_bits", p.a_bits},
                                      {"dropped_w_bits", p.dropped_w_bits},
                                      {"dropped_a_bits", p.dropped_a_bits}};
  }
  return summary;
}

void add_comparison(nlohmann::json& summary, const std::optional<Figures>& searched,
                    const std::vector<Figures>& baselines, const LutAccuracy& acc,
                    const SearchOptions& o) {
  if (searched) summary["searched"] = figures_json(*searched);
  summary["baselines"] = nlohmann::json::object();
  for (const auto& b : baselines) summary["baselines"][b.name] = figures_json(b);
  summary["lut_mape"] = acc.mape_pct;
  summary["lut_max_err"] = acc.max_err_pct;
  summary["lut_n"] = acc.n;
  summary["baseline_bits"] = o.baseline_bits;
  // The searched model against every baseline; the first baseline is the headline (the quick
  // start's: SiLU at the same bits, int8, so that the figure says what the search adds to int8
  // quantization alone).
  if (searched && !baselines.empty()) {
    for (const Figures& ref : baselines)
      summary["vs_" + ref.name] = {
          {"map50_95_delta", searched->map50_95 - ref.map50_95},
          {"latency_reduction_pct", 100.0 * (1.0 - searched->latency_ms / ref.latency_ms)},
          {"peak_memory_reduction_pct", 100.0 * (1.0 - static_cast<double>(searched->peak_bytes) /
                                                           static_cast<double>(ref.peak_bytes))}};
    summary["headline"] = "vs_" + baselines.front().name;
  }
}

// What the strategy did: its time, the proxy it ranked with and every architecture it scored.
void add_search_record(nlohmann::json& summary, const SearchResult& result, double seconds) {
  summary["search_seconds"] = seconds;
  if (result.points.empty()) return;
  summary["proxy"] = result.proxy;
  nlohmann::json points = nlohmann::json::array();
  for (const ProxyPoint& p : result.points)
    points.push_back({{"predicted_latency_ms", p.predicted_latency_ms},
                      {"score", p.score},
                      {"on_front", p.on_front}});
  summary["proxy_points"] = points;
}

// The winner's arch.yaml in the run folder.
void write_found_arch(const SearchContext& ctx, const SearchResult& result) {
  if (result.found.empty() || !dist::is_main()) return;
  const FoundArchitecture& a = result.found.front();
  const std::string path = in_run(ctx.run_dir, "arch.yaml");
  sn::write_arch_yaml(path, ctx.supernet, a.choices);
  log::info("derived architecture: ", path, " (predicted ", fmt("%.3f", a.predicted_latency_ms),
            " ms, budget ", fmt("%.3f", a.budget_latency_ms), " ms)");
}

ReportModel report_model(const Figures& f) {
  ReportModel m;
  m.name = f.name;
  m.map50_95 = f.map50_95;
  m.map50 = f.map50;
  m.latency_ms = f.latency_ms;
  m.peak_bytes = f.peak_bytes;
  m.weight_bytes = f.weight_bytes;
  m.choices = f.choices;
  m.nodes = f.nodes;
  return m;
}

// Every site's candidates, and the searched layer's table entry beside it.
std::vector<ReportSite> report_sites(const CostModel& cost, const eval::LatencyTable& table,
                                     const std::optional<Figures>& searched) {
  std::vector<ReportSite> sites;
  for (const auto& s : cost.sites()) {
    ReportSite rs;
    rs.name = s.name;
    rs.acts.clear();
    for (auto a : s.acts) rs.acts.push_back(sn::act_name(a));
    rs.w_bits = s.w_bits;
    rs.a_bits = s.a_bits;
    rs.macs = s.geometry.macs();
    sites.push_back(rs);
  }
  if (!searched) return sites;
  auto sigs = cost.signatures(searched->choices);
  for (size_t i = 0; i < sigs.size() && i < sites.size(); ++i) {
    if (!table.has(sigs[i].key())) continue;
    const auto& e = table.at(sigs[i].key());
    sites[i].searched_latency_ms = e.median_ms;
    sites[i].weight_bytes = e.weight_bytes;
    sites[i].arena_bytes = e.arena_bytes;
  }
  return sites;
}

void write_search_report(const config::Config& cfg, const SearchContext& ctx,
                         const nlohmann::json& summary, const SearchResult& result,
                         const eval::LatencyTable& table, const std::vector<Figures>& found,
                         const std::vector<Figures>& baselines, const std::string& sensitivity) {
  std::optional<Figures> searched;
  if (!found.empty()) searched = found.front();
  ReportInput in;
  in.title = "mixnas search: " + fs::path(ctx.run_dir).filename().string();
  in.config_text = cfg.to_yaml();
  in.summary = summary;
  in.history = result.history;
  const std::string probs = in_run(ctx.run_dir, "probs.csv");
  in.probs_csv = fs::exists(probs) ? read_file(probs) : std::string();
  for (const auto& f : found) in.models.push_back(report_model(f));
  for (const auto& b : baselines) in.models.push_back(report_model(b));
  in.sensitivity_csv = sensitivity;
  in.sites = report_sites(ctx.cost, table, searched);
  write_report(in_run(ctx.run_dir, "report.html"), in);
  log::info("report: ", in_run(ctx.run_dir, "report.html"));
}

}  // namespace

// ------------------------------------------------------------------ the whole job

nlohmann::json run_search(const config::Config& cfg, eval::Evaluator& evaluator,
                          const std::string& run_dir, bool resume, const SearchHooks& hooks) {
  auto t_start = Clock::now();
  const SearchOptions o = SearchOptions::from_config(cfg);
  std::unique_ptr<SearchStrategy> strategy = make_strategy(o.strategy);
  training::set_torch_threads(o.train.threads);
  SearchData data = load_data(cfg, o);
  Supernet net = build_supernet(cfg, o, data.nc);

  CostModel cost(net.model, o.train.imgsz);
  const eval::LatencyTable table = prepare_search_table(net, cost, evaluator, o, run_dir, resume);
  cost.attach(table);
  const auto pruned = prune_dominated_bits(net, cost, table, evaluator, o, run_dir);
  const auto [target_lat, target_mem] = cost_targets(cost, o);

  SearchContext ctx{o,       net.model, data.train, data.val,   cost, evaluator,
                    run_dir, resume,    target_lat, target_mem, hooks};
  const auto t_search = Clock::now();
  SearchResult result = strategy->search(ctx);
  nlohmann::json summary = search_summary(ctx, strategy->name(), pruned);
  add_search_record(summary, result,
                    std::chrono::duration<double>(Clock::now() - t_search).count());
  write_found_arch(ctx, result);
  const std::string sensitivity = sensitivity_phase(*strategy, ctx);
  if (!sensitivity.empty()) summary["sensitivity_csv"] = in_run(run_dir, "sensitivity.csv");
  if (!o.finetune) {
    summary["searched_arch"] = in_run(run_dir, "arch.yaml");
    if (dist::is_main()) write_file_atomic(in_run(run_dir, "summary.json"), summary.dump(2) + "\n");
    return summary;
  }

  const std::vector<std::string>& names = data.dataset.names;
  // With a teacher baseline (finetune.distill), it trains first and the rest learn from it.
  std::optional<Figures> teacher;
  SearchOptions taught = o;
  if (o.teacher_baseline >= 0) {
    teacher = train_baseline(*strategy, ctx, o.baselines[size_t(o.teacher_baseline)], {}, names);
    taught.train.distill = (fs::path(teacher->dir) / "weights" / "best.pt").string();
  }
  const SearchContext tctx{taught,  net.model, data.train, data.val,   cost, evaluator,
                           run_dir, resume,    target_lat, target_mem, hooks};
  std::vector<Figures> found = finetune_found(result, tctx, names);
  std::vector<Figures> baselines = train_baselines(
      *strategy, tctx, found.empty() ? sn::ArchChoices{} : found.front().choices, names, teacher);
  // Measuring, checking the table and the report are rank 0's alone.
  if (!dist::is_main()) return summary;
  std::vector<Figures*> all;
  for (auto& f : found) all.push_back(&f);
  for (auto& b : baselines) all.push_back(&b);
  measure_again(all, evaluator);
  const LutAccuracy acc = check_table(all, ctx);

  std::optional<Figures> searched;
  if (!found.empty()) searched = found.front();
  add_comparison(summary, searched, baselines, acc, o);
  // The teacher of the finetunes: a baseline's name or a weights file.
  if (teacher)
    summary["distill"] = teacher->name;
  else if (!o.train.distill.empty())
    summary["distill"] = o.train.distill;
  summary["found"] = nlohmann::json::array();
  for (const Figures& f : found) {
    nlohmann::json j = figures_json(f);
    j["name"] = f.name;
    summary["found"].push_back(j);
  }
  summary["seconds"] = std::chrono::duration<double>(Clock::now() - t_start).count();
  write_file_atomic(in_run(run_dir, "summary.json"), summary.dump(2) + "\n");
  write_search_report(cfg, ctx, summary, result, table, found, baselines, sensitivity);
  return summary;
}

}  // namespace mixnas::search
