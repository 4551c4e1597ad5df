// Augmentations keep boxes consistent with pixels; the loader is deterministic across threads.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "core/error.h"
#include "datasets/augment.h"
#include "datasets/dataset.h"
#include "datasets/fmnist_det.h"
#include "datasets/image_cache.h"
#include "datasets/loader.h"
#include "test_util.h"

using namespace mixnas;
using namespace mixnas::data;
using Catch::Matchers::Contains;

namespace {

// A dark image with one bright rectangle [x0, x1) x [y0, y1) and its exact box.
Annotated rectangle_image(int w, int h, int x0, int y0, int x1, int y1, int cls = 1) {
  Annotated a;
  a.image = Image(w, h, 3, 10);
  for (int y = y0; y < y1; ++y) {
    for (int x = x0; x < x1; ++x) {
      uint8_t* p = a.image.at(x, y);
      p[0] = p[1] = p[2] = 250;
    }
  }
  a.boxes.push_back(
      {cls, (x0 + x1) / 2.0f / w, (y0 + y1) / 2.0f / h, float(x1 - x0) / w, float(y1 - y0) / h});
  return a;
}

struct PixBox {
  double x0, y0, x1, y1;
};
PixBox pixels_of(const Box& b, int w, int h) {
  return {(b.cx - b.w / 2) * w, (b.cy - b.h / 2) * h, (b.cx + b.w / 2) * w, (b.cy + b.h / 2) * h};
}

}  // namespace

TEST_CASE("flip twice is the identity", "[augment]") {
  Annotated a = rectangle_image(37, 20, 3, 4, 11, 15);
  a.image.at(0, 0)[0] = 1;  // asymmetric content
  Annotated b = a;
  flip_horizontal(&b);
  CHECK(b.image.pixels != a.image.pixels);
  CHECK(b.boxes[0].cx == Approx(1 - a.boxes[0].cx));
  CHECK(b.image.at(36, 0)[0] == 1);
  flip_horizontal(&b);
  CHECK(b.image.pixels == a.image.pixels);
  CHECK(b.boxes[0].cx == Approx(a.boxes[0].cx).margin(1e-7));
  CHECK(b.boxes[0].w == a.boxes[0].w);
}

TEST_CASE("letterbox geometry and the mapping round trip", "[augment]") {
  Annotated a = rectangle_image(300, 200, 30, 20, 120, 180);
  a.boxes.push_back({0, 0.9f, 0.5f, 0.2f, 1.0f});
  LetterboxInfo info;
  Annotated lb = letterbox(a, 160, &info);
  // Scale r = 160/300: 300x200 -> 160x107 (106.67 rounded), padded by (160-107)/2 = 26 rows on top.
  // Boxes move by r on both axes (ultralytics' LetterBox, the runtime's mapping back), not by the
  // rounded 107/200.
  CHECK(lb.image.width == 160);
  CHECK(lb.image.height == 160);
  CHECK(info.pad_x == 0);
  CHECK(info.pad_y == 26);
  CHECK(info.scale_x == Approx(160.0 / 300));
  CHECK(info.scale_y == Approx(160.0 / 300));
  CHECK(lb.image.at(80, 10)[0] == 114);   // padding above
  CHECK(lb.image.at(80, 150)[0] == 114);  // padding below (26 + 107 = 133)
  CHECK(lb.image.at(5, 30)[0] == 10);     // content
  for (size_t i = 0; i < a.boxes.size(); ++i) {
    Box back = letterbox_to_source(lb.boxes[i], info);
    CHECK(back.cls == a.boxes[i].cls);
    CHECK(back.cx == Approx(a.boxes[i].cx).margin(1e-6));
    CHECK(back.cy == Approx(a.boxes[i].cy).margin(1e-6));
    CHECK(back.w == Approx(a.boxes[i].w).margin(1e-6));
    CHECK(back.h == Approx(a.boxes[i].h).margin(1e-6));
  }
  // The full-height box spans the content rows from 26 to 26 + 200 r = 132.67 (the resized rows
  // end at 133: a third of a pixel of rounding).
  PixBox full = pixels_of(lb.boxes[1], 160, 160);
  CHECK(full.y0 == Approx(26).margin(1e-3));
  CHECK(full.y1 == Approx(26 + 200 * 160.0 / 300).margin(1e-3));
  // The rectangle's box still frames the bright pixels.
  PixBox r = pixels_of(lb.boxes[0], 160, 160);
  CHECK(lb.image.at(int((r.x0 + r.x1) / 2), int((r.y0 + r.y1) / 2))[0] > 200);
  CHECK(lb.image.at(int(r.x0) - 2, int((r.y0 + r.y1) / 2))[0] < 40);
}

