#include "apps/mixnas/prediction_files.h"

#include <cstdio>
#include <filesystem>

#include "core/atomic_file.h"
#include "core/error.h"

namespace mixnas::cli {
namespace fs = std::filesystem;

namespace {

// %g as ultralytics writes label rows ("%g " * n): shortest form, 6 significant digits.
std::string g(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%g", v);
  return b;
}

std::string fixed(double v, int decimals) {
  char b[48];
  std::snprintf(b, sizeof b, "%.*f", decimals, v);
  return b;
}

std::string json_image_id(const std::string& image_path) {
  const std::string stem = fs::path(image_path).stem().string();
  const bool numeric = !stem.empty() && stem.size() < 18 &&
                       stem.find_first_not_of("0123456789") == std::string::npos;
  if (numeric) return std::to_string(std::stoll(stem));
  std::string quoted = "\"";
  for (char c : stem) {
    if (c == '"' || c == '\\') quoted += '\\';
    quoted += c;
  }
  return quoted + "\"";
}

}  // namespace

void write_yolo_txt(const std::string& labels_dir, const std::string& image_path, int width,
                    int height, const std::vector<PredictedBox>& boxes, bool with_conf) {
  if (boxes.empty()) return;
  std::string text;
  for (const PredictedBox& b : boxes) {
    const double cx = 0.5 * (b.x1 + b.x2) / width, cy = 0.5 * (b.y1 + b.y2) / height;
    const double w = double(b.x2 - b.x1) / width, h = double(b.y2 - b.y1) / height;
    text += std::to_string(b.cls) + " " + g(cx) + " " + g(cy) + " " + g(w) + " " + g(h);
    if (with_conf) text += " " + g(b.score);
    text += "\n";
  }
  fs::create_directories(labels_dir);
  write_file_atomic(
      (fs::path(labels_dir) / (fs::path(image_path).stem().string() + ".txt")).string(), text);
}

void CocoResultsWriter::add(const std::string& image_path, const std::vector<PredictedBox>& boxes) {
  const std::string id = json_image_id(image_path);
  for (const PredictedBox& b : boxes) {
    if (!category_ids_.empty() && (b.cls < 0 || b.cls >= int(category_ids_.size())))
      throw Error("predictions: class " + std::to_string(b.cls) + " has no category id (" +
                  std::to_string(category_ids_.size()) + " given)");
    const int category = category_ids_.empty() ? b.cls : category_ids_[size_t(b.cls)];
    // As ultralytics' save_json: bbox rounded to 3 decimals, score to 5.
    rows_.push_back("{\"image_id\": " + id + ", \"category_id\": " + std::to_string(category) +
                    ", \"bbox\": [" + fixed(b.x1, 3) + ", " + fixed(b.y1, 3) + ", " +
                    fixed(b.x2 - b.x1, 3) + ", " + fixed(b.y2 - b.y1, 3) +
                    "], \"score\": " + fixed(b.score, 5) + "}");
  }
}

void CocoResultsWriter::write(const std::string& path) const {
  std::string text = "[";
  for (size_t i = 0; i < rows_.size(); ++i) text += (i ? ",\n " : "") + rows_[i];
  write_file_atomic(path, text + "]\n");
}

}  // namespace mixnas::cli
