#include "datasets/convert.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/json_int.h"
#include "core/log.h"
#include "core/progress.h"
#include "core/text.h"
#include "datasets/dataset.h"
#include "datasets/labels.h"

namespace mixnas::data {
namespace fs = std::filesystem;

namespace {

void prepare_split_folders(const ConvertOptions& o, const std::string& split) {
  if (o.out.empty()) throw Error("--out is required: the folder of the converted dataset");
  for (const char* kind : {"images", "labels"}) {
    fs::path dir = fs::path(o.out) / kind / split;
    std::error_code ec;
    if (fs::exists(dir, ec) && !fs::is_empty(dir, ec) && !o.force) {
      throw Error(dir.string() + " already holds files; pass --force to write into it");
    }
    fs::create_directories(dir, ec);
    if (ec) throw Error("cannot create " + dir.string() + ": " + ec.message());
  }
}

// Hard link when possible (same file system, no extra space), else copy.
void place_image(const fs::path& src, const fs::path& dst, bool copy) {
  std::error_code ec;
  fs::remove(dst, ec);
  if (!copy) {
    fs::create_hard_link(src, dst, ec);
    if (!ec) return;
  }
  fs::copy_file(src, dst, fs::copy_options::overwrite_existing, ec);
  if (ec) throw Error("cannot copy " + src.string() + " to " + dst.string() + ": " + ec.message());
}

void write_labels(const fs::path& path, const std::vector<Box>& boxes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << format_labels(boxes);
  if (!out) throw Error("cannot write " + path.string());
}

// Writes OUT/data.yaml; an existing one with the same class names keeps its other splits.
std::string write_data_yaml(const std::string& out, const std::vector<std::string>& names,
                            const std::map<std::string, std::string>& new_splits) {
  std::string path = (fs::path(out) / "data.yaml").string();
  std::map<std::string, std::string> splits;
  std::error_code ec;
  if (fs::exists(path, ec)) {
    DatasetConfig old = load_dataset_config(path);
    if (old.names != names) {
      throw Error(path + " already exists with other class names (" + text::join(old.names, ", ") +
                  "); convert into another --out");
    }
    YAML::Node root = YAML::LoadFile(path);
    for (const char* key : {"train", "val", "test"}) {
      if (root[key] && root[key].IsScalar()) splits[key] = root[key].as<std::string>();
    }
  }
  for (const auto& [k, v] : new_splits) splits[k] = v;
  std::ostringstream y;
  y << "# written by mixnas data convert\npath: .\n";
  for (const char* key : {"train", "val", "test"}) {
    if (splits.count(key)) y << key << ": " << splits[key] << "\n";
  }
  y << "nc: " << names.size() << "\nnames:\n";
  for (size_t i = 0; i < names.size(); ++i) {
    YAML::Emitter e;
    e << names[i];
    y << "  " << i << ": " << e.c_str() << "\n";
  }
  write_file_atomic(path, y.str());
  return path;
}

// Box in pixels (x0, y0, x1, y1) clipped to the image, normalised; false when nothing is left.
bool to_yolo(double x0, double y0, double x1, double y1, double w, double h, int cls, Box* box) {
  x0 = std::clamp(x0, 0.0, w);
  x1 = std::clamp(x1, 0.0, w);
  y0 = std::clamp(y0, 0.0, h);
  y1 = std::clamp(y1, 0.0, h);
  if (x1 - x0 <= 0 || y1 - y0 <= 0) return false;
  *box = {cls, static_cast<float>((x0 + x1) / 2 / w), static_cast<float>((y0 + y1) / 2 / h),
          static_cast<float>((x1 - x0) / w), static_cast<float>((y1 - y0) / h)};
  return true;
}

// --- A reader for the subset of XML that VOC annotations use -------------------------------------

// The inner text of each <tag ...>...</tag> in `xml` (not nested in itself).
std::vector<std::string> elements(const std::string& xml, const std::string& tag) {
  std::vector<std::string> out;
  size_t pos = 0;
  const std::string open = "<" + tag, close = "</" + tag + ">";
  while ((pos = xml.find(open, pos)) != std::string::npos) {
    size_t after = pos + open.size();
    if (after >= xml.size() ||
        (xml[after] != '>' && !std::isspace(static_cast<unsigned char>(xml[after])) &&
         xml[after] != '/')) {
      pos = after;
      continue;
    }
    size_t gt = xml.find('>', after);
    if (gt == std::string::npos) break;
    if (xml[gt - 1] == '/') {  // <tag/>
      out.emplace_back();
      pos = gt + 1;
      continue;
    }
    size_t end = xml.find(close, gt + 1);
    if (end == std::string::npos) break;
    out.push_back(xml.substr(gt + 1, end - gt - 1));
    pos = end + close.size();
  }
  return out;
}

std::string remove_elements(std::string xml, const std::string& tag) {
  const std::string open = "<" + tag, close = "</" + tag + ">";
  size_t pos;
  while ((pos = xml.find(open)) != std::string::npos) {
    size_t end = xml.find(close, pos);
    if (end == std::string::npos) break;
    xml.erase(pos, end + close.size() - pos);
  }
  return xml;
}

std::string first_text(const std::string& xml, const std::string& tag) {
  auto e = elements(xml, tag);
  return e.empty() ? "" : text::trim(e.front());
}

bool parse_number(const std::string& s, double* v) {
  if (s.empty()) return false;
  char* end = nullptr;
  *v = std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size() && std::isfinite(*v);
}

std::string strip_comments(std::string xml) {
  size_t pos;
  while ((pos = xml.find("<!--")) != std::string::npos) {
    size_t end = xml.find("-->", pos);
    xml.erase(pos, end == std::string::npos ? std::string::npos : end + 3 - pos);
  }
  return xml;
}

}  // namespace

const std::vector<std::string>& voc_names() {
  static const std::vector<std::string> names = {
      "aeroplane", "bicycle",     "bird",  "boat",        "bottle", "bus",      "car",
      "cat",       "chair",       "cow",   "diningtable", "dog",    "horse",    "motorbike",
      "person",    "pottedplant", "sheep", "sofa",        "train",  "tvmonitor"};
  return names;
}

std::string split_key_for(const std::string& split_name) {
  std::string s = split_name;
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  if (s.find("train") != std::string::npos) return "train";
  if (s.find("test") != std::string::npos) return "test";
  return "val";
}

std::string ConvertReport::summary() const {
  std::ostringstream out;
  out << "converted " << images << " images, " << boxes << " boxes into split(s) "
      << text::join(splits, ", ");
  if (crowd_skipped) out << "; " << crowd_skipped << " crowd boxes skipped";
  if (difficult_skipped) out << "; " << difficult_skipped << " difficult objects skipped";
  if (difficult_kept) out << "; " << difficult_kept << " difficult objects kept";
  out << "; " << problems.size() << " problems";
  for (size_t i = 0; i < problems.size() && i < 5; ++i) out << (i ? "; " : ": ") << problems[i];
  if (problems.size() > 5) out << "; ... (" << problems.size() - 5 << " more)";
  return out.str();
}

ConvertReport convert_coco(const std::string& instances_json, const ConvertOptions& o) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file(instances_json));
  } catch (const nlohmann::json::exception& e) {
    throw Error(instances_json + ": not valid JSON: " + e.what());
  }
  if (!j.is_object() || !j.contains("images") || !j.contains("annotations") ||
      !j.contains("categories")) {
    throw Error(instances_json +
                ": not a COCO instances file (needs 'images', 'annotations' and 'categories')");
  }
  std::string images_dir =
      o.images.empty() ? fs::path(instances_json).parent_path().string() : o.images;
  std::string split = o.split;
  if (split.empty() || split == "auto") {
    split = fs::path(instances_json).stem().string();
    if (text::starts_with(split, "instances_")) split = split.substr(10);
  }
  ConvertReport report;
  report.splits = {split};
  try {
    std::map<int64_t, std::string> categories;
    for (const auto& c : j["categories"])
      categories[json_int64(c.at("id"), instances_json + ": categories: id")] =
          c.at("name").get<std::string>();
    if (categories.empty()) throw Error(instances_json + ": 'categories' is empty");
    std::map<int64_t, int> class_of;
    std::vector<std::string> names;
    for (const auto& [id, name] : categories) {
      class_of[id] = static_cast<int>(names.size());
      names.push_back(name);
    }
    struct ImageInfo {
      std::string file;
      double w, h;
      std::vector<Box> boxes;
    };
    std::map<int64_t, ImageInfo> images;
    for (const auto& im : j["images"]) {
      images[json_int64(im.at("id"), instances_json + ": images: id")] = {
          im.at("file_name").get<std::string>(),
          im.at("width").get<double>(),
          im.at("height").get<double>(),
          {}};
    }
    for (const auto& ann : j["annotations"]) {
      std::string where =
          instances_json + ": annotation " + ann.value("id", nlohmann::json(0)).dump();
      int64_t image_id = json_int64(ann.at("image_id"), where + ": image_id");
      int64_t cat = json_int64(ann.at("category_id"), where + ": category_id");
      auto im = images.find(image_id);
      if (im == images.end()) {
        report.problems.push_back(where + " names unknown image_id " + std::to_string(image_id));
        continue;
      }
      if (!class_of.count(cat)) {
        report.problems.push_back(where + " names unknown category_id " + std::to_string(cat));
        continue;
      }
      if (ann.value("iscrowd", 0) != 0) {
        ++report.crowd_skipped;
        continue;
      }
      auto bb = ann.at("bbox").get<std::vector<double>>();
      Box box;
      if (bb.size() != 4 || !to_yolo(bb[0], bb[1], bb[0] + bb[2], bb[1] + bb[3], im->second.w,
                                     im->second.h, class_of[cat], &box)) {
        report.problems.push_back(where + ": empty or invalid bbox skipped");
        continue;
      }
      im->second.boxes.push_back(box);
    }
    prepare_split_folders(o, split);
    fs::path out_images = fs::path(o.out) / "images" / split;
    fs::path out_labels = fs::path(o.out) / "labels" / split;
    Progress progress("convert " + split, static_cast<int64_t>(images.size()), "img");
    for (const auto& [id, im] : images) {
      progress.advance();
      fs::path src = fs::path(images_dir) / im.file;
      std::error_code ec;
      if (!fs::is_regular_file(src, ec)) {
        report.problems.push_back("image " + src.string() + " (id " + std::to_string(id) +
                                  ") is missing; skipped");
        continue;
      }
      fs::path name = fs::path(im.file).filename();
      place_image(src, out_images / name, o.copy);
      if (!im.boxes.empty()) write_labels(out_labels / name.replace_extension(".txt"), im.boxes);
      ++report.images;
      report.boxes += static_cast<int>(im.boxes.size());
    }
    progress.finish();
    report.yaml_path = write_data_yaml(o.out, names, {{split_key_for(split), "images/" + split}});
  } catch (const nlohmann::json::exception& e) {
    throw Error(instances_json + ": unexpected COCO content: " + e.what());
  }
  for (const auto& p : report.problems) log::warn(p);
  return report;
}

