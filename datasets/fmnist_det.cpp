#include "datasets/fmnist_det.h"

#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/log.h"
#include "core/progress.h"
#include "datasets/dataset.h"
#include "datasets/rng.h"

namespace mixnas::data {
namespace fs = std::filesystem;

namespace {

std::string read_gzip(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) {
    throw Error("cannot open " + path +
                " (Fashion-MNIST: install the Debian package dataset-fashion-mnist or pass "
                "--source DIR)");
  }
  std::string out;
  char buf[1 << 16];
  int n;
  while ((n = gzread(f, buf, sizeof buf)) > 0) out.append(buf, n);
  int err = 0;
  const char* msg = gzerror(f, &err);
  std::string reason = msg ? msg : "";
  gzclose(f);
  if (n < 0 || (err != Z_OK && err != Z_STREAM_END)) {
    throw Error("cannot decompress " + path + ": " + reason + " (corrupt or truncated gzip)");
  }
  return out;
}

uint32_t be32(const std::string& s, size_t at) {
  return (uint32_t(uint8_t(s[at])) << 24) | (uint32_t(uint8_t(s[at + 1])) << 16) |
         (uint32_t(uint8_t(s[at + 2])) << 8) | uint32_t(uint8_t(s[at + 3]));
}

struct Rgb {
  double r, g, b;
};

Rgb random_colour(Rng& rng) {
  return {rng.uniform(0, 255), rng.uniform(0, 255), rng.uniform(0, 255)};
}

double luminance(const uint8_t* p) {
  return 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2];
}

uint8_t clamp_u8(double v) {
  return static_cast<uint8_t>(std::lround(std::clamp(v, 0.0, 255.0)));
}

// Backgrounds: noise around a colour, a two-colour gradient, stripes/checks, or smooth blotches.
Image render_background(Rng& rng, int size) {
  Image im(size, size, 3);
  Rgb a = random_colour(rng), b = random_colour(rng);
  int kind = rng.range(0, 3);
  // Pixel noise on some backgrounds only: it is incompressible and would bloat the PNGs.
  double noise = rng.chance(0.4) ? rng.uniform(4, 24) : 0.0;
  double angle = rng.uniform(0, 6.283185307179586);
  double ca = std::cos(angle), sa = std::sin(angle);
  double freq = rng.uniform(0.05, 0.6);
  bool checks = rng.chance(0.3);
  int cell = rng.range(4, 24);
  const int grid = 6;
  double blot[grid + 1][grid + 1];
  for (auto& row : blot) {
    for (double& v : row) v = rng.uniform();
  }
  for (int y = 0; y < size; ++y) {
    for (int x = 0; x < size; ++x) {
      double t = 0;
      double u = static_cast<double>(x) / size, v = static_cast<double>(y) / size;
      switch (kind) {
        case 0:
          t = 0;
          break;
        case 1:
          t = std::clamp(0.5 + (u - 0.5) * ca + (v - 0.5) * sa, 0.0, 1.0);
          break;
        case 2: {
          if (checks) {
            t = ((x / cell + y / cell) & 1) ? 0.8 : 0.2;
          } else {
            t = 0.5 + 0.5 * std::sin((x * ca + y * sa) * freq);
          }
          break;
        }
        default: {
          double gx = u * grid, gy = v * grid;
          int ix = static_cast<int>(gx), iy = static_cast<int>(gy);
          double fx = gx - ix, fy = gy - iy;
          t = blot[iy][ix] * (1 - fx) * (1 - fy) + blot[iy][ix + 1] * fx * (1 - fy) +
              blot[iy + 1][ix] * (1 - fx) * fy + blot[iy + 1][ix + 1] * fx * fy;
        }
      }
      double n = noise > 0 ? noise * (rng.uniform() - 0.5) : 0.0;
      uint8_t* p = im.at(x, y);
      p[0] = clamp_u8(a.r + (b.r - a.r) * t + n);
      p[1] = clamp_u8(a.g + (b.g - a.g) * t + n);
      p[2] = clamp_u8(a.b + (b.b - a.b) * t + n);
    }
  }
  return im;
}

