#include "core/config.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>

#include "core/error.h"
#include "core/text.h"

namespace mixnas::config {
namespace fs = std::filesystem;

std::string Location::str() const {
  if (file.empty()) return "default";
  if (line <= 0) return file;
  std::ostringstream out;
  out << file << ':' << line;
  if (column > 0) out << ':' << column;
  return out.str();
}

const char* type_name(Type type) {
  switch (type) {
    case Type::kBool:
      return "a boolean (true/false)";
    case Type::kInt:
      return "an integer";
    case Type::kFloat:
      return "a number";
    case Type::kString:
      return "a string";
    case Type::kIntList:
      return "a list of integers";
    case Type::kFloatList:
      return "a list of numbers";
    case Type::kStringList:
      return "a list of strings";
    case Type::kNode:
      return "a YAML value";
  }
  return "?";
}

// ---------------------------------------------------------------- Schema

Schema::Schema(std::string kind, std::string help)
    : kind_(std::move(kind)), help_(std::move(help)) {}

Schema& Schema::add(const std::string& key, Type type, const std::string& default_yaml,
                    const std::string& help, std::vector<std::string> choices) {
  if (find(key)) throw std::logic_error("schema " + kind_ + ": duplicate key " + key);
  fields_.push_back(Field{key, type, default_yaml, help, std::move(choices)});
  return *this;
}

Schema& Schema::include(const Schema& other) {
  for (const auto& f : other.fields_) add(f.key, f.type, f.default_yaml, f.help, f.choices);
  return *this;
}

const Field* Schema::find(const std::string& key) const {
  for (const auto& f : fields_) {
    if (f.key == key) return &f;
  }
  return nullptr;
}

bool Schema::is_section(const std::string& key) const {
  std::string prefix = key + ".";
  return std::any_of(fields_.begin(), fields_.end(),
                     [&](const Field& f) { return text::starts_with(f.key, prefix); });
}

std::vector<std::string> Schema::keys() const {
  std::vector<std::string> out;
  for (const auto& f : fields_) out.push_back(f.key);
  return out;
}

void Schema::write_markdown(std::ostream& out) const {
  out << "| key | type | default | meaning |\n| --- | --- | --- | --- |\n";
  for (const auto& f : fields_) {
    std::string help = f.help;
    if (!f.choices.empty()) help += " One of: " + text::join(f.choices, ", ") + ".";
    out << "| `" << f.key << "` | " << type_name(f.type) << " | "
        << (f.default_yaml.empty() ? "(required)" : "`" + f.default_yaml + "`") << " | " << help
        << " |\n";
  }
}

// ---------------------------------------------------------------- loading

namespace {

Location location_of(const std::string& file, const YAML::Node& node) {
  YAML::Mark m = node.Mark();
  Location loc;
  loc.file = file;
  if (m.line >= 0) {
    loc.line = m.line + 1;
    loc.column = m.column + 1;
  }
  return loc;
}

// Every YAML line break (CR LF, CR, LF) as LF: yaml-cpp keeps a lone CR (e.g. at the end of a
// file) inside a plain scalar, where args.yaml could not give it back.
std::string yaml_line_breaks(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\r') {
      out += text[i];
    } else if (i + 1 >= text.size() || text[i + 1] != '\n') {
      out += '\n';
    }
  }
  return out;
}

std::string scalar_text(const YAML::Node& node) {
  if (node.IsScalar()) return node.Scalar();
  YAML::Emitter out;
  out << YAML::Flow << node;
  return out.c_str();
}