namespace {

// Which image ids go to which split: the ImageSets/Main lists asked for (`auto`: those present),
// or every annotation as train when there are none.
std::map<std::string, std::vector<std::string>> voc_split_ids(const fs::path& root,
                                                              const ConvertOptions& o) {
  std::error_code ec;
  std::map<std::string, std::vector<std::string>> split_ids;
  std::vector<std::string> wanted;
  if (o.split.empty() || o.split == "auto") {
    for (const char* s : {"train", "val", "test"}) {
      if (fs::exists(root / "ImageSets/Main" / (std::string(s) + ".txt"), ec)) wanted.push_back(s);
    }
  } else {
    wanted = text::split(o.split, ',');
  }
  for (const std::string& s : wanted) {
    fs::path list = root / "ImageSets/Main" / (s + ".txt");
    std::ifstream in(list);
    if (!in) throw Error("VOC split list " + list.string() + " does not exist");
    std::string line;
    while (std::getline(in, line)) {
      line = text::trim(line);
      if (!line.empty()) split_ids[s].push_back(line.substr(0, line.find_first_of(" \t")));
    }
  }
  if (wanted.empty()) {
    for (auto& e : fs::directory_iterator(root / "Annotations")) {
      if (e.path().extension() == ".xml") split_ids["train"].push_back(e.path().stem().string());
    }
    std::sort(split_ids["train"].begin(), split_ids["train"].end());
  }
  return split_ids;
}

// The boxes of one annotation (w x h pixels) in YOLO form; false when the image is to be skipped.
// Unknown classes, difficult objects (when skipped) and empty boxes are left out, and counted or
// reported in `report`.
bool voc_boxes(const std::string& xml, const std::string& where_xml, double w, double h,
               const ConvertOptions& o, ConvertReport& report, std::vector<Box>& boxes) {
  const auto& names = voc_names();
  int object_no = 0;
  for (const std::string& object_xml : elements(xml, "object")) {
    ++object_no;
    std::string object = remove_elements(object_xml, "part");
    std::string name = first_text(object, "name");
    auto it = std::find(names.begin(), names.end(), name);
    std::string where = where_xml + ": object " + std::to_string(object_no);
    if (it == names.end()) {
      report.problems.push_back(where + ": unknown class '" + name + "' skipped");
      continue;
    }
    if (first_text(object, "difficult") == "1") {
      if (o.skip_difficult) {
        ++report.difficult_skipped;
        continue;
      }
      ++report.difficult_kept;
    }
    std::string bb = first_text(object, "bndbox");
    double x0 = 0, y0 = 0, x1 = 0, y1 = 0;
    if (!parse_number(first_text(bb, "xmin"), &x0) || !parse_number(first_text(bb, "ymin"), &y0) ||
        !parse_number(first_text(bb, "xmax"), &x1) || !parse_number(first_text(bb, "ymax"), &y1)) {
      report.problems.push_back(where +
                                ": <bndbox> needs numeric xmin ymin xmax ymax; image skipped");
      return false;
    }
    // VOC pixel coordinates are 1-based (ultralytics' VOC conversion subtracts 1 from the centre).
    Box box;
    if (!to_yolo(x0 - 1, y0 - 1, x1 - 1, y1 - 1, w, h, static_cast<int>(it - names.begin()),
                 &box)) {
      report.problems.push_back(where + ": empty box skipped");
      continue;
    }
    boxes.push_back(box);
  }
  return true;
}

// One image of a split: its label file written and its image placed, or a problem reported.
void convert_voc_image(const fs::path& root, const std::string& id, const fs::path& out_images,
                       const fs::path& out_labels, const ConvertOptions& o, ConvertReport& report) {
  std::error_code ec;
  fs::path xml_path = root / "Annotations" / (id + ".xml");
  std::string xml;
  try {
    xml = strip_comments(read_file(xml_path.string()));
  } catch (const Error& e) {
    report.problems.push_back(e.what());
    return;
  }
  std::string size = first_text(xml, "size");
  double w = 0, h = 0;
  if (!parse_number(first_text(size, "width"), &w) ||
      !parse_number(first_text(size, "height"), &h) || w <= 0 || h <= 0) {
    report.problems.push_back(xml_path.string() +
                              ": <size> has no positive width and height; skipped");
    return;
  }
  std::string filename = first_text(xml, "filename");
  fs::path src = root / "JPEGImages" / (filename.empty() ? id + ".jpg" : filename);
  if (!fs::is_regular_file(src, ec)) src = root / "JPEGImages" / (id + ".jpg");
  if (!fs::is_regular_file(src, ec)) {
    report.problems.push_back("image " + src.string() + " is missing; skipped");
    return;
  }
  std::vector<Box> boxes;
  if (!voc_boxes(xml, xml_path.string(), w, h, o, report, boxes)) return;
  fs::path name = src.filename();
  place_image(src, out_images / name, o.copy);
  if (!boxes.empty()) write_labels(out_labels / name.replace_extension(".txt"), boxes);
  ++report.images;
  report.boxes += static_cast<int>(boxes.size());
}

}  // namespace

