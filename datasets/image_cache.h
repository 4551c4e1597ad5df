#pragma once
// Decoded images kept in RAM between epochs (ultralytics' `cache: ram`): the loader decodes each
// file once per process instead of once per use (a mosaic reads four images per sample). The
// cache is shared by every loader of the process (search, finetune and baseline trainings read the
// same files) and stops growing at its byte budget; images beyond it are decoded on every use.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "datasets/image.h"

namespace mixnas::data {

class ImageCache {
 public:
  explicit ImageCache(size_t max_bytes) : max_bytes_(max_bytes) {}
  ImageCache(const ImageCache&) = delete;
  ImageCache& operator=(const ImageCache&) = delete;

  // The decoded image of `path`: from the cache, or decoded now (and kept while the budget lasts).
  // Throws mixnas::Error as load_image does; failures are not cached.
  std::shared_ptr<const Image> get(const std::string& path);

  size_t bytes() const;
  size_t images() const;
  size_t max_bytes() const { return max_bytes_; }
  void clear();

  // The process-wide cache; its budget is set on first use (see default_ram_budget()).
  static ImageCache& process();

 private:
  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<const Image>> images_;
  size_t bytes_ = 0;
  size_t max_bytes_;
};

// 40% of the memory the kernel reports available (MemAvailable), read once; 1 GiB when unknown.
size_t default_ram_budget();

}  // namespace mixnas::data
