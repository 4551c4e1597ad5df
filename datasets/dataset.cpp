#include "datasets/dataset.h"

#include <sys/stat.h>
#include <yaml-cpp/yaml.h>
#include <cmath>
#include <random>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/text.h"
#include "datasets/image.h"

namespace mixnas::data {
namespace fs = std::filesystem;

namespace {

constexpr int kCacheVersion = 1;
// labels/<split>.cache is ultralytics' own (a pickled NumPy file); mixnas' must never take it.
constexpr const char* kCacheSuffix = ".mixnas-cache.json";
constexpr const char* kLegacyCacheSuffix = ".cache";

std::string where(const std::string& file, const YAML::Node& node) {
  auto mark = node.Mark();
  if (mark.line < 0) return file;
  return file + ":" + std::to_string(mark.line + 1);
}

std::string resolve(const std::string& base, const std::string& p) {
  fs::path path(p);
  if (path.is_absolute() || base.empty()) return path.lexically_normal().string();
  return (fs::path(base) / path).lexically_normal().string();
}

std::vector<std::string> names_from(const YAML::Node& node, const std::string& file) {
  std::vector<std::string> names;
  if (node.IsSequence()) {
    for (const auto& n : node) {
      if (!n.IsScalar()) throw Error(where(file, n) + ": each entry of 'names' must be a string");
      names.push_back(n.as<std::string>());
    }
  } else if (node.IsMap()) {
    std::map<long, std::string> by_id;
    for (const auto& kv : node) {
      long id;
      try {
        id = kv.first.as<long>();
      } catch (const YAML::Exception&) {
        throw Error(where(file, kv.first) +
                    ": 'names' keys must be class numbers 0, 1, ...; got '" +
                    kv.first.as<std::string>() + "'");
      }
      if (!kv.second.IsScalar()) {
        throw Error(where(file, kv.second) + ": the name of class " + std::to_string(id) +
                    " must be a string");
      }
      by_id[id] = kv.second.as<std::string>();
    }
    long expect = 0;
    for (const auto& [id, name] : by_id) {
      if (id != expect) {
        throw Error(where(file, node) + ": 'names' must number classes 0.." +
                    std::to_string(by_id.size() - 1) + " without gaps; class " +
                    std::to_string(expect) + " is missing");
      }
      names.push_back(name);
      ++expect;
    }
  } else {
    throw Error(where(file, node) +
                ": 'names' must be a list [a, b] or a map {0: a, 1: b} of class names");
  }
  if (names.empty()) throw Error(where(file, node) + ": 'names' is empty; name at least one class");
  return names;
}

std::string file_stamp(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return path + "|-";
  return path + "|" + std::to_string(static_cast<long long>(st.st_size)) + "|" +
         std::to_string(static_cast<long long>(st.st_mtim.tv_sec)) + "." +
         std::to_string(static_cast<long long>(st.st_mtim.tv_nsec));
}

std::string cache_key(const std::vector<std::string>& images, int num_classes) {
  uint64_t h = fnv1a("v" + std::to_string(kCacheVersion) + " nc" + std::to_string(num_classes));
  for (const auto& im : images) {
    h = fnv1a(file_stamp(im), h);
    h = fnv1a(file_stamp(label_path_for(im)), h);
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return hex;
}

// Per image: the outcome of checking it (kept in the cache).
struct Entry {
  Sample sample;
  int duplicates = 0;
  bool background = false;
  std::string error;  // non-empty: skipped
};

Entry check_image(const std::string& image_path, int num_classes) {
  Entry e;
  e.sample.image_path = image_path;
  std::string label_path = label_path_for(image_path);
  std::error_code ec;
  if (fs::exists(label_path, ec)) {
    std::string text;
    try {
      text = read_file(label_path);
    } catch (const Error& err) {
      e.error = err.what();
      return e;
    }
    LabelParse parse = parse_labels(text, label_path, num_classes);
    if (!parse.ok()) {
      e.error = text::join(parse.problems, "; ");
      return e;
    }
    e.sample.boxes = std::move(parse.boxes);
    e.duplicates = parse.duplicates_removed;
  }
  e.background = e.sample.boxes.empty();
  try {
    Image image = load_image(image_path);
    e.sample.width = image.width;
    e.sample.height = image.height;
  } catch (const Error& err) {
    e.error = err.what();
  }
  return e;
}

nlohmann::json entries_to_json(const std::vector<Entry>& entries) {
  nlohmann::json arr = nlohmann::json::array();
  for (const Entry& e : entries) {
    nlohmann::json j;
    j["im"] = e.sample.image_path;
    if (!e.error.empty()) {
      j["err"] = e.error;
    } else {
      j["w"] = e.sample.width;
      j["h"] = e.sample.height;
      std::vector<float> flat;
      for (const Box& b : e.sample.boxes) {
        flat.insert(flat.end(), {static_cast<float>(b.cls), b.cx, b.cy, b.w, b.h});
      }
      j["b"] = flat;
      if (e.duplicates) j["dup"] = e.duplicates;
    }
    arr.push_back(std::move(j));
  }
  return arr;
}

bool entries_from_json(const nlohmann::json& arr, const std::vector<std::string>& images,
                       int num_classes, std::vector<Entry>* entries) {
  if (!arr.is_array() || arr.size() != images.size()) return false;
  entries->clear();
  entries->reserve(images.size());
  for (size_t i = 0; i < images.size(); ++i) {
    const auto& j = arr[i];
    Entry e;
    e.sample.image_path = j.at("im").get<std::string>();
    if (e.sample.image_path != images[i]) return false;
    if (j.contains("err")) {
      e.error = j["err"].get<std::string>();
    } else {
      e.sample.width = j.at("w").get<int>();
      e.sample.height = j.at("h").get<int>();
      auto flat = j.at("b").get<std::vector<float>>();
      if (flat.size() % 5 != 0) return false;
      for (size_t k = 0; k < flat.size(); k += 5) {
        // A cache edited or written by something else: rebuilt, never trusted.
        if (!(flat[k] >= 0 && flat[k] < static_cast<float>(num_classes))) return false;
        for (size_t c = 1; c < 5; ++c)
          if (!(flat[k + c] >= 0 && flat[k + c] <= 1)) return false;
        e.sample.boxes.push_back(
            {static_cast<int>(flat[k]), flat[k + 1], flat[k + 2], flat[k + 3], flat[k + 4]});
      }
      e.duplicates = j.value("dup", 0);
      e.background = e.sample.boxes.empty();
    }
    entries->push_back(std::move(e));
  }
  return true;
}

// The cache of a split when it is mixnas' and current; anything else (stale, unreadable, foreign)
// is rebuilt, never fatal.
bool read_cache(const std::string& path, const std::string& key,
                const std::vector<std::string>& images, int num_classes,
                std::vector<Entry>* entries) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return false;
  try {
    auto j = nlohmann::json::parse(read_file(path));
    if (j.is_object() && j.value("version", 0) == kCacheVersion && j.value("key", "") == key &&
        entries_from_json(j.at("entries"), images, num_classes, entries))
      return true;
    log::debug("label cache ", path, " is stale; rebuilding");
  } catch (const std::exception& e) {
    log::warn("label cache ", path, " is unreadable (", e.what(), "); rebuilding");
  }
  return false;
}

// Earlier mixnas versions wrote their JSON cache at labels/<split>.cache, where ultralytics then
// fails to read its own: such a file is removed (a file of any other content is left alone).
void remove_legacy_cache(const std::string& cache_path) {
  if (cache_path.size() < std::strlen(kCacheSuffix)) return;
  const std::string legacy =
      cache_path.substr(0, cache_path.size() - std::strlen(kCacheSuffix)) + kLegacyCacheSuffix;
  std::error_code ec;
  if (!fs::is_regular_file(legacy, ec)) return;
  try {
    auto j = nlohmann::json::parse(read_file(legacy));
    if (!j.is_object() || !j.contains("key") || !j.contains("entries")) return;
  } catch (const std::exception&) {
    return;  // not ours
  }
  if (fs::remove(legacy, ec))
    log::info("removed ", legacy, ", a label cache of an earlier mixnas (ultralytics' file name)");
}

std::vector<std::string> read_list_file(const std::string& list_path, const std::string& split) {
  std::ifstream in(list_path);
  if (!in) throw Error("split '" + split + "': cannot read the image list " + list_path);
  std::vector<std::string> out;
  std::string base = fs::path(list_path).parent_path().string();
  std::string line;
  while (std::getline(in, line)) {
    line = text::trim(line);
    if (line.empty() || line[0] == '#') continue;
    // ultralytics lists use "./images/x.jpg" relative to the list's folder.
    out.push_back(resolve(base, line));
  }
  return out;
}

}  // namespace

DatasetConfig parse_dataset_config(const std::string& yaml_text, const std::string& yaml_path) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::ParserException& e) {
    throw Error(yaml_path + ":" + std::to_string(e.mark.line + 1) + ": not valid YAML: " + e.msg);
  }
  if (!root.IsMap()) {
    throw Error(yaml_path + ": a dataset YAML must be a map with keys path, train, val, names");
  }
  static const std::vector<std::string> kKeys = {"path",  "train", "val",     "test",
                                                 "names", "nc",    "download"};
  for (const auto& kv : root) {
    std::string key = kv.first.as<std::string>();
    if (std::find(kKeys.begin(), kKeys.end(), key) == kKeys.end()) {
      std::string hint = text::closest(key, kKeys);
      log::warn(where(yaml_path, kv.first), ": unknown dataset key '", key, "' ignored",
                hint.empty() ? "" : " (did you mean '" + hint + "'?)");
    }
  }
  DatasetConfig config;
  config.yaml_path = yaml_path;
  std::string yaml_dir = fs::path(yaml_path).parent_path().string();
  if (root["path"] && !root["path"].IsNull()) {
    if (!root["path"].IsScalar())
      throw Error(where(yaml_path, root["path"]) + ": 'path' must be a folder");
    config.root = resolve(yaml_dir, root["path"].as<std::string>());
  } else {
    config.root = yaml_dir.empty() ? "." : yaml_dir;
  }
  for (const char* split : {"train", "val", "test"}) {
    YAML::Node n = root[split];
    if (!n || n.IsNull()) continue;
    std::vector<std::string> sources;
    if (n.IsScalar()) {
      sources.push_back(resolve(config.root, n.as<std::string>()));
    } else if (n.IsSequence()) {
      for (const auto& s : n) {
        if (!s.IsScalar())
          throw Error(where(yaml_path, s) + ": each '" + split + "' entry must be a path");
        sources.push_back(resolve(config.root, s.as<std::string>()));
      }
    } else {
      throw Error(where(yaml_path, n) + ": '" + split +
                  "' must be a folder, a .txt list of images, or a list of those");
    }
    if (sources.empty()) throw Error(where(yaml_path, n) + ": '" + split + "' lists no source");
    config.splits[split] = sources;
  }
  if (!config.has_split("train") && !config.has_split("val")) {
    throw Error(yaml_path +
                ": the dataset YAML has neither 'train' nor 'val'; add e.g. "
                "'train: images/train' and 'val: images/val'");
  }
  if (!root["names"]) {
    throw Error(yaml_path + ": 'names' is missing; list the class names, e.g. names: {0: person}");
  }
  config.names = names_from(root["names"], yaml_path);
  if (root["nc"] && !root["nc"].IsNull()) {
    int nc;
    try {
      nc = root["nc"].as<int>();
    } catch (const YAML::Exception&) {
      throw Error(where(yaml_path, root["nc"]) + ": 'nc' must be an integer class count");
    }
    if (nc != config.num_classes()) {
      throw Error(where(yaml_path, root["nc"]) + ": nc is " + std::to_string(nc) +
                  " but 'names' has " + std::to_string(config.num_classes()) +
                  " entries; make them agree");
    }
  }
  return config;
}

