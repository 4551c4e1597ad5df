#include "datasets/labels.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <sstream>
#include <tuple>

namespace mixnas::data {
namespace {

bool parse_float(const std::string& token, double* value) {
  if (token.empty()) return false;
  errno = 0;
  char* end = nullptr;
  *value = std::strtod(token.c_str(), &end);
  return errno == 0 && end == token.c_str() + token.size() && std::isfinite(*value);
}

std::vector<std::string> tokens_of(const std::string& line) {
  std::vector<std::string> out;
  std::istringstream in(line);
  std::string t;
  while (in >> t) out.push_back(t);
  return out;
}

}  // namespace

LabelParse parse_labels(const std::string& text, const std::string& path, int num_classes) {
  LabelParse result;
  std::istringstream in(text);
  std::string line;
  int line_no = 0;
  std::set<std::tuple<int, float, float, float, float>> seen;
  auto problem = [&](const std::string& what) {
    result.problems.push_back(path + ":" + std::to_string(line_no) + ": " + what);
  };
  static const char* kNames[] = {"class", "x_center", "y_center", "width", "height"};
  while (std::getline(in, line)) {
    ++line_no;
    std::vector<std::string> t = tokens_of(line);
    if (t.empty()) continue;
    if (t.size() != 5) {
      problem("expected 5 columns (class x_center y_center width height), found " +
              std::to_string(t.size()));
      continue;
    }
    double v[5];
    bool numeric = true;
    for (int i = 0; i < 5; ++i) {
      if (!parse_float(t[i], &v[i])) {
        problem(std::string("column ") + kNames[i] + " is not a number: '" + t[i] + "'");
        numeric = false;
        break;
      }
    }
    if (!numeric) continue;
    if (v[0] != std::floor(v[0]) || v[0] < 0 || v[0] >= num_classes) {
      problem("class id " + t[0] + " is not an integer in 0.." + std::to_string(num_classes - 1) +
              " (the dataset YAML names " + std::to_string(num_classes) + " classes)");
      continue;
    }
    bool in_range = true;
    for (int i = 1; i < 5; ++i) {
      if (v[i] < 0 || v[i] > 1) {
        problem(std::string(kNames[i]) + " = " + t[i] +
                " is outside 0..1 (coordinates must be normalised by the image size)");
        in_range = false;
        break;
      }
    }
    if (!in_range) continue;
    Box b{static_cast<int>(v[0]), static_cast<float>(v[1]), static_cast<float>(v[2]),
          static_cast<float>(v[3]), static_cast<float>(v[4])};
    // Checked as stored: 1e-50 is positive as a double and 0 as a float.
    if (b.w <= 0 || b.h <= 0) {
      problem("zero-size box (width " + t[3] + ", height " + t[4] + ")");
      continue;
    }
    if (!seen.insert({b.cls, b.cx, b.cy, b.w, b.h}).second) {
      ++result.duplicates_removed;
      continue;
    }
    result.boxes.push_back(b);
  }
  return result;
}

std::string label_path_for(const std::string& image_path) {
  std::string p = image_path;
  auto pos = p.rfind("/images/");
  if (pos != std::string::npos) {
    p.replace(pos, 8, "/labels/");
  } else if (p.rfind("images/", 0) == 0) {
    p.replace(0, 7, "labels/");
  }
  auto dot = p.find_last_of('.');
  auto slash = p.find_last_of('/');
  if (dot != std::string::npos && (slash == std::string::npos || dot > slash)) p.erase(dot);
  return p + ".txt";
}

std::string format_labels(const std::vector<Box>& boxes) {
  std::string out;
  char row[128];
  for (const Box& b : boxes) {
    std::snprintf(row, sizeof row, "%d %.6f %.6f %.6f %.6f\n", b.cls, b.cx, b.cy, b.w, b.h);
    out += row;
  }
  return out;
}

}  // namespace mixnas::data
