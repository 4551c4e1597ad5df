#include "search/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <sstream>

#include "core/atomic_file.h"
#include "search/dnas.h"

namespace mixnas::search {
namespace {

std::string esc(const std::string& s) {
  return html_escape(s);
}

std::string num(double v, int digits = 3) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

std::string kib(double bytes) {
  return num(bytes / 1024.0, 1) + " KiB";
}

// A fixed palette: activations and bit-widths get stable colours.
const char* kPalette[] = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                          "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"};
std::string color_of(const std::string& key) {
  static const std::map<std::string, int> fixed = {
      {"relu", 0}, {"relu6", 1}, {"leakyrelu", 2}, {"hardswish", 3}, {"silu", 4},
      {"gelu", 5}, {"mish", 6},  {"identity", 9},  {"sigmoid", 7},   {"tanh", 8}};
  auto it = fixed.find(key);
  if (it != fixed.end()) return kPalette[it->second];
  size_t h = std::hash<std::string>{}(key);
  return kPalette[h % 10];
}
std::string bits_color(int bits) {
  switch (bits) {
    case 1:
      return "#fde0dd";
    case 2:
      return "#fcc5c0";
    case 3:
      return "#fa9fb5";
    case 4:
      return "#f768a1";
    case 8:
      return "#9ecae1";
    case 32:
      return "#dddddd";
    default:
      return "#c6dbef";
  }
}

struct Axis {
  double lo = 0, hi = 1;
  void fit(const std::vector<double>& v, double pad = 0.08) {
    if (v.empty()) return;
    lo = *std::min_element(v.begin(), v.end());
    hi = *std::max_element(v.begin(), v.end());
    double span = hi - lo;
    if (span <= 0) span = std::max(std::abs(hi), 1e-3);
    lo -= span * pad;
    hi += span * pad;
  }
  double map(double x, double a, double b) const { return a + (x - lo) / (hi - lo) * (b - a); }
};

// mAP50-95 against measured latency, one labelled point per model.
std::string scatter(const std::vector<ReportModel>& models) {
  const double W = 520, H = 320, L = 60, R = 20, T = 20, B = 45;
  std::vector<double> xs, ys;
  for (const auto& m : models) {
    xs.push_back(m.latency_ms);
    ys.push_back(m.map50_95);
  }
  Axis ax, ay;
  ax.fit(xs);
  ay.fit(ys);
  std::ostringstream s;
  s << "<svg width='" << W << "' height='" << H << "' class='plot'>";
  s << "<line x1='" << L << "' y1='" << H - B << "' x2='" << W - R << "' y2='" << H - B
    << "' stroke='#333'/><line x1='" << L << "' y1='" << T << "' x2='" << L << "' y2='" << H - B
    << "' stroke='#333'/>";
  for (int i = 0; i <= 4; ++i) {
    double vx = ax.lo + (ax.hi - ax.lo) * i / 4, vy = ay.lo + (ay.hi - ay.lo) * i / 4;
    double px = ax.map(vx, L, W - R), py = ay.map(vy, H - B, T);
    s << "<text x='" << px << "' y='" << H - B + 16 << "' text-anchor='middle'>" << num(vx, 2)
      << "</text>";
    s << "<text x='" << L - 6 << "' y='" << py + 4 << "' text-anchor='end'>" << num(vy, 3)
      << "</text>";
  }
  s << "<text x='" << (L + W - R) / 2 << "' y='" << H - 6
    << "' text-anchor='middle'>measured latency (ms)</text>";
  s << "<text x='14' y='" << (T + H - B) / 2 << "' transform='rotate(-90 14 " << (T + H - B) / 2
    << ")' text-anchor='middle'>mAP50-95</text>";
  for (size_t i = 0; i < models.size(); ++i) {
    double px = ax.map(xs[i], L, W - R), py = ay.map(ys[i], H - B, T);
    bool searched = i == 0 && models[i].name == "searched";
    s << "<circle cx='" << px << "' cy='" << py << "' r='" << (searched ? 7 : 5) << "' fill='"
      << (searched ? "#e15759" : "#4e79a7") << "'/><text x='" << px + 9 << "' y='" << py - 6 << "'>"
      << esc(models[i].name) << "</text>";
  }
  s << "</svg>";
  return s.str();
}

// Lines over epochs; series of (label, values).
std::string lines(const std::vector<std::pair<std::string, std::vector<double>>>& series,
                  const std::vector<double>& xs, double W, double H, bool unit_range,
                  const std::string& ylabel) {
  const double L = 50, R = 10, T = 10, B = 28;
  Axis ax, ay;
  ax.fit(xs, 0.0);
  if (ax.hi <= ax.lo) ax.hi = ax.lo + 1;
  if (unit_range) {
    ay.lo = 0;
    ay.hi = 1;
  } else {
    std::vector<double> all;
    for (const auto& [_, v] : series) all.insert(all.end(), v.begin(), v.end());
    ay.fit(all);
  }
  std::ostringstream s;
  s << "<svg width='" << W << "' height='" << H << "' class='plot'>";
  s << "<line x1='" << L << "' y1='" << H - B << "' x2='" << W - R << "' y2='" << H - B
    << "' stroke='#333'/><line x1='" << L << "' y1='" << T << "' x2='" << L << "' y2='" << H - B
    << "' stroke='#333'/>";
  s << "<text x='" << L - 4 << "' y='" << T + 8 << "' text-anchor='end'>" << num(ay.hi, 2)
    << "</text>";
  s << "<text x='" << L - 4 << "' y='" << H - B << "' text-anchor='end'>" << num(ay.lo, 2)
    << "</text>";
  s << "<text x='" << (L + W - R) / 2 << "' y='" << H - 4 << "' text-anchor='middle'>epoch</text>";
  if (!ylabel.empty())
    s << "<text x='" << L + 4 << "' y='" << T + 10 << "'>" << esc(ylabel) << "</text>";
  for (const auto& [label, v] : series) {
    s << "<polyline fill='none' stroke-width='2' stroke='" << color_of(label) << "' points='";
    for (size_t i = 0; i < v.size() && i < xs.size(); ++i) {
      s << ax.map(xs[i], L, W - R) << ',' << ay.map(v[i], H - B, T) << ' ';
    }
    s << "'><title>" << esc(label) << "</title></polyline>";
  }
  s << "</svg>";
  return s.str();
}

// probs.csv -> site -> kind -> candidate -> values per epoch (epochs in order).
using Probs =
    std::map<std::string, std::map<std::string, std::map<std::string, std::vector<double>>>>;
Probs parse_probs(const std::string& csv, std::vector<double>* epochs) {
  Probs p;
  std::istringstream in(csv);
  std::string line;
  std::getline(in, line);  // header
  std::map<int, bool> seen;
  while (std::getline(in, line)) {
    std::vector<std::string> f;
    std::string cur;
    for (char c : line) {
      if (c == ',') {
        f.push_back(cur);
        cur.clear();
      } else {
        cur += c;
      }
    }
    f.push_back(cur);
    if (f.size() != 5) continue;
    int e = std::atoi(f[0].c_str());
    if (!seen[e]) {
      seen[e] = true;
      epochs->push_back(e);
    }
    p[f[1]][f[2]][f[3]].push_back(std::atof(f[4].c_str()));
  }
  return p;
}

// Where the latencies come from: a device model's prediction says so in bold, with its model file,
// core, llvm-mca and coefficients; measured ones name their evaluator.
void report_provenance(std::ostream& h, const nlohmann::json& p) {
  if (p.value("source", "") != "predicted") {
    h << "<p>Latencies measured (" << esc(p.value("evaluator", std::string("?"))) << ").</p>";
    return;
  }
  h << "<p><b>Latencies " << esc(p.value("text", std::string("predicted"))) << "</b>: model file "
    << esc(p.value("model_file", std::string("?"))) << ", core "
    << esc(p.value("core", std::string("?"))) << " (" << esc(p.value("mca_model", std::string()))
    << "), " << esc(p.value("llvm_mca", std::string("?"))) << ", coefficients "
    << esc(p.value("coefficients", nlohmann::json::object()).dump()) << ".</p>";
}

// Style, title and the run in one paragraph.
void report_head(std::ostream& h, const ReportInput& in) {
  h << "<!DOCTYPE html><html><head><meta charset='utf-8'><title>" << esc(in.title)
    << "</title><style>"
    << "body{font-family:sans-serif;margin:24px;color:#222;max-width:1200px}"
    << "table{border-collapse:collapse;margin:8px 0 20px}td,th{border:1px solid #ccc;padding:3px "
       "8px;"
    << "font-size:13px;text-align:right}th{background:#f3f3f3}td.l,th.l{text-align:left}"
    << ".plot{background:#fafafa;border:1px solid #ddd;margin:4px}.plot text{font-size:11px}"
    << ".grid{display:flex;flex-wrap:wrap}.cell{margin:4px;font-size:11px}"
    << ".sw{display:inline-block;width:12px;height:12px;margin:0 4px 0 10px;vertical-align:middle}"
    << "pre{background:#f6f6f6;padding:8px;font-size:12px;overflow:auto}</style></head><body>";
  h << "<h1>" << esc(in.title) << "</h1>";
  const auto& s = in.summary;
  h << "<p>Device <b>" << esc(s.value("device_id", std::string("?"))) << "</b>, input "
    << s.value("imgsz", 0) << " px, strategy " << esc(s.value("strategy", std::string("?")))
    << ", baselines at bits policy <b>" << esc(s.value("baseline_bits", std::string("?")))
    << "</b>. Latency-table error on whole models not used for its calibration: MAPE "
    << num(s.value("lut_mape", -1.0), 2) << "% (max " << num(s.value("lut_max_err", -1.0), 2)
    << "%, n=" << s.value("lut_n", 0) << ").</p>";
  report_provenance(h, s.value("latency_provenance", nlohmann::json::object()));
}

// The compared models, and the searched one against the first baseline.
void report_models(std::ostream& h, const ReportInput& in) {
  const auto& s = in.summary;
  h << "<h2>Models</h2><table><tr><th class='l'>model</th><th>mAP50-95</th><th>mAP50</th>"
       "<th>latency (ms)</th><th>peak memory</th><th>weights</th></tr>";
  for (const auto& m : in.models) {
    h << "<tr><td class='l'>" << esc(m.name) << "</td><td>" << num(m.map50_95, 4) << "</td><td>"
      << num(m.map50, 4) << "</td><td>" << num(m.latency_ms, 3) << "</td><td>"
      << kib(double(m.peak_bytes)) << "</td><td>" << kib(double(m.weight_bytes)) << "</td></tr>";
  }
  h << "</table>";
  for (const auto& [key, v] : s.items()) {
    if (key.rfind("vs_", 0) == 0) {
      h << "<p>Searched vs <b>" << esc(key.substr(3)) << "</b>: mAP50-95 "
        << num(v.value("map50_95_delta", 0.0) * 100, 2) << " points, latency "
        << num(v.value("latency_reduction_pct", 0.0), 1) << "% lower, peak memory "
        << num(v.value("peak_memory_reduction_pct", 0.0), 1) << "% lower.</p>";
    }
  }
  if (!in.models.empty()) h << "<h2>mAP vs latency</h2>" << scatter(in.models);
}

// The searched model's activation and bits at every site.
void report_site_choices(std::ostream& h, const ReportInput& in) {
  const ReportModel* searched = nullptr;
  for (const auto& m : in.models)
    if (m.name == "searched") searched = &m;
  if (searched) {
    h << "<h2>Chosen activation and bits per site</h2><p>";
    std::map<std::string, bool> acts_seen;
    for (const auto& [_, c] : searched->choices)
      if (c.act) acts_seen[supernet::act_name(*c.act)] = true;
    for (const auto& [a, _] : acts_seen)
      h << "<span class='sw' style='background:" << color_of(a) << "'></span>" << esc(a);
    h << "</p><table><tr><th class='l'>site</th><th class='l'>candidates</th><th>MACs</th>"
         "<th class='l'>activation</th><th>w_bits</th><th>a_bits</th><th>table latency "
         "(ms)</th><th>weights</th><th>activations</th></tr>";
    for (const auto& site : in.sites) {
      auto it = searched->choices.find(site.name);
      if (it == searched->choices.end()) continue;
      const auto& c = it->second;
      std::string cand;
      for (const auto& a : site.acts) cand += a + " ";
      cand += "w{";
      for (int b : site.w_bits) cand += std::to_string(b) + " ";
      cand += "} a{";
      for (int b : site.a_bits) cand += std::to_string(b) + " ";
      cand += "}";
      std::string act = c.act ? supernet::act_name(*c.act) : "-";
      h << "<tr><td class='l'>" << esc(site.name) << "</td><td class='l'>" << esc(cand)
        << "</td><td>" << site.macs
        << "</td><td class='l' style='background:" << (c.act ? color_of(act) : "#fff")
        << ";color:#fff'>" << esc(act) << "</td><td style='background:" << bits_color(c.w_bits)
        << "'>" << c.w_bits << "</td><td style='background:" << bits_color(c.a_bits) << "'>"
        << c.a_bits << "</td><td>"
        << (site.searched_latency_ms >= 0 ? num(site.searched_latency_ms, 4) : "-") << "</td><td>"
        << (site.weight_bytes >= 0 ? kib(double(site.weight_bytes)) : "-") << "</td><td>"
        << (site.arena_bytes >= 0 ? kib(double(site.arena_bytes)) : "-") << "</td></tr>";
    }
    h << "</table>";
  }
}

// The search epochs' expected and derived costs and loss.
void report_history(std::ostream& h, const ReportInput& in) {
  if (!in.history.empty()) {
    std::vector<double> xs, lat, mem, dlat, loss;
    for (const auto& e : in.history) {
      xs.push_back(e.epoch);
      lat.push_back(e.expected_latency_ms);
      dlat.push_back(e.derived_latency_ms);
      mem.push_back(e.expected_memory_bytes / 1024.0);
      loss.push_back(e.weight_loss);
    }
    h << "<h2>Search</h2><div class='grid'>"
      << lines({{"E[latency] ms", lat}, {"argmax latency ms", dlat}}, xs, 380, 220, false,
               "latency (ms)")
      << lines({{"E[memory] KiB", mem}}, xs, 380, 220, false, "memory (KiB)")
      << lines({{"weight loss", loss}}, xs, 380, 220, false, "training loss") << "</div>";
  }
}

// Each site's candidate probabilities per epoch.
void report_probabilities(std::ostream& h, const ReportInput& in) {
  if (!in.probs_csv.empty()) {
    std::vector<double> epochs;
    Probs p = parse_probs(in.probs_csv, &epochs);
    if (!p.empty()) {
      h << "<h2>Probabilities per site</h2><p>Each chart: one site, its candidates' probabilities "
           "(softmax of the logits) after each epoch (0 = before training).</p><div class='grid'>";
      for (const auto& [site, kinds] : p) {
        for (const auto& [kind, cands] : kinds) {
          std::vector<std::pair<std::string, std::vector<double>>> series;
          for (const auto& [cand, v] : cands)
            series.push_back({kind == "act" ? cand : kind + "=" + cand, v});
          h << "<div class='cell'>" << esc(site) << " " << esc(kind) << "<br>"
            << lines(series, epochs, 230, 130, true, "") << "<br>";
          for (const auto& [label, _] : series)
            h << "<span class='sw' style='background:" << color_of(label) << "'></span>"
              << esc(label);
          h << "</div>";
        }
      }
      h << "</div>";
    }
  }
}

// Measured latency per layer, memory, the config and summary.json.
void report_layers_memory_config(std::ostream& h, const ReportInput& in) {
  for (const auto& m : in.models) {
    if (m.nodes.empty()) continue;
    double total = 0;
    for (const auto& n : m.nodes) total += n.median_ms;
    h << "<details" << (m.name == "searched" ? " open" : "")
      << "><summary><b>Latency per layer: " << esc(m.name) << "</b> (sum of medians "
      << num(total, 3) << " ms)</summary><table>"
      << "<tr><th class='l'>node</th><th class='l'>op</th><th class='l'>kernel</th><th>median "
         "(ms)</th>"
         "<th class='l'>share</th></tr>";
    for (const auto& n : m.nodes) {
      double share = total > 0 ? n.median_ms / total : 0;
      h << "<tr><td class='l'>" << esc(n.name) << "</td><td class='l'>" << esc(n.op)
        << "</td><td class='l'>" << esc(n.kernel) << "</td><td>" << num(n.median_ms, 4)
        << "</td><td class='l'><span "
           "style='display:inline-block;background:#4e79a7;height:10px;width:"
        << static_cast<int>(share * 300) << "px'></span> " << num(share * 100, 1) << "%</td></tr>";
    }
    h << "</table></details>";
  }
  h << "<h2>Memory</h2><table><tr><th class='l'>model</th><th>peak (arena + weights + scratch)</th>"
       "<th>weights as held by the kernels</th></tr>";
  for (const auto& m : in.models) {
    h << "<tr><td class='l'>" << esc(m.name) << "</td><td>" << kib(double(m.peak_bytes))
      << "</td><td>" << kib(double(m.weight_bytes)) << "</td></tr>";
  }
  h << "</table>";
  h << "<h2>Config</h2><pre>" << esc(in.config_text) << "</pre>";
  h << "<h2>summary.json</h2><pre>" << esc(in.summary.dump(2)) << "</pre></body></html>\n";
}

// sensitivity.csv as a table, its rows as written (site by site, in model order).
void report_sensitivity(std::ostream& h, const ReportInput& in) {
  if (in.sensitivity_csv.empty()) return;
  std::istringstream csv(in.sensitivity_csv);
  std::string line;
  std::getline(csv, line);  // header
  h << "<details><summary><b>Per-layer sensitivity</b> (held-out score change when one site "
       "alone changes in the trained supernet; predicted latency and memory change)</summary>"
       "<table><tr><th class='l'>site</th><th class='l'>from</th><th class='l'>to</th>"
       "<th>score change</th><th>mAP50-95 change</th><th>latency change (ms)</th>"
       "<th>memory change (bytes)</th></tr>";
  while (std::getline(csv, line)) {
    std::istringstream row(line);
    std::string cell;
    h << "<tr>";
    for (int i = 0; std::getline(row, cell, ','); ++i)
      h << (i < 3 ? "<td class='l'>" : "<td>") << esc(cell) << "</td>";
    h << "</tr>";
  }
  h << "</table></details>";
}

}  // namespace

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string render_report(const ReportInput& in) {
  std::ostringstream h;
  report_head(h, in);
  report_models(h, in);
  report_site_choices(h, in);
  report_history(h, in);
  report_probabilities(h, in);
  report_sensitivity(h, in);
  report_layers_memory_config(h, in);
  return h.str();
}

void write_report(const std::string& path, const ReportInput& in) {
  write_file_atomic(path, render_report(in));
}

}  // namespace mixnas::search