TEST_CASE("random affine moves boxes with the pixels", "[augment]") {
  Annotated a = rectangle_image(128, 128, 40, 50, 90, 80);
  AugmentOptions o = AugmentOptions::none(128);
  for (uint64_t seed = 0; seed < 20; ++seed) {
    Rng rng(seed);
    Annotated out = random_affine(a, rng, 128, 0.3, 0.1, o);
    REQUIRE(out.boxes.size() == 1);
    PixBox b = pixels_of(out.boxes[0], 128, 128);
    // Bright pixels lie inside the box (1 px of interpolation blur), the centre is bright.
    for (int y = 0; y < 128; ++y) {
      for (int x = 0; x < 128; ++x) {
        if (out.image.at(x, y)[0] > 130) {
          REQUIRE(x >= b.x0 - 1);
          REQUIRE(x <= b.x1 + 1);
          REQUIRE(y >= b.y0 - 1);
          REQUIRE(y <= b.y1 + 1);
        }
      }
    }
    CHECK(out.image.at(int((b.x0 + b.x1) / 2), int((b.y0 + b.y1) / 2))[0] > 200);
  }
}

// The warp in exact double arithmetic, written from its definition (augment.h): the fixed-point
// implementation must stay within one code of it everywhere, pad pixels included.
Image warp_reference(const Image& in, int out_size, double s, double tx, double ty, uint8_t pad) {
  Image out(out_size, out_size, in.channels, pad);
  for (int y = 0; y < out_size; ++y) {
    const double sy = (y + 0.5 - ty) / s + in.height / 2.0 - 0.5;
    for (int x = 0; x < out_size; ++x) {
      const double sx = (x + 0.5 - tx) / s + in.width / 2.0 - 0.5;
      if (!(sx > -1 && sx < in.width && sy > -1 && sy < in.height)) continue;
      const int x0 = static_cast<int>(std::floor(sx)), y0 = static_cast<int>(std::floor(sy));
      const double fx = sx - x0, fy = sy - y0;
      for (int c = 0; c < in.channels; ++c) {
        auto px = [&](int xx, int yy) -> double {
          if (xx < 0 || yy < 0 || xx >= in.width || yy >= in.height) return pad;
          return in.at(xx, yy)[c];
        };
        const double v = px(x0, y0) * (1 - fx) * (1 - fy) + px(x0 + 1, y0) * fx * (1 - fy) +
                         px(x0, y0 + 1) * (1 - fx) * fy + px(x0 + 1, y0 + 1) * fx * fy;
        out.at(x, y)[c] = static_cast<uint8_t>(std::lround(std::clamp(v, 0.0, 255.0)));
      }
    }
  }
  return out;
}