ConvertReport convert_voc(const std::string& voc_root, const ConvertOptions& o) {
  fs::path root(voc_root);
  std::error_code ec;
  if (!fs::is_directory(root / "Annotations", ec)) {
    throw Error(voc_root +
                " is not a VOC root: Annotations/ is missing (expected Annotations/, "
                "JPEGImages/, ImageSets/Main/)");
  }
  ConvertReport report;
  std::map<std::string, std::string> yaml_splits;
  for (auto& [split, ids] : voc_split_ids(root, o)) {
    if (ids.empty()) throw Error("VOC split '" + split + "' lists no image");
    report.splits.push_back(split);
    prepare_split_folders(o, split);
    const fs::path out_images = fs::path(o.out) / "images" / split;
    const fs::path out_labels = fs::path(o.out) / "labels" / split;
    Progress progress("convert " + split, static_cast<int64_t>(ids.size()), "img");
    for (const std::string& id : ids) {
      progress.advance();
      convert_voc_image(root, id, out_images, out_labels, o, report);
    }
    progress.finish();
    yaml_splits[split_key_for(split)] = "images/" + split;
  }
  report.yaml_path = write_data_yaml(o.out, voc_names(), yaml_splits);
  for (const auto& p : report.problems) log::warn(p);
  return report;
}

}  // namespace mixnas::data
