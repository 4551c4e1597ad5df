#pragma once
// Small helpers for dataset tests: a scratch folder removed at the end, file writers.
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "datasets/image.h"

namespace mixnas::test {

class ScratchDir {
 public:
  explicit ScratchDir(const std::string& tag) {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() /
            ("mixnas-" + tag + "-" + std::to_string(rd()) + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string str() const { return path_.string(); }
  std::string operator/(const std::string& rel) const { return (path_ / rel).string(); }

 private:
  std::filesystem::path path_;
};

inline void write_text(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

inline void write_png(const std::string& path, int w, int h, uint8_t fill = 100) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  data::Image im(w, h, 3, fill);
  for (size_t i = 0; i < im.pixels.size(); ++i) im.pixels[i] = static_cast<uint8_t>(fill + i % 7);
  data::save_png(path, im);
}

}  // namespace mixnas::test