TEST_CASE("scale_translate is within one code of exact bilinear sampling", "[augment]") {
  Rng rng(11);
  Annotated a;
  a.image = Image(83, 61, 3);
  for (auto& p : a.image.pixels) p = static_cast<uint8_t>(rng.next() % 256);
  AugmentOptions o = AugmentOptions::none(64);
  o.pad_value = 114;
  // Shrink, enlarge, identity-like and far-off placements (the last leaves most pixels as pad).
  const double cases[][3] = {{0.7, 32, 32},    {1.3, 20.25, 41.7}, {1.0, 41.5, 30.5},
                             {0.5, 3.3, 60.1}, {2.9, -50, 90},     {1.0, 500, 500}};
  for (const auto& c : cases) {
    Annotated out = scale_translate(a, 64, c[0], c[1], c[2], o);
    Image ref = warp_reference(a.image, 64, c[0], c[1], c[2], o.pad_value);
    REQUIRE(out.image.pixels.size() == ref.pixels.size());
    int worst = 0;
    for (size_t i = 0; i < ref.pixels.size(); ++i)
      worst = std::max(worst, std::abs(int(out.image.pixels[i]) - int(ref.pixels[i])));
    INFO("s " << c[0] << " tx " << c[1] << " ty " << c[2]);
    CHECK(worst <= 1);
  }
  // Scale 1 with the centre on a pixel grid point copies the source exactly.
  Annotated same = scale_translate(a, 83, 1.0, 83 / 2.0, 61 / 2.0, AugmentOptions::none(83));
  for (int y = 0; y < 61; ++y)
    for (int x = 0; x < 83; ++x)
      for (int k = 0; k < 3; ++k) REQUIRE(same.image.at(x, y)[k] == a.image.at(x, y)[k]);
}

TEST_CASE("boxes pushed out of the image are clipped or dropped", "[augment]") {
  Annotated a = rectangle_image(100, 100, 0, 0, 10, 10);
  a.boxes.push_back({2, 0.5f, 0.5f, 0.2f, 0.2f});
  AugmentOptions o = AugmentOptions::none(100);
  // Zoom x1 and shift by -0.45 * 100 is beyond what random_affine draws; use translate near 0.5.
  Rng rng(3);
  Annotated out = random_affine(a, rng, 100, 0.0, 0.0, o);  // identity transform
  REQUIRE(out.boxes.size() == 2);
  CHECK(out.boxes[0].cx == Approx(0.05f).margin(1e-6));
  // A tiny box (1.5 px) is dropped.
  Annotated tiny = rectangle_image(100, 100, 50, 50, 52, 52);
  tiny.boxes[0].w = 0.015f;
  Rng rng2(1);
  CHECK(random_affine(tiny, rng2, 100, 0.0, 0.0, o).boxes.empty());
}

TEST_CASE("mosaic: boxes inside the image and on their pixels", "[augment]") {
  AugmentOptions o;
  o.imgsz = 96;
  int boxes_seen = 0;
  for (uint64_t seed = 0; seed < 30; ++seed) {
    std::array<Annotated, 4> parts = {
        rectangle_image(96, 64, 10, 10, 50, 40, 0), rectangle_image(80, 96, 30, 20, 70, 90, 1),
        rectangle_image(96, 96, 40, 40, 90, 90, 2), rectangle_image(50, 96, 5, 5, 45, 60, 3)};
    Rng rng(seed);
    Annotated m = mosaic4(parts, rng, o);
    REQUIRE(m.image.width == 96);
    REQUIRE(m.image.height == 96);
    for (const Box& b : m.boxes) {
      ++boxes_seen;
      CHECK(b.cx - b.w / 2 >= -1e-6);
      CHECK(b.cy - b.h / 2 >= -1e-6);
      CHECK(b.cx + b.w / 2 <= 1 + 1e-6);
      CHECK(b.cy + b.h / 2 <= 1 + 1e-6);
      CHECK(b.w * 96 >= o.min_box_px - 1e-4);
      CHECK(b.h * 96 >= o.min_box_px - 1e-4);
      if (b.w * 96 >= 4 && b.h * 96 >= 4) {
        CHECK(m.image.at(int(b.cx * 96), int(b.cy * 96))[0] > 200);
      }
    }
  }
  CHECK(boxes_seen > 30);
}