DatasetConfig load_dataset_config(const std::string& yaml_path) {
  std::error_code ec;
  if (!fs::is_regular_file(yaml_path, ec)) {
    throw Error("dataset YAML " + yaml_path +
                " does not exist (build one with 'mixnas data make "
                "fmnist-det' or 'mixnas data convert')");
  }
  return parse_dataset_config(read_file(yaml_path), yaml_path);
}

std::vector<std::string> list_split_images(const DatasetConfig& config, const std::string& split) {
  auto it = config.splits.find(split);
  if (it == config.splits.end()) {
    throw Error(config.yaml_path + ": the dataset has no '" + split + "' split");
  }
  std::vector<std::string> images;
  for (const std::string& source : it->second) {
    std::error_code ec;
    if (fs::is_directory(source, ec)) {
      for (auto rit = fs::recursive_directory_iterator(source, ec);
           !ec && rit != fs::recursive_directory_iterator(); rit.increment(ec)) {
        if (rit->is_regular_file(ec) && has_image_suffix(rit->path().string())) {
          images.push_back(rit->path().lexically_normal().string());
        }
      }
      if (ec) throw Error("split '" + split + "': cannot list " + source + ": " + ec.message());
    } else if (fs::is_regular_file(source, ec) && text::ends_with(source, ".txt")) {
      auto listed = read_list_file(source, split);
      images.insert(images.end(), listed.begin(), listed.end());
    } else {
      throw Error(config.yaml_path + ": split '" + split + "': " + source +
                  " does not exist (expected a folder of images or a .txt list of image paths)");
    }
  }
  std::sort(images.begin(), images.end());
  images.erase(std::unique(images.begin(), images.end()), images.end());
  if (images.empty()) {
    throw Error("split '" + split + "' is empty: no image (.jpg, .jpeg, .png, .bmp) in " +
                text::join(it->second, ", "));
  }
  return images;
}

