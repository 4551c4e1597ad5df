#include "supernet/search_space.h"

#include <fnmatch.h>

#include "core/error.h"
#include "supernet/quant.h"

namespace mixnas::supernet {

std::string yaml_where(const std::string& file, const YAML::Node& node) {
  const YAML::Mark mark = node.Mark();
  if (mark.line < 0) return file;
  return file + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
}

bool SearchRule::matches(const std::string& site, int layer, const std::string& module_type) const {
  if (layers && (layer < layers->first || layer > layers->second)) return false;
  if (module && *module != module_type) return false;
  if (name && fnmatch(name->c_str(), site.c_str(), 0) != 0) return false;
  return true;
}

namespace {

std::vector<Act> parse_acts(const YAML::Node& node, const std::string& file) {
  const std::string where = yaml_where(file, node);
  if (!node.IsSequence() || node.size() == 0)
    throw Error(where + ": activations must be a non-empty list, e.g. [relu, silu]");
  std::vector<Act> out;
  for (const auto& item : node) {
    if (!item.IsScalar()) throw Error(yaml_where(file, item) + ": an activation name is expected");
    out.push_back(parse_act(item.as<std::string>(), yaml_where(file, item)));
  }
  return out;
}

std::vector<int> parse_bits(const YAML::Node& node, const std::string& file, const char* key) {
  const std::string where = yaml_where(file, node);
  if (!node.IsSequence() || node.size() == 0)
    throw Error(where + ": " + key + " must be a non-empty list of bit-widths, e.g. [2, 4, 8]");
  std::vector<int> out;
  for (const auto& item : node) {
    int bits = 0;
    try {
      bits = item.as<int>();
    } catch (const YAML::Exception&) {
      throw Error(yaml_where(file, item) + ": " + key + " entry '" + item.Scalar() +
                  "' is not an integer; use 1..8, or 32 for fp32");
    }
    check_bits(bits, yaml_where(file, item) + ": " + key);
    for (int b : out)
      if (b == bits)
        throw Error(yaml_where(file, item) + ": " + key + " lists " + std::to_string(bits) +
                    " twice");
    out.push_back(bits);
  }
  return out;
}

void check_keys(const YAML::Node& node, const std::string& file,
                const std::vector<std::string>& allowed, const std::string& what) {
  for (const auto& kv : node) {
    const std::string key = kv.first.as<std::string>();
    bool ok = false;
    for (const auto& a : allowed) ok = ok || a == key;
    if (!ok) {
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
      throw Error(yaml_where(file, kv.first) + ": unknown key '" + key + "' in " + what +
                  "; valid keys: " + list);
    }
  }
}

}  // namespace

SearchSpace parse_search_space(const YAML::Node& node, const std::string& file) {
  if (!node || !node.IsMap())
    throw Error(yaml_where(file, node) +
                ": search_space must be a map with activations, w_bits, a_bits and rules");
  check_keys(node, file, {"activations", "w_bits", "a_bits", "rules"}, "search_space");
  SearchSpace space;
  space.acts =
      node["activations"] ? parse_acts(node["activations"], file) : std::vector<Act>{Act::kSilu};
  space.w_bits = node["w_bits"] ? parse_bits(node["w_bits"], file, "w_bits") : std::vector<int>{32};
  space.a_bits = node["a_bits"] ? parse_bits(node["a_bits"], file, "a_bits") : std::vector<int>{32};
  if (const YAML::Node rules = node["rules"]) {
    if (!rules.IsSequence())
      throw Error(yaml_where(file, rules) + ": rules must be a list of maps");
    for (const auto& r : rules) {
      const std::string where = yaml_where(file, r);
      if (!r.IsMap())
        throw Error(where + ": a rule must be a map, e.g. {module: Detect, w_bits: [8]}");
      check_keys(r, file, {"layers", "module", "name", "activations", "w_bits", "a_bits"},
                 "a rule");
      SearchRule rule;
      rule.where = where;
      if (const YAML::Node l = r["layers"]) {
        bool ok = l.IsSequence() && l.size() == 2;
        int a = 0, b = 0;
        if (ok) {
          try {
            a = l[0].as<int>();
            b = l[1].as<int>();
          } catch (const YAML::Exception&) {
            ok = false;
          }
        }
        if (!ok || a < 0 || b < a)
          throw Error(yaml_where(file, l) +
                      ": layers must be [first, last] row indices with 0 <= first <= last");
        rule.layers = std::make_pair(a, b);
      }
      if (const YAML::Node m = r["module"]) rule.module = m.as<std::string>();
      if (const YAML::Node n = r["name"]) rule.name = n.as<std::string>();
      if (!rule.layers && !rule.module && !rule.name)
        throw Error(where + ": a rule needs a selector: layers, module or name");
      if (r["activations"]) rule.acts = parse_acts(r["activations"], file);
      if (r["w_bits"]) rule.w_bits = parse_bits(r["w_bits"], file, "w_bits");
      if (r["a_bits"]) rule.a_bits = parse_bits(r["a_bits"], file, "a_bits");
      if (!rule.acts && !rule.w_bits && !rule.a_bits)
        throw Error(where + ": a rule must set activations, w_bits or a_bits");
      space.rules.push_back(rule);
    }
  }
  return space;
}

}  // namespace mixnas::supernet
