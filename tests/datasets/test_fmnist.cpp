// fmnist-det: deterministic bytes for a seed, tight boxes, 1..8 articles, a loadable dataset.
#include <catch2/catch.hpp>
#include <filesystem>

#include "core/atomic_file.h"
#include "core/error.h"
#include "datasets/dataset.h"
#include "datasets/fmnist_det.h"
#include "test_util.h"

using namespace mixnas;
using namespace mixnas::data;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {
const FashionMnist& t10k() {
  static FashionMnist m = load_fashion_mnist(FmnistDetOptions{}.source_dir, false);
  return m;
}

std::vector<std::string> files_under(const std::string& root) {
  std::vector<std::string> out;
  for (auto& e : fs::recursive_directory_iterator(root)) {
    if (e.is_regular_file()) out.push_back(fs::relative(e.path(), root).string());
  }
  std::sort(out.begin(), out.end());
  return out;
}
}  // namespace

TEST_CASE("Fashion-MNIST IDX files read", "[fmnist]") {
  const auto& m = t10k();
  CHECK(m.count == 10000);
  CHECK(m.pixels.size() == 10000u * 784u);
  CHECK(fashion_mnist_names().size() == 10);
  CHECK(fashion_mnist_names()[9] == "Ankle boot");
  CHECK_THROWS_WITH(load_fashion_mnist("/nonexistent", true),
                    Contains("/nonexistent/train-images"));
}

TEST_CASE("fmnist-det: same seed, same bytes, whatever the thread count", "[fmnist]") {
  test::ScratchDir a("fm-a"), b("fm-b"), c("fm-c");
  FmnistDetOptions o;
  o.train = 12;
  o.val = 8;
  o.imgsz = 96;
  o.seed = 7;
  o.out = a.str();
  o.threads = 1;
  std::string yaml = make_fmnist_det(o);
  o.out = b.str();
  o.threads = 2;
  make_fmnist_det(o);
  o.out = c.str();
  o.seed = 8;
  make_fmnist_det(o);

  auto files = files_under(a.str());
  REQUIRE(files.size() == 12 * 2 + 8 * 2 + 1);
  REQUIRE(files == files_under(b.str()));
  int differing = 0;
  for (const auto& f : files) {
    std::string fa = read_file(a / f);
    CHECK(fa == read_file(b / f));
    if (fa != read_file(c / f)) ++differing;
  }
  CHECK(differing >= 39);  // another seed: every image and label differs (the YAML header too)

  // A normal dataset: loads without defects, 1..8 boxes per image, 10 classes.
  auto config = load_dataset_config(yaml);
  CHECK(config.names == fashion_mnist_names());
  for (const char* split : {"train", "val"}) {
    auto s = DetectionSplit::load(config, split, {false, 1});
    CHECK(s.report().corrupt.empty());
    for (const auto& sample : s.samples()) {
      CHECK(sample.width == 96);
      CHECK(sample.height == 96);
      CHECK(sample.boxes.size() >= 1);
      CHECK(sample.boxes.size() <= 8);
    }
  }
  // An existing dataset is not overwritten without force.
  o.out = a.str();
  CHECK_THROWS_WITH(make_fmnist_det(o), Contains("--force"));
  o.force = true;
  o.train = 3;
  make_fmnist_det(o);
  CHECK(files_under(a / "images/train").size() == 3);
}

TEST_CASE("fmnist-det boxes are tight and the rest is background", "[fmnist]") {
  FmnistDetOptions o;
  o.imgsz = 160;
  int total_boxes = 0;
  std::vector<int> class_count(10, 0);
  for (int index = 0; index < 25; ++index) {
    FmnistScene s = render_fmnist_scene(t10k(), o, 1, index, true);
    REQUIRE(s.boxes.size() == s.alphas.size());
    REQUIRE(s.boxes.size() >= 1);
    REQUIRE(s.boxes.size() <= 8);
    total_boxes += static_cast<int>(s.boxes.size());
    const int n = o.imgsz;
    // Pixel boxes back from the normalised ones.
    std::vector<std::array<int, 4>> px;
    for (const Box& b : s.boxes) {
      ++class_count.at(b.cls);
      int x0 = static_cast<int>(std::lround((b.cx - b.w / 2) * n));
      int y0 = static_cast<int>(std::lround((b.cy - b.h / 2) * n));
      int x1 = static_cast<int>(std::lround((b.cx + b.w / 2) * n));
      int y1 = static_cast<int>(std::lround((b.cy + b.h / 2) * n));
      px.push_back({x0, y0, x1, y1});
      double side = std::max(b.w, b.h) * n;
      CHECK(side >= 4);
      CHECK(side <= 96);
    }
    for (size_t k = 0; k < px.size(); ++k) {
      auto [x0, y0, x1, y1] = px[k];
      const auto& alpha = s.alphas[k];
      bool top = false, bottom = false, left = false, right = false;
      for (int y = 0; y < n; ++y) {
        for (int x = 0; x < n; ++x) {
          bool inside = x >= x0 && x < x1 && y >= y0 && y < y1;
          bool on = alpha[y * n + x] > kFmnistAlphaThreshold;
          if (!inside) REQUIRE(alpha[y * n + x] == 0);  // nothing of the article outside its box
          if (on) {
            top |= y == y0;
            bottom |= y == y1 - 1;
            left |= x == x0;
            right |= x == x1 - 1;
          }
        }
      }
      CHECK((top && bottom && left && right));  // every edge of the box touches the article
    }
    // Pixels outside every box are exactly the background.
    for (int y = 0; y < n; ++y) {
      for (int x = 0; x < n; ++x) {
        bool covered = false;
        for (auto [x0, y0, x1, y1] : px) covered |= x >= x0 && x < x1 && y >= y0 && y < y1;
        if (covered) continue;
        for (int c = 0; c < 3; ++c) REQUIRE(s.image.at(x, y)[c] == s.background.at(x, y)[c]);
      }
    }
  }
  CHECK(total_boxes >= 25 * 2);  // about 4.5 articles on average
  int classes_seen = 0;
  for (int c : class_count) classes_seen += c > 0;
  CHECK(classes_seen >= 8);
}
