#include "datasets/image_cache.h"

#include <fstream>
#include <sstream>

namespace mixnas::data {

std::shared_ptr<const Image> ImageCache::get(const std::string& path) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = images_.find(path);
    if (it != images_.end()) return it->second;
  }
  // Decoded outside the lock: workers decode different files in parallel. Two workers that miss
  // the same file both decode it; the first one stored wins.
  auto image = std::make_shared<const Image>(load_image(path));
  const size_t size = image->pixels.size() + sizeof(Image) + path.size();
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = images_.find(path);
  if (it != images_.end()) return it->second;
  if (bytes_ + size <= max_bytes_) {
    images_.emplace(path, image);
    bytes_ += size;
  }
  return image;
}

size_t ImageCache::bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return bytes_;
}

size_t ImageCache::images() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return images_.size();
}

void ImageCache::clear() {
  std::lock_guard<std::mutex> lock(mutex_);
  images_.clear();
  bytes_ = 0;
}

ImageCache& ImageCache::process() {
  static ImageCache cache(default_ram_budget());
  return cache;
}

size_t default_ram_budget() {
  static const size_t budget = [] {
    std::ifstream in("/proc/meminfo");
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream s(line);
      std::string key;
      size_t kb = 0;
      if (s >> key >> kb && key == "MemAvailable:") return kb * 1024 / 10 * 4;
    }
    return size_t{1} << 30;
  }();
  return budget;
}

}  // namespace mixnas::data