// Bilinear resize of a 28x28 article to side x side (pixel centres aligned).
std::vector<uint8_t> scale_article(const uint8_t* src, int side) {
  std::vector<uint8_t> out(static_cast<size_t>(side) * side);
  double s = 28.0 / side;
  for (int y = 0; y < side; ++y) {
    double sy = std::clamp((y + 0.5) * s - 0.5, 0.0, 27.0);
    int y0 = static_cast<int>(sy), y1 = std::min(y0 + 1, 27);
    double fy = sy - y0;
    for (int x = 0; x < side; ++x) {
      double sx = std::clamp((x + 0.5) * s - 0.5, 0.0, 27.0);
      int x0 = static_cast<int>(sx), x1 = std::min(x0 + 1, 27);
      double fx = sx - x0;
      double v = src[y0 * 28 + x0] * (1 - fx) * (1 - fy) + src[y0 * 28 + x1] * fx * (1 - fy) +
                 src[y1 * 28 + x0] * (1 - fx) * fy + src[y1 * 28 + x1] * fx * fy;
      out[static_cast<size_t>(y) * side + x] = clamp_u8(v);
    }
  }
  return out;
}

struct PixelBox {
  int x0, y0, x1, y1;  // inclusive-exclusive
  double area() const { return double(x1 - x0) * (y1 - y0); }
};

double intersection(const PixelBox& a, const PixelBox& b) {
  int w = std::min(a.x1, b.x1) - std::max(a.x0, b.x0);
  int h = std::min(a.y1, b.y1) - std::max(a.y0, b.y0);
  return (w > 0 && h > 0) ? double(w) * h : 0.0;
}

void write_small_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw Error("cannot write " + path + " (disk full or no permission?)");
}

}  // namespace

const std::vector<std::string>& fashion_mnist_names() {
  static const std::vector<std::string> names = {"T-shirt/top", "Trouser",   "Pullover", "Dress",
                                                 "Coat",        "Sandal",    "Shirt",    "Sneaker",
                                                 "Bag",         "Ankle boot"};
  return names;
}

FashionMnist load_fashion_mnist(const std::string& dir, bool train) {
  std::string prefix = dir + "/" + (train ? "train" : "t10k");
  std::string images_path = prefix + "-images-idx3-ubyte.gz";
  std::string labels_path = prefix + "-labels-idx1-ubyte.gz";
  std::string images = read_gzip(images_path);
  std::string labels = read_gzip(labels_path);
  if (images.size() < 16 || be32(images, 0) != 2051) {
    throw Error(images_path + " is not an IDX image file (magic 2051 expected)");
  }
  if (labels.size() < 8 || be32(labels, 0) != 2049) {
    throw Error(labels_path + " is not an IDX label file (magic 2049 expected)");
  }
  uint32_t n = be32(images, 4);
  if (be32(images, 8) != 28 || be32(images, 12) != 28) {
    throw Error(images_path + ": expected 28x28 images");
  }
  if (images.size() != 16 + size_t(n) * 784) throw Error(images_path + " is truncated");
  if (be32(labels, 4) != n || labels.size() != 8 + size_t(n)) {
    throw Error(labels_path + " does not hold one label per image of " + images_path);
  }
  FashionMnist out;
  out.count = static_cast<int>(n);
  out.pixels.assign(images.begin() + 16, images.end());
  out.labels.assign(labels.begin() + 8, labels.end());
  for (uint8_t l : out.labels) {
    if (l > 9) throw Error(labels_path + ": label " + std::to_string(l) + " is not in 0..9");
  }
  return out;
}

