// Dataset YAML forms, label parsing, split scanning with defects, the label cache.
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <thread>

#include "core/atomic_file.h"
#include "core/error.h"
#include "datasets/dataset.h"
#include "datasets/labels.h"
#include "test_util.h"

using namespace mixnas;
using namespace mixnas::data;
using Catch::Matchers::Contains;

TEST_CASE("dataset YAML: names as a list, as a map, nc checked", "[datasets]") {
  auto a = parse_dataset_config(
      "path: ../d\ntrain: images/train\nval: images/val\nnames: [cat, dog]\n", "/x/cfg/a.yaml");
  CHECK(a.root == "/x/d");
  CHECK(a.names == std::vector<std::string>{"cat", "dog"});
  REQUIRE(a.splits.at("train").size() == 1);
  CHECK(a.splits.at("train")[0] == "/x/d/images/train");
  CHECK_FALSE(a.has_split("test"));

  auto b = parse_dataset_config(
      "train: [a/images, b/list.txt]\nval: v\nnc: 3\nnames:\n  1: b\n  0: a\n  2: c\n",
      "/data/set.yaml");
  CHECK(b.root == "/data");
  CHECK(b.names == std::vector<std::string>{"a", "b", "c"});
  CHECK(b.splits.at("train") == std::vector<std::string>{"/data/a/images", "/data/b/list.txt"});

  CHECK_THROWS_WITH(parse_dataset_config("train: t\nnc: 2\nnames: [a, b, c]\n", "/d/x.yaml"),
                    Contains("/d/x.yaml:2") && Contains("nc is 2 but 'names' has 3"));
  CHECK_THROWS_WITH(parse_dataset_config("train: t\nnames: {0: a, 2: c}\n", "/d/x.yaml"),
                    Contains("class 1 is missing"));
  CHECK_THROWS_WITH(parse_dataset_config("train: t\n", "/d/x.yaml"),
                    Contains("'names' is missing"));
  CHECK_THROWS_WITH(parse_dataset_config("names: [a]\n", "/d/x.yaml"),
                    Contains("neither 'train' nor 'val'"));
  CHECK_THROWS_WITH(parse_dataset_config("train: [t\nnames: [a]\n", "/d/x.yaml"),
                    Contains("/d/x.yaml:") && Contains("not valid YAML"));
}

TEST_CASE("label path rule replaces the last /images/ and the extension", "[datasets]") {
  CHECK(label_path_for("/d/images/train/a.jpg") == "/d/labels/train/a.txt");
  CHECK(label_path_for("/images/x/images/train/b.c.PNG") == "/images/x/labels/train/b.c.txt");
  CHECK(label_path_for("/d/imgs/a.png") == "/d/imgs/a.txt");
}

TEST_CASE("label rows: every defect named with file and line", "[datasets]") {
  auto ok =
      parse_labels("0 0.5 0.5 0.2 0.3\n\n1 0.1 0.2 0.05 0.05\n0 0.5 0.5 0.2 0.3\n", "l.txt", 2);
  CHECK(ok.ok());
  REQUIRE(ok.boxes.size() == 2);
  CHECK(ok.duplicates_removed == 1);
  CHECK(ok.boxes[1] == Box{1, 0.1f, 0.2f, 0.05f, 0.05f});

  auto cols = parse_labels("0 0.5 0.5 0.2 0.3\n0 0.5 0.5 0.2\n", "l.txt", 2);
  REQUIRE(cols.problems.size() == 1);
  CHECK_THAT(cols.problems[0],
             Contains("l.txt:2:") && Contains("expected 5 columns") && Contains("found 4"));
  auto nan = parse_labels("0 0.5 abc 0.2 0.3\n", "l.txt", 2);
  REQUIRE(nan.problems.size() == 1);
  CHECK_THAT(nan.problems[0], Contains("l.txt:1:") && Contains("y_center is not a number"));
  auto cls =
      parse_labels("2 0.5 0.5 0.2 0.3\n0.5 0.5 0.5 0.2 0.3\n-1 0.5 0.5 0.1 0.1\n", "l.txt", 2);
  REQUIRE(cls.problems.size() == 3);
  CHECK_THAT(cls.problems[0], Contains("class id 2 is not an integer in 0..1"));
  CHECK_THAT(cls.problems[1], Contains("l.txt:2:"));
  auto big = parse_labels("1 0.5 0.5 1.2 0.3\n", "l.txt", 2);
  REQUIRE(big.problems.size() == 1);
  CHECK_THAT(big.problems[0], Contains("width = 1.2 is outside 0..1"));
  auto zero = parse_labels("1 0.5 0.5 0 0.3\n", "l.txt", 2);
  REQUIRE(zero.problems.size() == 1);
  CHECK_THAT(zero.problems[0], Contains("zero-size box"));
  // Positive as a double, zero as the float it is stored in (also a fuzz_labels invariant).
  auto tiny = parse_labels("1 0.5 0.5 1e-50 0.3\n", "l.txt", 2);
  REQUIRE(tiny.problems.size() == 1);
  CHECK_THAT(tiny.problems[0], Contains("l.txt:1:") && Contains("zero-size box"));
}

