#include "search/sensitivity.h"

#include <sstream>

#include "core/log.h"
#include "core/text.h"

namespace mixnas::search {
namespace sn = mixnas::supernet;

namespace {

std::string choice_text(const sn::SiteChoice& c) {
  std::ostringstream out;
  out << c;
  return out.str();
}

// The candidates of `site` one step from `ref`: another activation at its bits, or lower w_bits
// or a_bits with its activation.
std::vector<sn::SiteChoice> one_step_changes(const CostModel::Site& site,
                                             const sn::SiteChoice& ref) {
  std::vector<sn::SiteChoice> out;
  for (sn::Act a : site.acts) {
    if (ref.act && a == *ref.act) continue;
    sn::SiteChoice c = ref;
    c.act = a;
    out.push_back(c);
  }
  for (int w : site.w_bits) {
    if (w >= ref.w_bits) continue;
    sn::SiteChoice c = ref;
    c.w_bits = w;
    out.push_back(c);
  }
  for (int b : site.a_bits) {
    if (b >= ref.a_bits) continue;
    sn::SiteChoice c = ref;
    c.a_bits = b;
    out.push_back(c);
  }
  return out;
}

}  // namespace

std::vector<SensitivityRow> sensitivity(SubnetEvaluator& evaluator, const CostModel& cost,
                                        const sn::ArchChoices& reference) {
  const SubnetScore ref = evaluator.evaluate(reference);
  const double ref_ms = cost.latency_ms(reference), ref_mem = cost.memory_bytes(reference);
  std::vector<SensitivityRow> rows;
  for (const CostModel::Site& site : cost.sites()) {
    const sn::SiteChoice& from = reference.at(site.name);
    for (const sn::SiteChoice& to : one_step_changes(site, from)) {
      sn::ArchChoices changed = reference;
      changed[site.name] = to;
      const SubnetScore s = evaluator.evaluate(changed);
      rows.push_back({site.name, choice_text(from), choice_text(to), s.value() - ref.value(),
                      s.map50_95 - ref.map50_95, cost.latency_ms(changed) - ref_ms,
                      cost.memory_bytes(changed) - ref_mem});
    }
  }
  log::info("sensitivity: ", rows.size(), " one-site changes scored");
  return rows;
}

std::string sensitivity_csv(const std::vector<SensitivityRow>& rows) {
  std::string out = "site,from,to,score_delta,map50_95_delta,latency_delta_ms,memory_delta_bytes\n";
  for (const auto& r : rows) {
    out += r.site + "," + r.from + "," + r.to + "," + text::fmt("%.6f", r.score_delta) + "," +
           text::fmt("%.6f", r.map50_95_delta) + "," + text::fmt("%.6f", r.latency_delta_ms) + "," +
           text::fmt("%.0f", r.memory_delta_bytes) + "\n";
  }
  return out;
}

}  // namespace mixnas::search