TEST_CASE("HSV jitter keeps greys grey and changes colour", "[augment]") {
  Image im(4, 1, 3);
  uint8_t px[4][3] = {{128, 128, 128}, {200, 50, 50}, {20, 200, 60}, {0, 0, 0}};
  for (int i = 0; i < 4; ++i) std::copy(px[i], px[i] + 3, im.at(i, 0));
  Image j = im;
  Rng rng(5);
  hsv_jitter(&j, rng, 0.0, 0.0, 0.0);  // no gain: colours within HSV rounding
  for (size_t i = 0; i < im.pixels.size(); ++i) CHECK(std::abs(j.pixels[i] - im.pixels[i]) <= 4);
  Image k = im;
  Rng rng2(6);
  hsv_jitter(&k, rng2, 0.2, 0.7, 0.4);
  CHECK(k.at(0, 0)[0] == k.at(0, 0)[1]);
  CHECK(k.at(0, 0)[1] == k.at(0, 0)[2]);
  CHECK(k.at(3, 0)[0] == 0);
  CHECK(k.pixels != im.pixels);
  // Unit gains over a grid of 4,096 colours: the HSV round trip moves no channel by more than
  // its 8-bit HSV rounding.
  Image grid(4096, 1, 3);
  for (int i = 0; i < 4096; ++i) {
    uint8_t* p = grid.at(i, 0);
    p[0] = uint8_t((i & 15) * 17), p[1] = uint8_t(((i >> 4) & 15) * 17),
    p[2] = uint8_t((i >> 8) * 17);
  }
  Image back = grid;
  Rng rng3(7);
  hsv_jitter(&back, rng3, 0.0, 0.0, 0.0);
  int worst = 0;
  for (size_t i = 0; i < grid.pixels.size(); ++i)
    worst = std::max(worst, std::abs(int(back.pixels[i]) - int(grid.pixels[i])));
  CHECK(worst <= 4);
}

namespace {
struct TinySet {
  test::ScratchDir dir{"loader"};
  DatasetConfig config;
  TinySet() {
    FmnistDetOptions o;
    o.out = dir.str();
    o.train = 10;
    o.val = 0;
    o.imgsz = 64;
    o.threads = 1;
    config = load_dataset_config(make_fmnist_det(o));
  }
};

std::vector<Batch> epoch_batches(BatchLoader& loader, int epoch) {
  loader.start_epoch(epoch);
  std::vector<Batch> out;
  Batch b;
  while (loader.next(&b)) out.push_back(b);
  return out;
}
}  // namespace

TEST_CASE("loader: same batches for any thread count, new ones each epoch", "[loader]") {
  TinySet set;
  auto split = DetectionSplit::load(set.config, "train", {false, 1});
  LoaderOptions o;
  o.batch_size = 3;
  o.aug.imgsz = 64;
  o.seed = 11;
  o.workers = 1;
  BatchLoader one(split, o);
  o.workers = 3;
  o.prefetch = 2;
  BatchLoader three(split, o);
  CHECK(one.batches_per_epoch() == 4);
  auto a = epoch_batches(one, 0);
  auto b = epoch_batches(three, 0);
  REQUIRE(a.size() == 4);
  REQUIRE(b.size() == 4);
  for (size_t i = 0; i < a.size(); ++i) {
    CHECK(a[i].index == static_cast<int64_t>(i));
    CHECK(a[i].images == b[i].images);
    CHECK(a[i].targets == b[i].targets);
    CHECK(a[i].sample_indices == b[i].sample_indices);
  }
  CHECK(a[3].size == 1);  // 10 = 3 + 3 + 3 + 1
  CHECK(a[0].images.size() == 3u * 3 * 64 * 64);
  // Every sample once per epoch.
  std::vector<size_t> seen;
  for (const auto& batch : a)
    seen.insert(seen.end(), batch.sample_indices.begin(), batch.sample_indices.end());
  std::sort(seen.begin(), seen.end());
  for (size_t i = 0; i < 10; ++i) CHECK(seen[i] == i);
  // Targets: [batch_idx, cls, cx, cy, w, h], normalised.
  int64_t targets = 0;
  for (const auto& batch : a) {
    targets += batch.num_targets();
    for (int64_t t = 0; t < batch.num_targets(); ++t) {
      const float* row = &batch.targets[t * 6];
      CHECK(row[0] >= 0);
      CHECK(row[0] < batch.size);
      CHECK(row[1] >= 0);
      CHECK(row[1] <= 9);
      CHECK(row[2] - row[4] / 2 >= -1e-5);
      CHECK(row[2] + row[4] / 2 <= 1 + 1e-5);
    }
  }
  CHECK(targets > 10);
  // A rerun of the epoch repeats it; the next epoch differs.
  auto again = epoch_batches(one, 0);
  CHECK(again[2].images == a[2].images);
  auto next = epoch_batches(one, 1);
  CHECK(next[0].images != a[0].images);
  // Abandoning an epoch midway and starting another is fine.
  three.start_epoch(5);
  Batch first;
  REQUIRE(three.next(&first));
  auto e5 = epoch_batches(one, 5);
  CHECK(first.images == e5[0].images);
  // Mosaic off (close_mosaic) from the next epoch on.
  one.set_mosaic(false);
  three.set_mosaic(false);
  auto c = epoch_batches(one, 2);
  auto d = epoch_batches(three, 2);
  CHECK(c[1].images == d[1].images);
  o.drop_last = true;
  CHECK(BatchLoader(split, o).batches_per_epoch() == 3);
}

