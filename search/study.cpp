#include "search/study.h"

#include <algorithm>
#include <filesystem>
#include <set>
#include <sstream>

#include "core/atomic_file.h"
#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "core/text.h"
#include "search/pareto.h"
#include "search/report.h"
#include "search/run_search.h"
#include "search/strategy.h"

namespace mixnas::search {
namespace fs = std::filesystem;
using nlohmann::json;
using text::fmt;

namespace {

// The ActNAS uniform table: every activation of the search space at int8, after `baselines`.
std::string uniform_sweep_baselines(const config::Config& cfg) {
  std::vector<std::string> list = cfg.get_string_list("baselines");
  const YAML::Node space = cfg.get_node("search_space");
  const YAML::Node acts = space ? space["activations"] : YAML::Node();
  if (acts && acts.IsSequence())
    for (const auto& a : acts) {
      const std::string b = a.as<std::string>() + ":int8";
      if (std::find(list.begin(), list.end(), b) == list.end()) list.push_back(b);
    }
  return "baselines=[" + text::join(list, ", ") + "]";
}

// The baseline that teaches the finetunes (finetune.distill naming one of `baselines`, as written
// there or by its name), as written in `baselines`; empty: none.
std::string teacher_baseline(const config::Config& cfg) {
  const std::string distill = cfg.get_string("finetune.distill");
  if (distill.empty()) return {};
  const std::vector<std::string> baselines = cfg.get_string_list("baselines");
  const int i = find_baseline(baselines, cfg.get_string("baseline_bits"), distill);
  return i < 0 ? std::string() : baselines[size_t(i)];
}

// One strategy's overrides: the strategy, and baselines trained by the uniform run alone (but a
// teacher baseline, which every run trains for its own finetunes).
std::vector<std::string> strategy_overrides(const std::string& strategy,
                                            const config::Config& base) {
  std::vector<std::string> o{"search.strategy=" + strategy};
  const std::string teacher = teacher_baseline(base);
  if (strategy == "uniform" && base.get_bool("study.uniform_sweep"))
    o.push_back(uniform_sweep_baselines(base));
  else if (strategy != "uniform")
    o.push_back("baselines=[" + teacher + "]");
  return o;
}

void check_strategies(const config::Config& base, const std::vector<std::string>& strategies) {
  if (strategies.empty())
    throw Error(base.where("study.strategies").str() + ": 'study.strategies' is empty");
  for (const auto& s : strategies) {
    try {
      make_strategy(s);
    } catch (const Error& e) {
      throw Error(base.where("study.strategies").str() + ": 'study.strategies': " + e.what());
    }
  }
}

void write_study(const std::string& dir,
                 const std::vector<std::pair<std::string, json>>& summaries) {
  const json study = study_json(summaries);
  write_file_atomic((fs::path(dir) / "study.json").string(), study.dump(2) + "\n");
  write_file_atomic((fs::path(dir) / "study.html").string(), render_study_html(study));
}

}  // namespace

json run_study(const ConfigLoader& load, eval::Evaluator& evaluator, const std::string& study_dir,
               bool resume) {
  const config::Config base = load({});
  const std::vector<std::string> strategies = base.get_string_list("study.strategies");
  check_strategies(base, strategies);
  std::vector<std::pair<std::string, json>> summaries;
  for (const std::string& s : strategies) {
    const std::string dir = (fs::path(study_dir) / s).string();
    const std::string summary_path = (fs::path(dir) / "summary.json").string();
    if (resume && fs::exists(summary_path)) {
      log::info("study: ", s, " already ran (", summary_path, ")");
      summaries.push_back({s, json::parse(read_file(summary_path))});
      continue;
    }
    const config::Config cfg = load(strategy_overrides(s, base));
    if (!cfg.get_bool("search.finetune"))
      throw Error(cfg.where("search.finetune").str() +
                  ": 'search.finetune' must be true in a study (winners are measured)");
    fs::create_directories(dir);
    write_file_atomic((fs::path(dir) / "args.yaml").string(), cfg.to_yaml());
    log::info("study: ", s, " into ", dir);
    summaries.push_back({s, run_search(cfg, evaluator, dir, resume)});
    write_study(study_dir, summaries);
  }
  write_study(study_dir, summaries);
  return study_json(summaries);
}

// ------------------------------------------------------------------ study.json

namespace {

// Every measured model of one run: the found architectures, then the baselines.
json measured_models(const json& summary) {
  json models = json::array();
  for (const json& f : summary.value("found", json::array())) {
    json m = f;
    m["kind"] = "found";
    models.push_back(m);
  }
  const json baselines = summary.value("baselines", json::object());  // items() needs it alive
  for (const auto& [name, b] : baselines.items()) {
    json m = b;
    m["name"] = name;
    m["kind"] = "baseline";
    models.push_back(m);
  }
  return models;
}

// The found winner; for a run without one (uniform), the most accurate baseline whose predicted
// latency meets the budget. Null when none does.
json winner_of(const json& models, double budget_ms) {
  json best;
  for (const json& m : models) {
    if (m["kind"] == "found") return m;
    const double predicted = m.value("predicted_latency_ms", 1e300);
    if (predicted > budget_ms) continue;
    if (best.is_null() || m["map50_95"].get<double>() > best["map50_95"].get<double>()) best = m;
  }
  if (!best.is_null()) {
    best["budget_latency_ms"] = budget_ms;
    best["meets_budget"] = true;
  }
  return best;
}

std::vector<CostValue> latency_map(const json& models) {
  std::vector<CostValue> points;
  for (const json& m : models)
    points.push_back({m["latency_ms"].get<double>(), m["map50_95"].get<double>()});
  return points;
}

// Whether the found models (one per budget), ordered by measured latency, have non-decreasing
// mAP50-95: the evolution front as measured after finetuning.
bool found_monotone(const json& models) {
  std::vector<CostValue> found;
  for (const json& m : models)
    if (m["kind"] == "found")
      found.push_back({m["latency_ms"].get<double>(), m["map50_95"].get<double>()});
  std::sort(found.begin(), found.end());
  for (size_t i = 1; i < found.size(); ++i)
    if (found[i].second < found[i - 1].second) return false;
  return true;
}

// DNAS' winner against each rival at equal measured latency: the rival's most accurate model
// measured no slower than the winner (within kLatencyTolerance, the machine's noise); mAP50-95
// within kMapTie counts as a tie.
constexpr double kLatencyTolerance = 0.03, kMapTie = 0.005;

json compare_with_dnas(const json& strategies) {
  json out = json::object();
  if (!strategies.contains("dnas") || strategies["dnas"]["winner"].is_null()) return out;
  const json& w = strategies["dnas"]["winner"];
  const double ms = w["latency_ms"].get<double>(), map = w["map50_95"].get<double>();
  for (const auto& [name, e] : strategies.items()) {
    if (name == "dnas") continue;
    json best;
    for (const json& m : e["models"]) {
      if (m["latency_ms"].get<double>() > ms * (1 + kLatencyTolerance)) continue;
      if (best.is_null() || m["map50_95"].get<double>() > best["map50_95"].get<double>()) best = m;
    }
    json c = {{"dnas_model", w["name"]}, {"dnas_map50_95", map}, {"dnas_latency_ms", ms}};
    if (best.is_null()) {
      c["verdict"] = "rival has no model as fast";
    } else {
      const double d = map - best["map50_95"].get<double>();
      c["verdict"] = d > kMapTie ? "dnas better" : d < -kMapTie ? "rival better" : "tie";
      c["rival_model"] = best["name"];
      c["rival_map50_95"] = best["map50_95"];
      c["rival_latency_ms"] = best["latency_ms"];
    }
    out[name] = c;
  }
  return out;
}

}  // namespace

json study_json(const std::vector<std::pair<std::string, json>>& summaries) {
  json study;
  study["order"] = json::array();
  study["strategies"] = json::object();
  double budget_ms = 0, worst_ms = 0;
  for (const auto& [name, summary] : summaries) {
    budget_ms = summary["targets"]["latency_ms"].get<double>();
    study["device_id"] = summary.value("device_id", std::string());
    study["imgsz"] = summary.value("imgsz", 0);
    for (const json& m : measured_models(summary))
      worst_ms = std::max(worst_ms, m["latency_ms"].get<double>());
  }
  study["budget"] = {{"latency_ms", budget_ms}};
  // Hypervolumes are against a point 10% slower than the slowest model measured, at mAP 0.
  const json reference = {{"latency_ms", 1.1 * worst_ms}, {"map50_95", 0.0}};
  study["reference_point"] = reference;
  for (const auto& [name, summary] : summaries) {
    json e;
    e["run_dir"] = summary.value("run_dir", std::string());
    e["search_seconds"] = summary.value("search_seconds", 0.0);
    e["seconds"] = summary.value("seconds", 0.0);
    if (summary.contains("proxy")) e["proxy"] = summary["proxy"];
    if (summary.contains("proxy_points")) e["proxy_points"] = summary["proxy_points"];
    const json models = measured_models(summary);
    e["models"] = models;
    e["winner"] = winner_of(models, budget_ms);
    const std::vector<CostValue> points = latency_map(models);
    e["front"] = json::array();
    for (size_t i : pareto_front(points)) e["front"].push_back(models[i]["name"]);
    e["hypervolume"] = hypervolume(points, reference["latency_ms"].get<double>(), 0.0);
    if (models.size() > 1) e["found_monotone"] = found_monotone(models);
    study["strategies"][name] = e;
    study["order"].push_back(name);
  }
  study["dnas_vs_rivals"] = compare_with_dnas(study["strategies"]);
  return study;
}

// ------------------------------------------------------------------ study.html

namespace {

const char* kColors[] = {"#e15759", "#4e79a7", "#59a14f", "#f28e2b", "#b07aa1", "#76b7b2"};

std::string num(double v, int digits) {
  return fmt(("%." + std::to_string(digits) + "f").c_str(), v);
}

// mAP50-95 against measured latency: every strategy's models (winners larger), each strategy's
// measured front as a line.
std::string study_scatter(const json& study) {
  const double W = 620, H = 360, L = 60, R = 140, T = 20, B = 45;
  double x0 = 1e300, x1 = -1e300, y0 = 1e300, y1 = -1e300;
  for (const auto& [name, e] : study["strategies"].items())
    for (const json& m : e["models"]) {
      x0 = std::min(x0, m["latency_ms"].get<double>());
      x1 = std::max(x1, m["latency_ms"].get<double>());
      y0 = std::min(y0, m["map50_95"].get<double>());
      y1 = std::max(y1, m["map50_95"].get<double>());
    }
  if (x0 > x1) return "";
  const double px_ = std::max(1e-6, (x1 - x0) * 0.08), py_ = std::max(1e-6, (y1 - y0) * 0.08);
  x0 -= px_, x1 += px_, y0 -= py_, y1 += py_;
  auto X = [&](double x) { return L + (x - x0) / (x1 - x0) * (W - L - R); };
  auto Y = [&](double y) { return H - B - (y - y0) / (y1 - y0) * (H - T - B); };
  std::ostringstream s;
  s << "<svg width='" << W << "' height='" << H << "' class='plot'>"
    << "<line x1='" << L << "' y1='" << H - B << "' x2='" << W - R << "' y2='" << H - B
    << "' stroke='#333'/><line x1='" << L << "' y1='" << T << "' x2='" << L << "' y2='" << H - B
    << "' stroke='#333'/><text x='" << L << "' y='" << H - 8 << "'>" << num(x0, 2)
    << "</text><text x='" << W - R << "' y='" << H - 8 << "' text-anchor='end'>" << num(x1, 2)
    << " ms (measured)</text><text x='4' y='" << T + 10 << "'>" << num(y1, 3)
    << "</text><text x='4' y='" << H - B << "'>" << num(y0, 3) << "</text>";
  int k = 0;
  for (const auto& [name, e] : study["strategies"].items()) {
    const std::string c = kColors[k % 6];
    std::string line;
    for (const json& front_name : e["front"])
      for (const json& m : e["models"])
        if (m["name"] == front_name)
          line += num(X(m["latency_ms"].get<double>()), 1) + "," +
                  num(Y(m["map50_95"].get<double>()), 1) + " ";
    s << "<polyline fill='none' stroke='" << c << "' points='" << line << "'/>";
    for (const json& m : e["models"]) {
      const bool win = !e["winner"].is_null() && e["winner"]["name"] == m["name"];
      s << "<circle cx='" << X(m["latency_ms"].get<double>()) << "' cy='"
        << Y(m["map50_95"].get<double>()) << "' r='" << (win ? 7 : 4) << "' fill='" << c
        << "'><title>" << html_escape(name) << ": " << html_escape(m["name"].get<std::string>())
        << "</title></circle>";
    }
    s << "<circle cx='" << W - R + 14 << "' cy='" << T + 16 * k << "' r='5' fill='" << c
      << "'/><text x='" << W - R + 24 << "' y='" << T + 16 * k + 4 << "'>" << html_escape(name)
      << "</text>";
    ++k;
  }
  s << "</svg>";
  return s.str();
}

void winners_table(std::ostream& h, const json& study) {
  h << "<h2>Winners at the budget (" << num(study["budget"]["latency_ms"].get<double>(), 3)
    << " ms predicted)</h2><table><tr><th class='l'>strategy</th><th class='l'>winner</th>"
       "<th>mAP50-95</th><th>mAP50</th><th>measured latency (ms)</th><th>peak memory (KiB)</th>"
       "<th>predicted (ms)</th><th>budget (ms)</th><th>search (s)</th><th>whole run (s)</th>"
       "<th>hypervolume</th></tr>";
  for (const auto& [name, e] : study["strategies"].items()) {
    const json& w = e["winner"];
    h << "<tr><td class='l'>" << html_escape(name) << "</td>";
    if (w.is_null()) {
      h << "<td class='l' colspan='7'>no model meets the budget</td>";
    } else {
      h << "<td class='l'>" << html_escape(w["name"].get<std::string>()) << "</td><td>"
        << num(w["map50_95"].get<double>(), 4) << "</td><td>" << num(w["map50"].get<double>(), 4)
        << "</td><td>" << num(w["latency_ms"].get<double>(), 3) << "</td><td>"
        << num(w["peak_bytes"].get<double>() / 1024, 1) << "</td><td>"
        << num(w.value("predicted_latency_ms", -1.0), 3) << "</td><td>"
        << num(w.value("budget_latency_ms", -1.0), 3) << "</td>";
    }
    h << "<td>" << num(e["search_seconds"].get<double>(), 1) << "</td><td>"
      << num(e["seconds"].get<double>(), 1) << "</td><td>" << num(e["hypervolume"].get<double>(), 5)
      << "</td></tr>";
  }
  h << "</table>";
}

void comparison_table(std::ostream& h, const json& study) {
  const json& c = study.value("dnas_vs_rivals", json::object());
  if (c.empty()) return;
  h << "<h2>DNAS against its rivals at equal measured latency</h2><p>Each rival's most "
       "accurate model measured no slower than DNAS' winner (3% tolerance); mAP50-95 within 0.5 "
       "points is a tie.</p><table><tr><th class='l'>rival</th><th class='l'>verdict</th>"
       "<th class='l'>rival's model</th><th>its mAP50-95</th><th>its latency (ms)</th>"
       "<th>DNAS mAP50-95</th><th>DNAS latency (ms)</th></tr>";
  for (const auto& [name, r] : c.items()) {
    h << "<tr><td class='l'>" << html_escape(name) << "</td><td class='l'>"
      << html_escape(r["verdict"].get<std::string>()) << "</td>";
    if (r.contains("rival_model")) {
      h << "<td class='l'>" << html_escape(r["rival_model"].get<std::string>()) << "</td><td>"
        << num(r["rival_map50_95"].get<double>(), 4) << "</td><td>"
        << num(r["rival_latency_ms"].get<double>(), 3) << "</td>";
    } else {
      h << "<td class='l' colspan='3'></td>";
    }
    h << "<td>" << num(r["dnas_map50_95"].get<double>(), 4) << "</td><td>"
      << num(r["dnas_latency_ms"].get<double>(), 3) << "</td></tr>";
  }
  h << "</table>";
}

void models_table(std::ostream& h, const json& study) {
  h << "<h2>Every measured model</h2><table><tr><th class='l'>strategy</th><th class='l'>model"
       "</th><th>mAP50-95</th><th>measured latency (ms)</th><th>peak memory (KiB)</th>"
       "<th>predicted (ms)</th><th>budget (ms)</th><th class='l'>on the front</th></tr>";
  for (const auto& [name, e] : study["strategies"].items())
    for (const json& m : e["models"]) {
      const bool front =
          std::find(e["front"].begin(), e["front"].end(), m["name"]) != e["front"].end();
      h << "<tr><td class='l'>" << html_escape(name) << "</td><td class='l'>"
        << html_escape(m["name"].get<std::string>()) << "</td><td>"
        << num(m["map50_95"].get<double>(), 4) << "</td><td>"
        << num(m["latency_ms"].get<double>(), 3) << "</td><td>"
        << num(m["peak_bytes"].get<double>() / 1024, 1) << "</td><td>"
        << num(m.value("predicted_latency_ms", -1.0), 3) << "</td><td>"
        << num(m.value("budget_latency_ms", -1.0), 3) << "</td><td class='l'>"
        << (front ? "yes" : "") << "</td></tr>";
    }
  h << "</table>";
}

}  // namespace

std::string render_study_html(const json& study) {
  std::ostringstream h;
  h << "<!DOCTYPE html><html><head><meta charset='utf-8'><title>mixnas study</title><style>"
    << "body{font-family:sans-serif;margin:24px;color:#222;max-width:1200px}"
    << "table{border-collapse:collapse;margin:8px 0 20px}td,th{border:1px solid #ccc;"
       "padding:3px 8px;font-size:13px;text-align:right}th{background:#f3f3f3}"
       "td.l,th.l{text-align:left}.plot{background:#fafafa;border:1px solid #ddd}"
       ".plot text{font-size:11px}pre{background:#f6f6f6;padding:8px;font-size:12px}"
    << "</style></head><body><h1>mixnas study</h1>";
  h << "<p>Device <b>" << html_escape(study.value("device_id", std::string("?"))) << "</b>, input "
    << study.value("imgsz", 0)
    << " px. Every strategy ran on the same data, seed, search space, budget and epochs; every "
       "model was finetuned, exported and measured on the device. Hypervolume: the area of "
       "(measured latency, mAP50-95) a strategy's models dominate up to the reference point ("
    << num(study["reference_point"]["latency_ms"].get<double>(), 3) << " ms, mAP50-95 0).</p>";
  winners_table(h, study);
  comparison_table(h, study);
  h << "<h2>mAP50-95 vs measured latency</h2>" << study_scatter(study);
  models_table(h, study);
  h << "<h2>study.json</h2><pre>" << html_escape(study.dump(2)) << "</pre></body></html>\n";
  return h.str();
}

}  // namespace mixnas::search
