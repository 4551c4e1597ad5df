#pragma once
// `mixnas search`: the whole job, as a sequence of named phases (run_search.cpp) around one search
// strategy (search/strategy.h): prepare the latency table, prune dominated bit-widths, set the
// targets, search, finetune the found architectures, train the baselines, measure them again,
// check the table's predictions, write summary.json and the report (docs/search.md).
//
// Run folder runs/search/<name>/:
//   args.yaml          the resolved config
//   lut.json           the latency table used (device id, runtime version, calibration)
//   results.csv        one row per search epoch (losses, expected latency and memory, tau)
//   probs.csv          site probabilities per epoch
//   weights/supernet.pt  search checkpoint (every epoch, atomically); weights/best.pt the winner
//   arch.yaml          the derived architecture
//   finetune/          the winner's finetune run (results.csv, weights/)
//   baselines/<act>/   each baseline's run and model.mxr
//   model.mxr, model.onnx, summary.json, report.html
#include <string>

#include <nlohmann/json.hpp>

#include "evaluators/evaluator.h"
#include "search/dnas.h"

namespace mixnas::config {
class Config;
}

namespace mixnas::search {

// Returns summary.json's content.
nlohmann::json run_search(const config::Config& cfg, eval::Evaluator& evaluator,
                          const std::string& run_dir, bool resume, const SearchHooks& hooks = {});

}  // namespace mixnas::search
