#pragma once
// fmnist-det: a small built-in detection dataset made from Fashion-MNIST articles pasted at random
// scale, position and tint on varied backgrounds. Deterministic for a seed (same bytes).
#include <cstdint>
#include <string>
#include <vector>

#include "datasets/image.h"
#include "datasets/labels.h"

namespace mixnas::data {

// The 10 Fashion-MNIST classes, in label order.
const std::vector<std::string>& fashion_mnist_names();

// One split of Fashion-MNIST as 28x28 grey images.
struct FashionMnist {
  int count = 0;
  std::vector<uint8_t> pixels;  // count * 784
  std::vector<uint8_t> labels;  // count
  const uint8_t* image(int i) const { return pixels.data() + static_cast<size_t>(i) * 784; }
};

// Reads <dir>/train-*-ubyte.gz (train) or <dir>/t10k-*-ubyte.gz (test) in IDX format. Throws
// mixnas::Error naming the file when it is missing, truncated or not IDX.
FashionMnist load_fashion_mnist(const std::string& dir, bool train);

struct FmnistDetOptions {
  std::string out = "datasets/fmnist-det";
  std::string source_dir = "/usr/share/datasets/fashion-mnist";
  int train = 8000;
  int val = 1000;
  int imgsz = 160;
  uint64_t seed = 0;
  int threads = 0;     // 0 = hardware concurrency
  bool force = false;  // replace an existing dataset in `out`
  int min_objects = 1, max_objects = 8;
  int min_size = 12, max_size = 96;  // article side in pixels (before the tight box)
  double max_iou = 0.3;              // between article boxes
};

// The alpha threshold (0..255) above which an article pixel belongs to the article and its box.
constexpr int kFmnistAlphaThreshold = 40;

struct FmnistScene {
  Image image;
  std::vector<Box> boxes;
  // Only with keep_layers: the background before pasting, and each article's alpha (imgsz^2,
  // 0 outside the article; nonzero exactly where it was blended in), in box order.
  Image background;
  std::vector<std::vector<uint8_t>> alphas;
};

// Renders image `index` of a split (split 0 = train, 1 = val) from `source`. Depends only on the
// arguments, never on threads or call order.
FmnistScene render_fmnist_scene(const FashionMnist& source, const FmnistDetOptions& options,
                                int split, int index, bool keep_layers = false);

// Writes the dataset (images/{train,val}/*.png, labels/{train,val}/*.txt, fmnist-det.yaml) and
// returns the YAML path. Throws mixnas::Error when `out` holds a dataset and force is off.
std::string make_fmnist_det(const FmnistDetOptions& options);

}  // namespace mixnas::data