// Checks `value` against `field`; throws an Error naming loc and key.
void check_type(const Field& field, const YAML::Node& value, const Location& loc) {
  auto fail = [&](const std::string& got) {
    throw Error(loc.str() + ": '" + field.key + "' expects " + type_name(field.type) + ", got " +
                got);
  };
  auto scalar_ok = [&](const YAML::Node& n, Type t) {
    if (!n.IsScalar()) return false;
    try {
      switch (t) {
        case Type::kBool:
          n.as<bool>();
          break;
        case Type::kInt:
          n.as<int64_t>();
          break;
        case Type::kFloat:
          n.as<double>();
          break;
        default:
          break;
      }
      return true;
    } catch (const YAML::Exception&) {
      return false;
    }
  };
  switch (field.type) {
    case Type::kBool:
    case Type::kInt:
    case Type::kFloat:
      if (!scalar_ok(value, field.type)) fail("'" + scalar_text(value) + "'");
      break;
    case Type::kString:
      if (!value.IsScalar()) fail(value.IsSequence() ? "a list" : "a map");
      if (!field.choices.empty() && std::find(field.choices.begin(), field.choices.end(),
                                              value.Scalar()) == field.choices.end()) {
        std::string hint = text::closest(value.Scalar(), field.choices);
        throw Error(loc.str() + ": '" + field.key + "' must be one of " +
                    text::join(field.choices, ", ") + ", got '" + value.Scalar() + "'" +
                    (hint.empty() ? "" : "; did you mean '" + hint + "'?"));
      }
      break;
    case Type::kIntList:
    case Type::kFloatList:
    case Type::kStringList: {
      if (!value.IsSequence()) fail("'" + scalar_text(value) + "'");
      Type elem = field.type == Type::kIntList     ? Type::kInt
                  : field.type == Type::kFloatList ? Type::kFloat
                                                   : Type::kString;
      for (const auto& item : value) {
        if (!scalar_ok(item, elem)) {
          throw Error(location_of(loc.file, item).str() + ": '" + field.key + "' expects " +
                      type_name(field.type) + ", got the element '" + scalar_text(item) + "'");
        }
      }
      break;
    }
    case Type::kNode:
      break;
  }
}

struct Loader {
  const Schema& schema;
  std::map<std::string, std::pair<YAML::Node, Location>> values;

  [[noreturn]] void unknown_key(const std::string& key, const Location& loc) {
    std::string hint = text::closest(key, schema.keys());
    if (hint.empty()) {
      // Compare the last component too, for a key put in the wrong section.
      std::string last = key.substr(key.rfind('.') == std::string::npos ? 0 : key.rfind('.') + 1);
      for (const auto& k : schema.keys()) {
        if (k == last || text::ends_with(k, "." + last)) hint = k;
      }
    }
    throw Error(loc.str() + ": unknown key '" + key + "' in a " + schema.kind() + " config" +
                (hint.empty() ? "; see docs/configs.md for the valid keys"
                              : "; did you mean '" + hint + "'?"));
  }

  // Walks a map node: sections are descended, fields are checked and stored.
  void walk(const YAML::Node& map, const std::string& prefix, const std::string& file) {
    for (auto it = map.begin(); it != map.end(); ++it) {
      // Copies (handles): `it->second` is a member of a temporary that dies with the statement
      // (a reference to it was read after its scope, found by fuzz_config under ASan).
      const YAML::Node key_node = it->first;
      const YAML::Node value = it->second;
      Location key_loc = location_of(file, key_node);
      if (!key_node.IsScalar()) throw Error(key_loc.str() + ": a config key must be a string");
      std::string key = prefix.empty() ? key_node.Scalar() : prefix + "." + key_node.Scalar();
      if (prefix.empty() && key == "base") continue;
      if (const Field* field = schema.find(key)) {
        Location loc = location_of(file, value);
        if (value.IsNull() && field->type != Type::kNode) {
          throw Error(loc.str() + ": '" + key + "' has no value; it expects " +
                      type_name(field->type));
        }
        check_type(*field, value, loc);
        values[key] = {YAML::Clone(value), loc};
      } else if (schema.is_section(key)) {
        if (value.IsNull()) continue;  // an empty section keeps its defaults
        if (!value.IsMap()) {
          throw Error(location_of(file, value).str() + ": '" + key +
                      "' is a section; it expects keys below it (" + key + ".<name>: value)");
        }
        walk(value, key, file);
      } else {
        unknown_key(key, key_loc);
      }
    }
  }

