#pragma once
// YAML configs: one schema per config kind (in code, documented in docs/configs.md), `base:`
// includes, and `key=value` overrides with dotted paths for nested keys (train.epochs=3).
//
// Every value remembers where it came from, so errors name file:line:column and the key:
//   configs/train/x.yaml:12:11: 'train.epochs' expects an integer, got 'ten'
//   configs/train/x.yaml:3:1: unknown key 'train.epoch' in a train config; did you mean
//   'train.epochs'?
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <map>
#include <ostream>
#include <string>
#include <vector>

namespace mixnas::config {

struct Location {
  std::string file;  // "" for defaults, "command line" for overrides
  int line = 0;      // 1-based; 0 when unknown
  int column = 0;    // 1-based; 0 when unknown
  std::string str() const;
};

enum class Type {
  kBool,
  kInt,
  kFloat,
  kString,
  kIntList,
  kFloatList,
  kStringList,
  kNode,  // any YAML: the consumer checks it (search spaces, rule lists)
};
const char* type_name(Type type);

struct Field {
  std::string key;  // dotted path: "train.epochs"
  Type type;
  std::string default_yaml;  // default as YAML text ("" = no default: required)
  std::string help;
  std::vector<std::string> choices;  // for kString: allowed values (empty = any)
};

class Schema {
 public:
  explicit Schema(std::string kind, std::string help = "");
  Schema& add(const std::string& key, Type type, const std::string& default_yaml,
              const std::string& help, std::vector<std::string> choices = {});
  // Adds every field of `other` (for shared sections).
  Schema& include(const Schema& other);

  const std::string& kind() const { return kind_; }
  const std::string& help() const { return help_; }
  const Field* find(const std::string& key) const;
  bool is_section(const std::string& key) const;
  std::vector<std::string> keys() const;
  const std::vector<Field>& fields() const { return fields_; }
  // A markdown table of the fields (docs/configs.md is checked against it by a test).
  void write_markdown(std::ostream& out) const;

 private:
  std::string kind_;
  std::string help_;
  std::vector<Field> fields_;
};

class Config {
 public:
  // Loads `path` (following `base:` includes), applies `overrides` ("a.b=value"), and validates
  // everything against `schema`. Throws mixnas::Error naming file:line:column and the key.
  static Config load(const std::string& path, const Schema& schema,
                     const std::vector<std::string>& overrides = {});
  // The same from YAML text (tests, built-in defaults); `name` stands for the file in messages.
  static Config load_string(const std::string& yaml, const std::string& name, const Schema& schema,
                            const std::vector<std::string>& overrides = {});
  // Only the schema's defaults, plus overrides.
  static Config defaults(const Schema& schema, const std::vector<std::string>& overrides = {});

  bool get_bool(const std::string& key) const;
  int64_t get_int(const std::string& key) const;
  double get_float(const std::string& key) const;
  std::string get_string(const std::string& key) const;
  std::vector<int64_t> get_int_list(const std::string& key) const;
  std::vector<double> get_float_list(const std::string& key) const;
  std::vector<std::string> get_string_list(const std::string& key) const;
  YAML::Node get_node(const std::string& key) const;
  // The value of any key, whatever its type.
  YAML::Node raw(const std::string& key) const;
  // True when the key was given by a file or an override (not a default).
  bool is_set(const std::string& key) const;
  Location where(const std::string& key) const;

  // The config file's path ("" for defaults) and folder (to resolve relative paths in values).
  const std::string& path() const { return path_; }
  std::string resolve_path(const std::string& key) const;

  // Every key with its resolved value, as YAML (written as args.yaml at the start of a run).
  std::string to_yaml() const;
  const Schema& schema() const { return *schema_; }

 private:
  struct Entry {
    YAML::Node value;
    Location loc;
  };
  const Entry& entry(const std::string& key, Type expected) const;
  using Given = std::map<std::string, std::pair<YAML::Node, Location>>;
  static Config assemble(const Schema& schema, const std::string& name, const Given& given);

  const Schema* schema_ = nullptr;
  std::string path_;
  std::map<std::string, Entry> values_;  // every schema key, after defaults
  std::map<std::string, bool> set_;
};

// Parses "key=value" words into (key, YAML value text); throws on a word without '='.
std::pair<std::string, std::string> split_override(const std::string& word);

}  // namespace mixnas::config
