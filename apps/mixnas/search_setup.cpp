#include "apps/mixnas/search_setup.h"

#include <memory>

#include "apps/mixnas/commands.h"
#include "core/error.h"
#include "datasets/dataset.h"
#include "evaluators/evaluator_factory.h"

namespace mixnas::cli {

std::unique_ptr<eval::Evaluator> evaluator_from_config(const config::Config& cfg) {
  eval::MeasureOptions mo;
  mo.runs = static_cast<int>(cfg.get_int("cost.runs"));
  mo.warmup = static_cast<int>(cfg.get_int("cost.warmup"));
  // The deployment's thread count, which need not be the training's.
  int threads = static_cast<int>(cfg.get_int("cost.threads"));
  if (threads < 0)
    throw Error(cfg.where("cost.threads").str() + ": 'cost.threads' must not be negative");
  if (threads == 0) threads = static_cast<int>(cfg.get_int("threads"));
  mo.threads = threads > 0 ? threads : 1;
  try {
    mo.validate();
  } catch (const Error& e) {
    throw Error(cfg.where("cost.runs").str() + ": " + e.what());
  }
  const std::string device = cfg.get_string("device");
  return eval::make_evaluator(device == "local" ? device : cfg.resolve_path("device"), mo);
}

supernet::YoloModel supernet_from_config(const config::Config& cfg) {
  int nc = static_cast<int>(cfg.get_int("nc"));
  if (nc <= 0) nc = data::load_dataset_config(cfg.resolve_path("data")).num_classes();
  YAML::Node space = cfg.get_node("search_space");
  if (!space || space.IsNull()) {
    throw Error(cfg.where("search_space").str() +
                ": 'search_space' is required (candidates per site; docs/search_space.md)");
  }
  supernet::BuildOptions bo;
  bo.nc = nc;
  bo.search_space = supernet::parse_search_space(space, cfg.where("search_space").file);
  bo.recompute = cfg.get_bool("search.recompute");
  return supernet::build_model(cfg.resolve_path("model"), bo);
}

}  // namespace mixnas::cli