std::string label_cache_path(const std::string& label_dir) {
  return label_dir + kCacheSuffix;
}

std::string cache_path_for(const std::vector<std::string>& images) {
  if (images.empty()) return "";
  return label_cache_path(fs::path(label_path_for(images.front())).parent_path().string());
}

std::string SplitReport::summary(size_t max_listed) const {
  std::ostringstream out;
  out << split << ": " << images << " images (" << backgrounds << " backgrounds, " << boxes
      << " boxes)";
  if (duplicates) out << ", " << duplicates << " duplicate labels removed";
  out << ", " << corrupt.size() << " corrupt skipped";
  if (!corrupt.empty()) {
    out << ": ";
    for (size_t i = 0; i < corrupt.size() && i < max_listed; ++i)
      out << (i ? "; " : "") << corrupt[i];
    if (corrupt.size() > max_listed) out << "; ... (" << corrupt.size() - max_listed << " more)";
  }
  if (from_cache) out << " [cache]";
  return out.str();
}

DetectionSplit DetectionSplit::subset(const std::vector<size_t>& indices,
                                      const std::string& name) const {
  if (indices.empty()) throw Error("split '" + name + "' would hold no image");
  DetectionSplit out;
  out.names_ = names_;
  out.cache_path_ = cache_path_;
  out.report_.split = name;
  out.report_.from_cache = report_.from_cache;
  for (size_t i : indices) {
    if (i >= samples_.size()) {
      throw Error("split '" + name + "': sample index " + std::to_string(i) + " is out of range");
    }
    out.samples_.push_back(samples_[i]);
    out.report_.boxes += static_cast<int64_t>(samples_[i].boxes.size());
    out.report_.backgrounds += samples_[i].boxes.empty() ? 1 : 0;
  }
  out.report_.found = out.report_.images = static_cast<int64_t>(out.samples_.size());
  return out;
}