TEST_CASE("loader: the shards of a global batch, cut into micro-batches, are the batch",
          "[loader]") {
  TinySet set;
  auto split = DetectionSplit::load(set.config, "train", {false, 1});
  LoaderOptions o;
  o.batch_size = 4;  // 10 = 4 + 4 + 2: the last batch leaves rank 1 of 2 an empty share
  o.aug.imgsz = 64;
  o.seed = 5;
  o.workers = 2;
  BatchLoader whole(split, o);
  auto all = epoch_batches(whole, 1);
  std::vector<std::vector<Batch>> ranks;
  for (int r = 0; r < 2; ++r) {
    o.shard = r;
    o.shards = 2;
    BatchLoader shard(split, o);
    CHECK(shard.batches_per_epoch() == whole.batches_per_epoch());
    ranks.push_back(epoch_batches(shard, 1));
  }
  REQUIRE(all.size() == 3);
  CHECK(ranks[1][2].size == 0);
  for (size_t b = 0; b < all.size(); ++b) {
    // The micro-batches of size 1 of both ranks, in rank order, rebuild the global batch.
    std::vector<uint8_t> images;
    std::vector<float> targets;
    std::vector<size_t> samples;
    int first = 0;
    for (const auto& rank : ranks) {
      for (const Batch& m : split_batch(rank[b], 1)) {
        CHECK(m.size == 1);
        images.insert(images.end(), m.images.begin(), m.images.end());
        for (size_t t = 0; t < m.targets.size(); t += 6) {
          CHECK(m.targets[t] == 0);
          targets.push_back(static_cast<float>(first));
          targets.insert(targets.end(), m.targets.begin() + t + 1, m.targets.begin() + t + 6);
        }
        samples.insert(samples.end(), m.sample_indices.begin(), m.sample_indices.end());
        ++first;
      }
    }
    CHECK(first == all[b].size);
    CHECK(images == all[b].images);
    CHECK(targets == all[b].targets);
    CHECK(samples == all[b].sample_indices);
  }
  o.shards = 3;
  o.shard = 0;
  CHECK_THROWS_WITH(BatchLoader(split, o), Catch::Contains("multiple of the number of processes"));
}

