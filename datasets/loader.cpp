#include "datasets/loader.h"

#include <algorithm>
#include <numeric>

#include "core/error.h"
#include "datasets/image_cache.h"

namespace mixnas::data {

namespace {
constexpr uint64_t kShuffleStream = 0x5348554646ULL;
constexpr uint64_t kSampleStream = 0x53414d504cULL;
}  // namespace

std::vector<float> Batch::images_float() const {
  std::vector<float> out(images.size());
  for (size_t i = 0; i < images.size(); ++i) out[i] = images[i] * (1.0f / 255.0f);
  return out;
}

BatchLoader::BatchLoader(const DetectionSplit& split, LoaderOptions options)
    : split_(split),
      options_(std::move(options)),
      mosaic_requested_(options_.aug.mosaic),
      mosaic_(options_.aug.mosaic) {
  if (options_.batch_size < 1) throw Error("loader: batch size must be >= 1");
  if (options_.workers < 1) options_.workers = 1;
  if (options_.prefetch < 1) options_.prefetch = 1;
  if (options_.aug.imgsz < 32) throw Error("loader: imgsz must be >= 32");
  if (split_.size() == 0) throw Error("loader: the split has no sample");
  if (options_.shards < 1 || options_.shard < 0 || options_.shard >= options_.shards ||
      options_.batch_size % options_.shards != 0) {
    throw Error("loader: batch size " + std::to_string(options_.batch_size) +
                " cannot be shared by " + std::to_string(options_.shards) +
                " ranks (it must be a multiple of the number of processes)");
  }
}

BatchLoader::~BatchLoader() {
  stop_workers();
}

int64_t BatchLoader::batches_per_epoch() const {
  int64_t n = static_cast<int64_t>(split_.size()), b = options_.batch_size;
  return options_.drop_last ? n / b : (n + b - 1) / b;
}

Annotated BatchLoader::load(size_t index) const {
  const Sample& s = split_.samples().at(index);
  if (options_.cache) return {*ImageCache::process().get(s.image_path), s.boxes};
  return {load_image(s.image_path), s.boxes};
}

Annotated BatchLoader::sample(int epoch, size_t position, LetterboxInfo* info) const {
  size_t index = order_.empty() || epoch != epoch_ ? position : order_.at(position);
  if (!options_.augment)
    return letterbox(load(index), options_.aug.imgsz, info, options_.aug.pad_value);
  Rng rng = Rng::derive(options_.seed ^ kSampleStream, static_cast<uint64_t>(epoch), position);
  return augment_sample(
      index, split_.size(), [this](size_t i) { return load(i); }, rng, options_.aug, mosaic_);
}

void BatchLoader::start_epoch(int epoch) {
  stop_workers();
  epoch_ = epoch;
  mosaic_ = mosaic_requested_;
  order_.resize(split_.size());
  std::iota(order_.begin(), order_.end(), size_t{0});
  if (options_.shuffle) {
    // Fisher-Yates with the portable generator: the same order on every platform.
    Rng rng = Rng::derive(options_.seed ^ kShuffleStream, static_cast<uint64_t>(epoch));
    for (size_t i = order_.size(); i > 1; --i) std::swap(order_[i - 1], order_[rng.next() % i]);
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ready_.clear();
    next_claim_ = next_deliver_ = 0;
    in_flight_ = 0;
    stopping_ = false;
    failure_ = nullptr;
  }
  for (int t = 0; t < options_.workers; ++t) workers_.emplace_back([this] { worker_loop(); });
}

void BatchLoader::stop_workers() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
  workers_.clear();
}

void BatchLoader::worker_loop() {
  const int64_t total = batches_per_epoch();
  while (true) {
    int64_t b;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait(lock, [&] {
        return stopping_ || next_claim_ >= total || next_claim_ < next_deliver_ + options_.prefetch;
      });
      if (stopping_ || next_claim_ >= total) return;
      b = next_claim_++;
      ++in_flight_;
    }
    Batch batch;
    try {
      batch = build_batch(b);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!failure_) failure_ = std::current_exception();
      stopping_ = true;
      --in_flight_;
      cv_.notify_all();
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ready_.emplace(b, std::move(batch));
      --in_flight_;
    }
    cv_.notify_all();
  }
}

