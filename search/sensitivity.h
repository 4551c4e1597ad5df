#pragma once
// Per-layer sensitivity (docs/search.md#sensitivity): in a trained supernet, the held-out score
// change when one site alone leaves the reference model for another activation (same bits) or a
// lower w_bits or a_bits (same activation), beside that change's predicted latency and memory.
// Written as sensitivity.csv and a table of report.html.
#include <string>
#include <vector>

#include "search/cost.h"
#include "search/weight_sharing.h"

namespace mixnas::search {

struct SensitivityRow {
  std::string site;
  std::string from, to;    // "silu w8a8"
  double score_delta = 0;  // SubnetScore::value() of the change minus the reference's
  double map50_95_delta = 0;
  double latency_delta_ms = 0;  // predicted
  double memory_delta_bytes = 0;
};

// Every one-site change of `reference`, scored with `evaluator`.
std::vector<SensitivityRow> sensitivity(SubnetEvaluator& evaluator, const CostModel& cost,
                                        const supernet::ArchChoices& reference);

// site,from,to,score_delta,map50_95_delta,latency_delta_ms,memory_delta_bytes (one header line).
std::string sensitivity_csv(const std::vector<SensitivityRow>& rows);

}  // namespace mixnas::search