  YAML::Node parse_file(const std::string& path) {
    std::error_code ec;
    if (fs::is_directory(path, ec)) {
      throw Error(path + ": is a folder, not a config file (give the path of a .yaml file)");
    }
    std::ifstream in(path, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    if (!in) throw Error(path + ": cannot read the config file (does it exist?)");
    try {
      return YAML::Load(yaml_line_breaks(text.str()));
    } catch (const YAML::ParserException& e) {
      throw Error(path + ":" + std::to_string(e.mark.line + 1) + ": YAML syntax error: " + e.msg);
    }
  }

  void load_file(const std::string& path, std::vector<std::string>& chain) {
    std::string canonical = fs::weakly_canonical(path).string();
    if (std::find(chain.begin(), chain.end(), canonical) != chain.end()) {
      throw Error(path + ": 'base' includes form a cycle: " + text::join(chain, " -> ") + " -> " +
                  canonical);
    }
    chain.push_back(canonical);
    YAML::Node root = parse_file(path);
    load_node(root, path, chain);
    chain.pop_back();
  }

  void load_node(const YAML::Node& root, const std::string& file, std::vector<std::string>& chain) {
    if (root.IsNull()) return;  // an empty file
    if (!root.IsMap()) {
      throw Error(location_of(file, root).str() + ": a config must be a map of keys to values");
    }
    if (const YAML::Node base = root["base"]) {
      Location loc = location_of(file, base);
      if (!base.IsScalar()) throw Error(loc.str() + ": 'base' expects the path of another config");
      fs::path base_path = fs::path(file).parent_path() / base.Scalar();
      std::error_code exists_ec;
      const bool exists = fs::exists(base_path, exists_ec);
      if (exists_ec) {
        throw Error(loc.str() + ": base config '" + base.Scalar() + "' cannot be looked up (" +
                    exists_ec.message() + ")");
      }
      if (!exists) {
        throw Error(loc.str() + ": base config '" + base.Scalar() + "' not found (looked for " +
                    base_path.lexically_normal().string() +
                    "; the path is relative to the including file)");
      }
      std::error_code ec;
      if (fs::is_directory(base_path, ec)) {
        throw Error(loc.str() + ": base config '" + base.Scalar() +
                    "' is a folder, not a config file (name a .yaml file)");
      }
      load_file(base_path.string(), chain);
    }
    walk(root, "", file);
  }

  void apply_override(const std::string& word) {
    auto [key, text] = split_override(word);
    Location loc{"command line (" + word + ")", 0, 0};
    const Field* field = schema.find(key);
    if (!field) {
      if (schema.is_section(key)) {
        throw Error(loc.str() + ": '" + key + "' is a section; name a key below it (" + key +
                    ".<name>=value)");
      }
      unknown_key(key, loc);
    }
    YAML::Node value;
    try {
      value = YAML::Load(yaml_line_breaks(text));
    } catch (const YAML::ParserException& e) {
      throw Error(loc.str() + ": cannot parse the value of '" + key + "': " + e.msg);
    }
    if (field->type == Type::kString && !value.IsScalar()) value = YAML::Node(text);
    check_type(*field, value, loc);
    values[key] = {value, loc};
  }
};

}  // namespace

std::pair<std::string, std::string> split_override(const std::string& word) {
  auto eq = word.find('=');
  if (eq == std::string::npos || eq == 0) {
    throw Error("command line: '" + word +
                "' is not an override; write key=value (e.g. train.epochs=3)");
  }
  return {text::trim(word.substr(0, eq)), word.substr(eq + 1)};
}

Config Config::assemble(const Schema& schema, const std::string& name, const Given& given) {
  Config cfg;
  cfg.schema_ = &schema;
  cfg.path_ = name;
  for (const auto& f : schema.fields()) {
    auto it = given.find(f.key);
    bool is_given = it != given.end();
    if (!is_given && f.default_yaml.empty() && f.type != Type::kNode) {
      throw Error(name + ": required key '" + f.key + "' is missing (" + f.help + ")");
    }
    cfg.values_[f.key] =
        is_given
            ? Entry{it->second.first, it->second.second}
            : Entry{f.default_yaml.empty() ? YAML::Node() : YAML::Load(f.default_yaml), Location{}};
    cfg.set_[f.key] = is_given;
  }
  return cfg;
}