Batch BatchLoader::build_batch(int64_t b) const {
  const size_t share = static_cast<size_t>(options_.batch_size / options_.shards);
  const size_t begin = std::min(
      split_.size(), static_cast<size_t>(b) * options_.batch_size + options_.shard * share);
  const size_t end = std::min(split_.size(), begin + share);
  const int S = options_.aug.imgsz;
  Batch batch;
  batch.index = b;
  batch.size = static_cast<int>(end - begin);
  batch.height = batch.width = S;
  batch.images.resize(static_cast<size_t>(batch.size) * 3 * S * S);
  for (size_t pos = begin; pos < end; ++pos) {
    const int i = static_cast<int>(pos - begin);
    LetterboxInfo info;
    Annotated a = sample(epoch_, pos, &info);
    if (a.image.width != S || a.image.height != S || a.image.channels != 3) {
      throw Error("loader: internal size mismatch");
    }
    batch.sample_indices.push_back(order_[pos]);
    if (!options_.augment) batch.letterbox.push_back(info);
    uint8_t* dst = batch.images.data() + static_cast<size_t>(i) * 3 * S * S;
    const size_t plane = static_cast<size_t>(S) * S;
    for (size_t p = 0; p < plane; ++p) {
      dst[p] = a.image.pixels[p * 3];
      dst[plane + p] = a.image.pixels[p * 3 + 1];
      dst[2 * plane + p] = a.image.pixels[p * 3 + 2];
    }
    for (const Box& box : a.boxes) {
      batch.targets.insert(batch.targets.end(), {static_cast<float>(i), static_cast<float>(box.cls),
                                                 box.cx, box.cy, box.w, box.h});
    }
  }
  return batch;
}

std::vector<Batch> split_batch(const Batch& batch, int size) {
  if (size < 1) throw Error("split_batch: micro-batch size must be >= 1");
  std::vector<Batch> out;
  const size_t image_bytes = static_cast<size_t>(batch.channels) * batch.height * batch.width;
  for (int first = 0; first < batch.size; first += size) {
    Batch m;
    m.index = batch.index;
    m.size = std::min(size, batch.size - first);
    m.channels = batch.channels;
    m.height = batch.height;
    m.width = batch.width;
    const auto pixels = batch.images.begin() + static_cast<std::ptrdiff_t>(first * image_bytes);
    m.images.assign(pixels, pixels + static_cast<std::ptrdiff_t>(m.size * image_bytes));
    for (size_t t = 0; t + 6 <= batch.targets.size(); t += 6) {
      const int i = static_cast<int>(batch.targets[t]);
      if (i < first || i >= first + m.size) continue;
      m.targets.push_back(static_cast<float>(i - first));
      m.targets.insert(m.targets.end(), batch.targets.begin() + t + 1,
                       batch.targets.begin() + t + 6);
    }
    m.sample_indices.assign(batch.sample_indices.begin() + first,
                            batch.sample_indices.begin() + first + m.size);
    if (!batch.letterbox.empty())
      m.letterbox.assign(batch.letterbox.begin() + first, batch.letterbox.begin() + first + m.size);
    out.push_back(std::move(m));
  }
  return out;
}

bool BatchLoader::next(Batch* batch) {
  if (epoch_ < 0) throw Error("loader: call start_epoch() before next()");
  const int64_t total = batches_per_epoch();
  std::unique_lock<std::mutex> lock(mutex_);
  if (next_deliver_ >= total) return false;
  cv_.wait(lock, [&] { return ready_.count(next_deliver_) > 0 || (failure_ && in_flight_ == 0); });
  // Batches built before a failure are still handed out in order.
  if (!ready_.count(next_deliver_)) {
    std::exception_ptr f = failure_;
    lock.unlock();
    stop_workers();
    std::rethrow_exception(f);
  }
  auto it = ready_.find(next_deliver_);
  *batch = std::move(it->second);
  ready_.erase(it);
  ++next_deliver_;
  lock.unlock();
  cv_.notify_all();
  return true;
}

}  // namespace mixnas::data