TEST_CASE("format_labels round trip", "[datasets]") {
  std::vector<Box> boxes{{0, 0.5f, 0.25f, 0.125f, 0.0625f}, {3, 0.1f, 0.9f, 0.2f, 0.2f}};
  auto parsed = parse_labels(format_labels(boxes), "x", 4);
  REQUIRE(parsed.ok());
  REQUIRE(parsed.boxes.size() == 2);
  CHECK(parsed.boxes[0] == boxes[0]);
  CHECK(parsed.boxes[1].cx == Approx(0.1f).margin(1e-6));
}

namespace {
// A dataset of 4 good images (one a background) plus the defects a test asks for.
std::string make_dataset(const test::ScratchDir& dir) {
  test::write_png(dir / "images/train/a.png", 20, 10);
  test::write_text(dir / "labels/train/a.txt", "0 0.5 0.5 0.2 0.2\n1 0.3 0.3 0.1 0.1\n");
  test::write_png(dir / "images/train/b.png", 12, 12);
  test::write_text(dir / "labels/train/b.txt", "1 0.5 0.5 0.5 0.5\n");
  test::write_png(dir / "images/train/c.png", 8, 8);  // no label file: background
  test::write_png(dir / "images/train/sub/d.png", 8, 16);
  test::write_text(dir / "labels/train/sub/d.txt", "0 0.5 0.5 1 1\n");
  test::write_text(dir / "data.yaml",
                   "path: .\ntrain: images/train\nval: images/val\nnames: [x, y]\n");
  return dir / "data.yaml";
}
}  // namespace

TEST_CASE("a clean split loads with sizes and boxes", "[datasets]") {
  test::ScratchDir dir("clean");
  auto config = load_dataset_config(make_dataset(dir));
  auto split = DetectionSplit::load(config, "train");
  REQUIRE(split.size() == 4);
  CHECK(split.samples()[0].image_path == dir / "images/train/a.png");
  CHECK(split.samples()[0].width == 20);
  CHECK(split.samples()[0].height == 10);
  CHECK(split.samples()[0].boxes.size() == 2);
  CHECK(split.samples()[3].image_path == dir / "images/train/sub/d.png");
  CHECK(split.report().backgrounds == 1);
  CHECK(split.report().boxes == 4);
  CHECK(split.report().corrupt.empty());
  CHECK_THAT(split.report().summary(),
             Contains("train: 4 images (1 backgrounds, 4 boxes)") && Contains("0 corrupt skipped"));
}

TEST_CASE("a wrong column count skips the image and names file and line", "[datasets]") {
  test::ScratchDir dir("badcols");
  auto config = load_dataset_config(make_dataset(dir));
  test::write_png(dir / "images/train/e.png", 8, 8);
  test::write_text(dir / "labels/train/e.txt", "0 0.5 0.5 0.2 0.2\n0 0.5 0.5 0.2\n");
  auto split = DetectionSplit::load(config, "train", {false, 1});
  CHECK(split.size() == 4);
  REQUIRE(split.report().corrupt.size() == 1);
  CHECK_THAT(split.report().corrupt[0], Contains(dir / "labels/train/e.txt:2:") &&
                                            Contains("expected 5 columns") && Contains("found 4"));
  CHECK_THAT(split.report().summary(),
             Contains("train: 4 images") && Contains("1 corrupt skipped: ") && Contains("e.txt:2"));
}