FmnistScene render_fmnist_scene(const FashionMnist& source, const FmnistDetOptions& o, int split,
                                int index, bool keep_layers) {
  Rng rng = Rng::derive(o.seed, static_cast<uint64_t>(split) + 1, static_cast<uint64_t>(index));
  const int size = o.imgsz;
  FmnistScene scene;
  scene.image = render_background(rng, size);
  if (keep_layers) scene.background = scene.image;
  int wanted = rng.range(o.min_objects, o.max_objects);
  int max_side = std::min(o.max_size, size);
  int min_side = std::min(o.min_size, max_side);
  std::vector<PixelBox> placed;
  for (int attempt = 0; attempt < wanted * 20 && static_cast<int>(placed.size()) < wanted;
       ++attempt) {
    int src = rng.range(0, source.count - 1);
    // Log-uniform sizes: as many small articles as large ones.
    int side = static_cast<int>(
        std::lround(std::exp(rng.uniform(std::log(double(min_side)), std::log(double(max_side))))));
    side = std::clamp(side, min_side, max_side);
    int ox = rng.range(0, size - side), oy = rng.range(0, size - side);
    double gain = rng.uniform(0.7, 1.0);
    std::vector<uint8_t> art = scale_article(source.image(src), side);
    PixelBox box{side, side, -1, -1};
    for (int y = 0; y < side; ++y) {
      for (int x = 0; x < side; ++x) {
        if (art[static_cast<size_t>(y) * side + x] > kFmnistAlphaThreshold) {
          box.x0 = std::min(box.x0, x);
          box.y0 = std::min(box.y0, y);
          box.x1 = std::max(box.x1, x + 1);
          box.y1 = std::max(box.y1, y + 1);
        }
      }
    }
    if (box.x1 < 0) continue;  // nothing above the threshold at this scale
    box = {box.x0 + ox, box.y0 + oy, box.x1 + ox, box.y1 + oy};
    bool clash = false;
    for (const PixelBox& other : placed) {
      double inter = intersection(box, other);
      double iou = inter / (box.area() + other.area() - inter);
      // Mild overlap only: neither article may be more than half hidden.
      if (iou > o.max_iou || inter > 0.5 * std::min(box.area(), other.area())) clash = true;
    }
    if (clash) continue;
    placed.push_back(box);
    // A tint that stands out from the background under the article (in luminance).
    double mean = 0;
    for (int y = box.y0; y < box.y1; ++y) {
      for (int x = box.x0; x < box.x1; ++x) mean += luminance(scene.image.at(x, y));
    }
    mean /= box.area();
    Rgb tint = random_colour(rng);
    for (int k = 0;
         k < 8 &&
         std::abs(0.8 * gain * (0.299 * tint.r + 0.587 * tint.g + 0.114 * tint.b) - mean) < 60;
         ++k) {
      tint = random_colour(rng);
    }
    std::vector<uint8_t> alpha_map;
    if (keep_layers) alpha_map.assign(static_cast<size_t>(size) * size, 0);
    // Alpha ramps from 0 at the threshold, so nothing outside the tight box changes.
    for (int y = 0; y < side; ++y) {
      for (int x = 0; x < side; ++x) {
        int v = art[static_cast<size_t>(y) * side + x];
        if (v <= kFmnistAlphaThreshold) continue;
        double a =
            std::min(1.0, 1.6 * (v - kFmnistAlphaThreshold) / (255.0 - kFmnistAlphaThreshold));
        double shade = gain * (0.45 + 0.55 * v / 255.0);
        uint8_t* p = scene.image.at(ox + x, oy + y);
        p[0] = clamp_u8(p[0] + a * (tint.r * shade - p[0]));
        p[1] = clamp_u8(p[1] + a * (tint.g * shade - p[1]));
        p[2] = clamp_u8(p[2] + a * (tint.b * shade - p[2]));
        if (keep_layers)
          alpha_map[static_cast<size_t>(oy + y) * size + ox + x] = static_cast<uint8_t>(v);
      }
    }
    if (keep_layers) scene.alphas.push_back(std::move(alpha_map));
    float inv = 1.0f / size;
    scene.boxes.push_back({source.labels[src], 0.5f * (box.x0 + box.x1) * inv,
                           0.5f * (box.y0 + box.y1) * inv, (box.x1 - box.x0) * inv,
                           (box.y1 - box.y0) * inv});
  }
  return scene;
}

