#pragma once
// `mixnas study CONFIG`: the strategies of `study.strategies` run on one search config (the same
// data, seed, search space, budget and epochs), each as a whole `mixnas search` into
// <study_dir>/<strategy>/; study.json and study.html then compare their measured winners
// (docs/search.md#the-study).
//
//   study.json  per strategy: its winner (mAP50-95, measured latency, peak memory, predicted
//               latency against its budget), every measured model, their measured Pareto front
//               and its hypervolume against the stated reference point, the search's seconds
//   study.html  the same as tables, and mAP50-95 against measured latency for every strategy
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "evaluators/evaluator.h"

namespace mixnas::config {
class Config;
}

namespace mixnas::search {

// The study's config with further overrides ("search.strategy=greedy", ...).
using ConfigLoader = std::function<config::Config(const std::vector<std::string>& overrides)>;

// Runs the study into study_dir; `resume` keeps every strategy whose summary.json exists and
// resumes the others. Returns study.json's content.
nlohmann::json run_study(const ConfigLoader& load, eval::Evaluator& evaluator,
                         const std::string& study_dir, bool resume);

// study.json's content from each strategy's summary.json (by strategy name, in run order).
nlohmann::json study_json(const std::vector<std::pair<std::string, nlohmann::json>>& summaries);

// study.html of study.json's content.
std::string render_study_html(const nlohmann::json& study);

}  // namespace mixnas::search
