#pragma once
// report.html of a search: one self-contained file (inline SVG and CSS, no script, no network)
// that reads offline: the figures of the searched model and the baselines, a mAP-vs-latency plot,
// the chosen activation and bits per site (coloured by choice), probability curves per site, the
// search's expected cost per epoch, and latency and memory per layer.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "deploy/runtime/session.h"
#include "supernet/search_space.h"

namespace mixnas::search {

struct SearchEpoch;

struct ReportModel {
  std::string name;
  double map50_95 = 0, map50 = 0;
  double latency_ms = 0;
  int64_t peak_bytes = 0, weight_bytes = 0;
  supernet::ArchChoices choices;
  std::vector<rt::NodeProfile> nodes;  // measured per op
};

struct ReportSite {
  std::string name;
  std::vector<std::string> acts;
  std::vector<int> w_bits, a_bits;
  int64_t macs = 0;
  double searched_latency_ms = -1;  // the searched choice's table entry
  int64_t weight_bytes = -1;        // its packed weights
  int64_t arena_bytes = -1;         // its one-layer graph's activation arena (input + output)
};

struct ReportInput {
  std::string title;
  std::string config_text;
  nlohmann::json summary;
  std::vector<SearchEpoch> history;
  std::string probs_csv;            // epoch,site,kind,candidate,probability
  std::vector<ReportModel> models;  // the searched model first, then the baselines
  std::vector<ReportSite> sites;
  std::string sensitivity_csv;  // search.sensitivity's sensitivity.csv; empty: none
};

std::string render_report(const ReportInput& in);
// Text escaped for HTML (also the study's report, search/study.h).
std::string html_escape(const std::string& s);
// Writes atomically.
void write_report(const std::string& path, const ReportInput& in);

}  // namespace mixnas::search