TEST_CASE("loader: validation batches map back to the labels", "[loader]") {
  TinySet set;
  auto split = DetectionSplit::load(set.config, "train", {false, 1});
  LoaderOptions o;
  o.batch_size = 4;
  o.augment = false;
  o.shuffle = false;
  o.aug = AugmentOptions::none(96);  // upscale 64 -> 96: letterbox scale 1.5, no padding
  BatchLoader loader(split, o);
  auto batches = epoch_batches(loader, 0);
  REQUIRE(batches.size() == 3);
  for (const Batch& b : batches) {
    REQUIRE(b.letterbox.size() == static_cast<size_t>(b.size));
    size_t row = 0;
    for (int i = 0; i < b.size; ++i) {
      const auto& truth = split.samples()[b.sample_indices[i]].boxes;
      CHECK(b.letterbox[i].scale_x == Approx(1.5));
      for (const Box& t : truth) {
        REQUIRE(row < static_cast<size_t>(b.num_targets()));
        const float* r = &b.targets[row * 6];
        CHECK(r[0] == i);
        Box back = letterbox_to_source({int(r[1]), r[2], r[3], r[4], r[5]}, b.letterbox[i]);
        CHECK(back.cls == t.cls);
        CHECK(back.cx == Approx(t.cx).margin(1e-5));
        CHECK(back.h == Approx(t.h).margin(1e-5));
        ++row;
      }
    }
    CHECK(row == static_cast<size_t>(b.num_targets()));
    auto f = b.images_float();
    CHECK(f[7] == Approx(b.images[7] / 255.0f));
  }
}

TEST_CASE("loader: an image that vanished is an error naming it", "[loader]") {
  TinySet set;
  auto split = DetectionSplit::load(set.config, "train", {false, 1});
  std::filesystem::remove(split.samples()[4].image_path);
  LoaderOptions o;
  o.batch_size = 2;
  o.aug.imgsz = 64;
  o.aug.mosaic = false;
  o.shuffle = false;
  o.workers = 2;
  BatchLoader loader(split, o);
  loader.start_epoch(0);
  Batch b;
  CHECK(loader.next(&b));
  CHECK(loader.next(&b));
  CHECK_THROWS_WITH(loader.next(&b), Contains("000004.png"));
}

TEST_CASE("image cache: the loader's batches are the same with and without it", "[loader]") {
  TinySet set;
  auto split = DetectionSplit::load(set.config, "train", {false, 1});
  LoaderOptions o;
  o.batch_size = 4;
  o.aug.imgsz = 64;
  o.seed = 5;
  o.workers = 2;
  BatchLoader plain(split, o);
  o.cache = true;
  BatchLoader cached(split, o);
  ImageCache::process().clear();
  for (int epoch = 0; epoch < 2; ++epoch) {
    auto a = epoch_batches(plain, epoch);
    auto b = epoch_batches(cached, epoch);
    REQUIRE(a.size() == b.size());
    for (size_t i = 0; i < a.size(); ++i) {
      CHECK(a[i].images == b[i].images);
      CHECK(a[i].targets == b[i].targets);
    }
  }
  // Every image of the split decoded once and kept (mosaic reads them all in two epochs).
  CHECK(ImageCache::process().images() == split.size());
  // Cached images are served even after their files are gone.
  std::filesystem::remove(split.samples()[4].image_path);
  auto again = epoch_batches(cached, 0);
  CHECK(again.size() == 3);
  ImageCache::process().clear();
  CHECK_THROWS_WITH(epoch_batches(cached, 0), Contains("000004.png"));
}

TEST_CASE("image cache: budget, equality with decoding, failures not kept", "[loader]") {
  test::ScratchDir dir("cache");
  const std::string a = dir / "a.png", b = dir / "b.png";
  test::write_png(a, 20, 10, 50);
  test::write_png(b, 20, 10, 90);
  const size_t one = 20 * 10 * 3 + sizeof(Image) + a.size();
  ImageCache cache(one + 10);  // room for one image
  auto ia = cache.get(a);
  CHECK(ia->pixels == load_image(a).pixels);
  CHECK(cache.images() == 1);
  CHECK(cache.bytes() == one);
  CHECK(cache.get(a).get() == ia.get());  // served from memory
  auto ib = cache.get(b);                 // over budget: decoded, not kept
  CHECK(ib->pixels == load_image(b).pixels);
  CHECK(cache.images() == 1);
  CHECK(cache.get(b).get() != ib.get());
  const std::string c = dir / "c.png";
  CHECK_THROWS_WITH(cache.get(c), Contains("c.png"));
  test::write_png(c, 4, 4, 1);
  cache.clear();
  CHECK(cache.get(c)->width == 4);  // the earlier failure was not cached
}
