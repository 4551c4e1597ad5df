#pragma once
// The batch loader: a pool of worker threads builds whole batches ahead of the consumer (a bounded
// prefetch window) and hands them out in order. Order and content depend only on the seed and the
// epoch, never on the number of threads or their timing.
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "datasets/augment.h"
#include "datasets/dataset.h"

namespace mixnas::data {

struct LoaderOptions {
  int batch_size = 16;
  int workers = 2;
  int prefetch = 4;  // batches built ahead of the consumer
  bool shuffle = true;
  bool drop_last = false;
  bool augment = true;  // false: letterbox only (validation)
  bool cache = false;   // decoded images from ImageCache::process() (config key `cache: ram`)
  uint64_t seed = 0;
  AugmentOptions aug;
  // Data-parallel jobs: every batch is share `shard` of `shards` equal contiguous parts of the
  // global batch of batch_size images (the last batch of an epoch may leave a share empty). Every
  // rank then counts the same batches, and sample i of the epoch is augmented the same way
  // whichever rank builds it.
  int shard = 0, shards = 1;
};

struct Batch {
  int64_t index = 0;  // batch number in the epoch
  int size = 0, channels = 3, height = 0, width = 0;
  std::vector<uint8_t> images;  // NCHW, RGB
  // One row per box: batch_idx, cls, cx, cy, w, h (normalised to the batch image size).
  std::vector<float> targets;
  std::vector<size_t> sample_indices;    // into the split's samples
  std::vector<LetterboxInfo> letterbox;  // validation batches: how to map back to the source
  int64_t num_targets() const { return static_cast<int64_t>(targets.size() / 6); }
  // The images as float NCHW in 0..1.
  std::vector<float> images_float() const;
};

// `batch` cut into micro-batches of `size` images, in order (the last may be smaller; an empty
// batch gives none). Targets keep their boxes with batch indices renumbered.
std::vector<Batch> split_batch(const Batch& batch, int size);

class BatchLoader {
 public:
  BatchLoader(const DetectionSplit& split, LoaderOptions options);
  ~BatchLoader();
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  int64_t batches_per_epoch() const;
  // Starts (or restarts) an epoch; workers begin filling the prefetch window.
  void start_epoch(int epoch);
  // The next batch of the epoch in order; false when the epoch is over. Rethrows a worker's error.
  bool next(Batch* batch);
  // Mosaic on or off from the next start_epoch (ultralytics' close_mosaic for the last epochs).
  void set_mosaic(bool on) { mosaic_requested_ = on; }
  // One sample through the same pipeline (for previews and tests).
  Annotated sample(int epoch, size_t position, LetterboxInfo* info = nullptr) const;

 private:
  void stop_workers();
  void worker_loop();
  Batch build_batch(int64_t b) const;
  Annotated load(size_t index) const;

  const DetectionSplit& split_;
  LoaderOptions options_;
  bool mosaic_requested_;
  bool mosaic_;  // fixed for the running epoch
  int epoch_ = -1;
  std::vector<size_t> order_;

  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<std::thread> workers_;
  std::map<int64_t, Batch> ready_;
  int64_t next_claim_ = 0;    // next batch a worker takes
  int64_t next_deliver_ = 0;  // next batch next() returns
  int in_flight_ = 0;         // claimed batches still being built
  bool stopping_ = false;
  std::exception_ptr failure_;
};

}  // namespace mixnas::data