Config Config::load(const std::string& path, const Schema& schema,
                    const std::vector<std::string>& overrides) {
  Loader loader{schema, {}};
  std::vector<std::string> chain;
  loader.load_file(path, chain);
  for (const auto& o : overrides) loader.apply_override(o);
  return assemble(schema, path, loader.values);
}

Config Config::load_string(const std::string& yaml, const std::string& name, const Schema& schema,
                           const std::vector<std::string>& overrides) {
  Loader loader{schema, {}};
  YAML::Node root;
  try {
    root = YAML::Load(yaml_line_breaks(yaml));
  } catch (const YAML::ParserException& e) {
    throw Error(name + ":" + std::to_string(e.mark.line + 1) + ": YAML syntax error: " + e.msg);
  }
  std::vector<std::string> chain{name};
  loader.load_node(root, name, chain);
  for (const auto& o : overrides) loader.apply_override(o);
  return assemble(schema, name, loader.values);
}

Config Config::defaults(const Schema& schema, const std::vector<std::string>& overrides) {
  return load_string("{}", "(defaults)", schema, overrides);
}

const Config::Entry& Config::entry(const std::string& key, Type expected) const {
  auto it = values_.find(key);
  if (it == values_.end()) throw std::logic_error("config key not in schema: " + key);
  const Field* f = schema_->find(key);
  if (f->type != expected) throw std::logic_error("config key read with the wrong type: " + key);
  return it->second;
}

bool Config::get_bool(const std::string& key) const {
  return entry(key, Type::kBool).value.as<bool>();
}
int64_t Config::get_int(const std::string& key) const {
  return entry(key, Type::kInt).value.as<int64_t>();
}
double Config::get_float(const std::string& key) const {
  return entry(key, Type::kFloat).value.as<double>();
}
std::string Config::get_string(const std::string& key) const {
  const Entry& e = entry(key, Type::kString);
  return e.value.IsNull() ? std::string() : e.value.Scalar();
}
std::vector<int64_t> Config::get_int_list(const std::string& key) const {
  return entry(key, Type::kIntList).value.as<std::vector<int64_t>>();
}
std::vector<double> Config::get_float_list(const std::string& key) const {
  return entry(key, Type::kFloatList).value.as<std::vector<double>>();
}
std::vector<std::string> Config::get_string_list(const std::string& key) const {
  return entry(key, Type::kStringList).value.as<std::vector<std::string>>();
}
YAML::Node Config::get_node(const std::string& key) const {
  return entry(key, Type::kNode).value;
}
YAML::Node Config::raw(const std::string& key) const {
  auto it = values_.find(key);
  if (it == values_.end()) throw std::logic_error("config key not in schema: " + key);
  return it->second.value;
}

bool Config::is_set(const std::string& key) const {
  auto it = set_.find(key);
  return it != set_.end() && it->second;
}

Location Config::where(const std::string& key) const {
  auto it = values_.find(key);
  return it == values_.end() ? Location{} : it->second.loc;
}

std::string Config::resolve_path(const std::string& key) const {
  std::string value = get_string(key);
  if (value.empty() || fs::path(value).is_absolute()) return value;
  Location loc = where(key);
  // Paths in a file are relative to the working directory, as ultralytics does; fall back to the
  // file's folder when that is where the path exists.
  if (fs::exists(value) || loc.line == 0) return value;
  fs::path beside = fs::path(loc.file).parent_path() / value;
  return fs::exists(beside) ? beside.lexically_normal().string() : value;
}

std::string Config::to_yaml() const {
  // Rebuild the nested structure from the dotted keys, in schema order.
  YAML::Node root(YAML::NodeType::Map);
  for (const auto& f : schema_->fields()) {
    auto parts = text::split(f.key, '.');
    std::vector<YAML::Node> path{root};
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      YAML::Node next = path.back()[parts[i]];
      if (!next.IsMap()) next = YAML::Node(YAML::NodeType::Map);
      path.back()[parts[i]] = next;
      path.push_back(next);
    }
    path.back()[parts.back()] = values_.at(f.key).value;
  }
  YAML::Emitter out;
  out << root;
  return std::string(out.c_str()) + "\n";
}

}  // namespace mixnas::config