TEST_CASE("coordinates above 1 skip the image and are reported", "[datasets]") {
  test::ScratchDir dir("badcoords");
  auto config = load_dataset_config(make_dataset(dir));
  test::write_png(dir / "images/train/f.png", 8, 8);
  test::write_text(dir / "labels/train/f.txt", "0 0.5 0.5 0.2 0.2\n1 1.5 0.5 0.2 0.2\n");
  auto split = DetectionSplit::load(config, "train", {false, 2});
  CHECK(split.size() == 4);
  REQUIRE(split.report().corrupt.size() == 1);
  CHECK_THAT(split.report().corrupt[0],
             Contains("labels/train/f.txt:2:") && Contains("x_center = 1.5 is outside 0..1"));
}

TEST_CASE("a missing image listed in a .txt split is reported, not fatal", "[datasets]") {
  test::ScratchDir dir("missing");
  make_dataset(dir);
  test::write_png(dir / "images/val/good.png", 9, 9);
  test::write_text(dir / "val.txt", "images/val/good.png\n./images/val/missing.png\n");
  test::write_text(dir / "list.yaml", "train: images/train\nval: val.txt\nnames: [x, y]\n");
  auto split = DetectionSplit::load(load_dataset_config(dir / "list.yaml"), "val", {false, 1});
  REQUIRE(split.size() == 1);
  CHECK(split.samples()[0].width == 9);
  REQUIRE(split.report().corrupt.size() == 1);
  CHECK_THAT(split.report().corrupt[0],
             Contains(dir / "images/val/missing.png") && Contains("missing or not readable"));
}

TEST_CASE("unreadable images (garbage, empty, truncated) are reported, not fatal", "[datasets]") {
  test::ScratchDir dir("badimg");
  make_dataset(dir);
  test::write_text(dir / "images/val/garbage.jpg", "this is not a jpeg");
  test::write_text(dir / "images/val/empty.png", "");
  test::write_png(dir / "images/val/good.png", 9, 9);
  test::write_png(dir / "images/val/truncated.png", 64, 64);
  std::string bytes = read_file(dir / "images/val/truncated.png");
  test::write_text(dir / "images/val/truncated.png", bytes.substr(0, bytes.size() / 2));
  auto config = load_dataset_config(dir / "data.yaml");
  auto split = DetectionSplit::load(config, "val", {false, 2});
  REQUIRE(split.size() == 1);
  REQUIRE(split.report().corrupt.size() == 3);
  CHECK_THAT(split.report().corrupt[0], Contains("empty.png") && Contains("empty"));
  CHECK_THAT(split.report().corrupt[1], Contains("garbage.jpg") && Contains("cannot decode"));
  CHECK_THAT(split.report().corrupt[2], Contains("truncated.png") && Contains("cannot decode"));
  CHECK_THAT(split.report().summary(), Contains("val: 1 images") && Contains("3 corrupt skipped"));
}

TEST_CASE("an empty or absent split is an error naming the split and path", "[datasets]") {
  test::ScratchDir dir("empty");
  auto yaml = make_dataset(dir);
  std::filesystem::create_directories(dir / "images/val");
  auto config = load_dataset_config(yaml);
  CHECK_THROWS_WITH(DetectionSplit::load(config, "val"),
                    Contains("split 'val' is empty") && Contains(dir / "images/val"));
  CHECK_THROWS_WITH(DetectionSplit::load(config, "test"), Contains("no 'test' split"));
  test::write_text(dir / "nofolder.yaml", "train: nowhere\nnames: [a]\n");
  CHECK_THROWS_WITH(
      DetectionSplit::load(load_dataset_config(dir / "nofolder.yaml"), "train"),
      Contains("split 'train'") && Contains(dir / "nowhere") && Contains("does not exist"));
  CHECK_THROWS_WITH(load_dataset_config(dir / "absent.yaml"), Contains("does not exist"));
  // Every image corrupt: an error too, with the reasons.
  test::write_text(dir / "images/bad/x.png", "junk");
  test::write_text(dir / "bad.yaml", "train: images/bad\nnames: [a]\n");
  CHECK_THROWS_WITH(DetectionSplit::load(load_dataset_config(dir / "bad.yaml"), "train"),
                    Contains("no usable image") && Contains("x.png"));
}