std::string make_fmnist_det(const FmnistDetOptions& o) {
  if (o.imgsz < 32 || o.imgsz > 4096)
    throw Error("--imgsz must be in 32..4096, got " + std::to_string(o.imgsz));
  if (o.train < 0 || o.val < 0 || o.train + o.val == 0) {
    throw Error("--train and --val must be >= 0 and not both 0");
  }
  if (o.min_objects < 1 || o.max_objects < o.min_objects)
    throw Error("objects per image must be 1..N");
  fs::path out(o.out);
  std::string yaml_path = (out / "fmnist-det.yaml").string();
  std::error_code ec;
  bool exists =
      fs::exists(out / "images", ec) || fs::exists(out / "labels", ec) || fs::exists(yaml_path, ec);
  if (exists && !o.force) {
    throw Error(o.out + " already holds a dataset; pass --force to replace it or choose --out");
  }
  if (exists) {
    // Only the dataset's own parts: a shorter rerun must not leave stale images behind.
    for (const char* part : {"images/train", "images/val", "labels/train", "labels/val"}) {
      fs::remove_all(out / part, ec);
    }
    fs::remove(label_cache_path((out / "labels/train").string()), ec);
    fs::remove(label_cache_path((out / "labels/val").string()), ec);
    fs::remove(yaml_path, ec);
  }
  struct Job {
    const char* split;
    int split_id;
    int count;
    bool train_source;
  };
  std::vector<Job> jobs = {{"train", 0, o.train, true}, {"val", 1, o.val, false}};
  int threads = o.threads > 0 ? o.threads
                              : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (const Job& job : jobs) {
    if (job.count == 0) continue;
    FashionMnist source = load_fashion_mnist(o.source_dir, job.train_source);
    fs::create_directories(out / "images" / job.split);
    fs::create_directories(out / "labels" / job.split);
    Progress progress(std::string("fmnist-det ") + job.split, job.count, "img");
    std::mutex progress_mutex;
    std::atomic<int> next{0};
    std::exception_ptr failure;
    auto work = [&] {
      try {
        for (int i = next++; i < job.count; i = next++) {
          FmnistScene scene = render_fmnist_scene(source, o, job.split_id, i);
          char name[32];
          std::snprintf(name, sizeof name, "%06d", i);
          write_small_file((out / "images" / job.split / (std::string(name) + ".png")).string(),
                           encode_png(scene.image, 1));
          write_small_file((out / "labels" / job.split / (std::string(name) + ".txt")).string(),
                           format_labels(scene.boxes));
          std::lock_guard<std::mutex> lock(progress_mutex);
          progress.advance();
        }
      } catch (...) {
        std::lock_guard<std::mutex> lock(progress_mutex);
        if (!failure) failure = std::current_exception();
        next = job.count;
      }
    };
    std::vector<std::thread> pool;
    for (int t = 1; t < threads; ++t) pool.emplace_back(work);
    work();
    for (auto& t : pool) t.join();
    progress.finish();
    if (failure) std::rethrow_exception(failure);
  }
  std::string yaml = "# fmnist-det: Fashion-MNIST articles on varied backgrounds, made by\n";
  yaml += "# mixnas data make fmnist-det --train " + std::to_string(o.train) + " --val " +
          std::to_string(o.val) + " --imgsz " + std::to_string(o.imgsz) + " --seed " +
          std::to_string(o.seed) + "\npath: .\n";
  if (o.train > 0) yaml += "train: images/train\n";
  if (o.val > 0) yaml += "val: images/val\n";
  yaml += "nc: 10\nnames:\n";
  for (size_t i = 0; i < fashion_mnist_names().size(); ++i) {
    yaml += "  " + std::to_string(i) + ": " + fashion_mnist_names()[i] + "\n";
  }
  write_file_atomic(yaml_path, yaml);
  log::info("fmnist-det: ", o.train, " train and ", o.val, " val images written to ", o.out);
  return yaml_path;
}

}  // namespace mixnas::data
