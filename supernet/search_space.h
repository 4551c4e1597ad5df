#pragma once
// Search space of the supernet (docs/search_space.md) and fixed per-site choices (arch.yaml).
#include <yaml-cpp/yaml.h>

#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "supernet/activation.h"

namespace mixnas::supernet {

// One rule of the search space: its selectors (all given ones must match) and the candidates it
// sets (only the given ones).
struct SearchRule {
  std::optional<std::pair<int, int>> layers;  // inclusive range of model-YAML row indices
  std::optional<std::string> module;          // module type of the row (Conv, C2f, Detect, ...)
  std::optional<std::string> name;            // site name; '*' and '?' wildcards allowed
  std::optional<std::vector<Act>> acts;
  std::optional<std::vector<int>> w_bits;
  std::optional<std::vector<int>> a_bits;
  std::string where;  // file:line:col of the rule, for messages
  bool matches(const std::string& site, int layer, const std::string& module_type) const;
};

struct SearchSpace {
  std::vector<Act> acts;
  std::vector<int> w_bits;
  std::vector<int> a_bits;
  std::vector<SearchRule> rules;  // applied in order; later rules win
};

// Parses the value of a `search_space:` key. Throws mixnas::Error with file:line:col on unknown
// keys, unknown activations, bad bit-widths, empty lists or bad layer ranges.
SearchSpace parse_search_space(const YAML::Node& node, const std::string& file);

// The fixed choice of one site.
struct SiteChoice {
  std::optional<Act> act;  // none for a conv without activation
  int w_bits = 32;
  int a_bits = 32;
  bool operator==(const SiteChoice& o) const {
    return act == o.act && w_bits == o.w_bits && a_bits == o.a_bits;
  }
};
using ArchChoices = std::map<std::string, SiteChoice>;
inline std::ostream& operator<<(std::ostream& out, const SiteChoice& c) {
  if (c.act) out << act_name(*c.act) << " ";
  return out << "w" << c.w_bits << "a" << c.a_bits;
}

// "file:line:col" of a YAML node (1-based), or just the file when the node has no mark.
std::string yaml_where(const std::string& file, const YAML::Node& node);

}  // namespace mixnas::supernet