std::pair<DetectionSplit, DetectionSplit> DetectionSplit::partition(double fraction,
                                                                    uint64_t seed) const {
  if (!(fraction > 0 && fraction < 1)) {
    throw Error("split fraction must be between 0 and 1 (exclusive), got " +
                std::to_string(fraction));
  }
  size_t n = samples_.size();
  size_t k =
      std::max<size_t>(1, static_cast<size_t>(std::llround(fraction * static_cast<double>(n))));
  if (k >= n) {
    throw Error("split '" + report_.split + "' has " + std::to_string(n) +
                " images: too few to hold out " + std::to_string(fraction) + " of them");
  }
  std::vector<size_t> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = i;
  std::mt19937_64 rng(seed ^ 0x5eed5eedULL);
  std::shuffle(order.begin(), order.end(), rng);
  std::vector<size_t> first(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(k));
  std::vector<size_t> rest(order.begin() + static_cast<std::ptrdiff_t>(k), order.end());
  std::sort(first.begin(), first.end());
  std::sort(rest.begin(), rest.end());
  return {subset(first, report_.split + "/part"), subset(rest, report_.split + "/rest")};
}

DetectionSplit DetectionSplit::load(const DatasetConfig& config, const std::string& split,
                                    const SplitLoadOptions& options) {
  std::vector<std::string> images = list_split_images(config, split);
  DetectionSplit result;
  result.names_ = config.names;
  result.cache_path_ = cache_path_for(images);
  std::string key = cache_key(images, config.num_classes());

  std::vector<Entry> entries;
  bool cached = false;
  if (options.use_cache) {
    remove_legacy_cache(result.cache_path_);
    cached = read_cache(result.cache_path_, key, images, config.num_classes(), &entries);
  }
  if (!cached) {
    entries.assign(images.size(), Entry{});
    int threads = options.threads > 0
                      ? options.threads
                      : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    threads = std::min<int>(threads, static_cast<int>(images.size()));
    std::atomic<size_t> next{0};
    auto work = [&] {
      for (size_t i = next++; i < images.size(); i = next++) {
        entries[i] = check_image(images[i], config.num_classes());
      }
    };
    std::vector<std::thread> pool;
    for (int t = 1; t < threads; ++t) pool.emplace_back(work);
    work();
    for (auto& t : pool) t.join();
    if (options.use_cache) {
      nlohmann::json j;
      j["version"] = kCacheVersion;
      j["key"] = key;
      j["entries"] = entries_to_json(entries);
      try {
        write_file_atomic(result.cache_path_, j.dump());
      } catch (const Error& e) {
        log::warn("cannot write the label cache (", e.what(), "); continuing without it");
      }
    }
  }

  SplitReport& report = result.report_;
  report.split = split;
  report.from_cache = cached;
  report.found = static_cast<int64_t>(images.size());
  for (Entry& e : entries) {
    if (!e.error.empty()) {
      report.corrupt.push_back(e.error);
      continue;
    }
    ++report.images;
    report.backgrounds += e.background;
    report.boxes += static_cast<int64_t>(e.sample.boxes.size());
    report.duplicates += e.duplicates;
    result.samples_.push_back(std::move(e.sample));
  }
  if (result.samples_.empty()) {
    throw Error("split '" + split + "' has no usable image: all " + std::to_string(images.size()) +
                " are corrupt (" + report.summary() + ")");
  }
  return result;
}

}  // namespace mixnas::data