TEST_CASE("label cache: round trip, then rebuilt when a label changes", "[datasets]") {
  test::ScratchDir dir("cache");
  auto config = load_dataset_config(make_dataset(dir));
  auto first = DetectionSplit::load(config, "train");
  CHECK_FALSE(first.report().from_cache);
  CHECK(first.cache_path() == dir / "labels/train.mixnas-cache.json");
  REQUIRE(std::filesystem::exists(first.cache_path()));

  auto second = DetectionSplit::load(config, "train");
  CHECK(second.report().from_cache);
  REQUIRE(second.size() == first.size());
  for (size_t i = 0; i < first.size(); ++i) {
    CHECK(second.samples()[i].image_path == first.samples()[i].image_path);
    CHECK(second.samples()[i].width == first.samples()[i].width);
    CHECK(second.samples()[i].boxes == first.samples()[i].boxes);
  }

  // Same size, new content and mtime: the cache must notice.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  test::write_text(dir / "labels/train/b.txt", "0 0.5 0.5 0.5 0.5\n");
  auto third = DetectionSplit::load(config, "train");
  CHECK_FALSE(third.report().from_cache);
  CHECK(third.samples()[1].boxes[0].cls == 0);
  // A new label for the background image also invalidates it.
  test::write_text(dir / "labels/train/c.txt", "1 0.5 0.5 0.5 0.5\n");
  auto fourth = DetectionSplit::load(config, "train");
  CHECK_FALSE(fourth.report().from_cache);
  CHECK(fourth.report().backgrounds == 0);
  // A corrupt cache file is rebuilt, not fatal.
  test::write_text(first.cache_path(), "{not json");
  auto fifth = DetectionSplit::load(config, "train");
  CHECK_FALSE(fifth.report().from_cache);
  CHECK(fifth.size() == 4);
  CHECK(DetectionSplit::load(config, "train").report().from_cache);
}

TEST_CASE("label cache: never ultralytics' file; foreign or edited caches are rebuilt",
          "[datasets]") {
  test::ScratchDir dir("cache_foreign");
  auto config = load_dataset_config(make_dataset(dir));
  // ultralytics' own cache (a pickled NumPy file) stays as it is.
  const std::string numpy("\x93NUMPY\x01\x00v\x00{'descr': '|O'}", 30);
  test::write_text(dir / "labels/train.cache", numpy);
  auto first = DetectionSplit::load(config, "train");
  CHECK(first.size() == 4);
  CHECK(read_file(dir / "labels/train.cache") == numpy);
  // Whatever sits at mixnas' own name: another format, or JSON with classes out of range.
  for (const std::string& foreign :
       {numpy, std::string("[1, 2, 3]"), std::string("{\"version\": \"x\"}"),
        std::string("{\"version\": 1, \"key\": 5, \"entries\": null}")}) {
    test::write_text(first.cache_path(), foreign);
    auto split = DetectionSplit::load(config, "train");
    CHECK_FALSE(split.report().from_cache);
    CHECK(split.size() == 4);
  }
  std::string edited = read_file(first.cache_path());
  REQUIRE(edited.find("\"b\":[1.0,") != std::string::npos);
  edited.replace(edited.find("\"b\":[1.0,"), 9, "\"b\":[7.0,");  // class 7 of 2
  test::write_text(first.cache_path(), edited);
  auto rebuilt = DetectionSplit::load(config, "train");
  CHECK_FALSE(rebuilt.report().from_cache);
  for (const Sample& sample : rebuilt.samples())
    for (const Box& box : sample.boxes) CHECK(box.cls < 2);
}

TEST_CASE("label cache: a JSON cache of an earlier mixnas at ultralytics' name is removed",
          "[datasets]") {
  test::ScratchDir dir("cache_legacy");
  auto config = load_dataset_config(make_dataset(dir));
  test::write_text(dir / "labels/train.cache", "{\"version\": 1, \"key\": \"0\", \"entries\": []}");
  DetectionSplit::load(config, "train");
  CHECK_FALSE(std::filesystem::exists(dir / "labels/train.cache"));
}

TEST_CASE("a label path that is a folder skips its image, naming it", "[datasets]") {
  test::ScratchDir dir("label_folder");
  auto config = load_dataset_config(make_dataset(dir));
  test::write_png(dir / "images/train/e.png", 8, 8);
  std::filesystem::create_directories(dir / "labels/train/e.txt");
  auto split = DetectionSplit::load(config, "train", {false, 1});
  CHECK(split.size() == 4);
  CHECK(split.report().backgrounds == 1);
  REQUIRE(split.report().corrupt.size() == 1);
  CHECK_THAT(split.report().corrupt[0],
             Contains(dir / "labels/train/e.txt") && Contains("is a folder"));
}
