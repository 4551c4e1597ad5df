// COCO json and Pascal VOC XML to YOLO format, on the fixtures in tests/data/convert.
#include <catch2/catch.hpp>
#include <filesystem>

#include "core/atomic_file.h"
#include "core/error.h"
#include "datasets/convert.h"
#include "datasets/dataset.h"
#include "test_util.h"

using namespace mixnas;
using namespace mixnas::data;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {
const std::string kFixtures = std::string(MIXNAS_TEST_DATA_DIR) + "/convert";

std::vector<Box> labels_of(const std::string& path, int nc) {
  auto parsed = parse_labels(read_file(path), path, nc);
  REQUIRE(parsed.ok());
  return parsed.boxes;
}

void check_box(const Box& b, int cls, double cx, double cy, double w, double h) {
  CHECK(b.cls == cls);
  CHECK(b.cx == Approx(cx).margin(1e-6));
  CHECK(b.cy == Approx(cy).margin(1e-6));
  CHECK(b.w == Approx(w).margin(1e-6));
  CHECK(b.h == Approx(h).margin(1e-6));
}
}  // namespace

TEST_CASE("convert coco: ids sorted to classes, crowd skipped, boxes clipped", "[convert]") {
  test::ScratchDir dir("coco");
  test::write_png(dir / "imgs/a.png", 100, 50);
  test::write_png(dir / "imgs/sub/b.png", 40, 40);
  ConvertOptions o;
  o.images = dir / "imgs";
  o.out = dir / "out";
  auto report = convert_coco(kFixtures + "/coco/instances_val2017.json", o);
  CHECK(report.splits == std::vector<std::string>{"val2017"});
  CHECK(report.images == 2);
  CHECK(report.boxes == 3);
  CHECK(report.crowd_skipped == 1);
  REQUIRE(report.problems.size() == 1);
  CHECK_THAT(report.problems[0], Contains("missing.png") && Contains("missing"));
  CHECK(fs::exists(dir / "out/images/val2017/a.png"));
  CHECK(fs::exists(dir / "out/images/val2017/b.png"));
  // a.png (100x50): zebra (id 5 -> class 1) [10,5,20,10] -> centre (20, 10) / (100, 50);
  // apple (id 2 -> class 0) [50,25,50,25] -> centre (75, 37.5).
  auto a = labels_of(dir / "out/labels/val2017/a.txt", 3);
  REQUIRE(a.size() == 2);
  check_box(a[0], 1, 0.2, 0.2, 0.2, 0.2);
  check_box(a[1], 0, 0.75, 0.75, 0.5, 0.5);
  // b.png (40x40): [30,30,20,20] runs off the image and is clipped to [30,40) -> 10 px.
  auto b = labels_of(dir / "out/labels/val2017/b.txt", 3);
  REQUIRE(b.size() == 1);
  check_box(b[0], 2, 0.875, 0.875, 0.25, 0.25);
  // A dataset the reader accepts.
  auto config = load_dataset_config(report.yaml_path);
  CHECK(config.names == std::vector<std::string>{"apple", "zebra", "nothing"});
  auto split = DetectionSplit::load(config, "val", {false, 1});
  CHECK(split.size() == 2);
  CHECK(split.report().corrupt.empty());
  // Converting again into the same split needs --force.
  CHECK_THROWS_WITH(convert_coco(kFixtures + "/coco/instances_val2017.json", o),
                    Contains("--force"));
  o.force = true;
  o.copy = true;
  o.split = "train_small";
  auto again = convert_coco(kFixtures + "/coco/instances_val2017.json", o);
  auto config2 = load_dataset_config(again.yaml_path);
  CHECK(config2.has_split("train"));
  CHECK(config2.has_split("val"));  // the earlier split is kept
  CHECK_THROWS_WITH(convert_coco(dir / "nope.json", o), Contains("nope.json"));
}

TEST_CASE("convert voc: 20 names, 1-based pixels, difficult kept or skipped", "[convert]") {
  test::ScratchDir dir("voc");
  fs::copy(kFixtures + "/voc", dir / "VOC", fs::copy_options::recursive);
  fs::create_directories(dir / "VOC/JPEGImages");
  save_jpeg(dir / "VOC/JPEGImages/000001.jpg", Image(200, 100, 3, 90));
  save_jpeg(dir / "VOC/JPEGImages/000002.jpg", Image(50, 50, 3, 90));
  ConvertOptions o;
  o.out = dir / "out";
  auto report = convert_voc(dir / "VOC", o);
  CHECK(report.splits == std::vector<std::string>{"train", "val"});
  CHECK(report.images == 2);
  CHECK(report.boxes == 3);
  CHECK(report.difficult_kept == 1);
  REQUIRE(report.problems.size() == 1);
  CHECK_THAT(report.problems[0], Contains("000002.xml: object 2") && Contains("unicorn"));
  // 000001 (200x100): dog (11) xmin 11 ymin 21 xmax 110 ymax 70 -> minus 1: [10, 20, 109, 69]:
  // centre (59.5, 44.5), size 99 x 49. The difficult person (14) [100, 0, 199, 99]; its head part
  // is not an object, nor is the commented-out bird.
  auto one = labels_of(dir / "out/labels/train/000001.txt", 20);
  REQUIRE(one.size() == 2);
  check_box(one[0], 11, 59.5 / 200, 44.5 / 100, 99.0 / 200, 49.0 / 100);
  check_box(one[1], 14, 149.5 / 200, 49.5 / 100, 99.0 / 200, 99.0 / 100);
  // 000002 (50x50): cat (7) [0, 0, 50, 25].
  auto two = labels_of(dir / "out/labels/val/000002.txt", 20);
  REQUIRE(two.size() == 1);
  check_box(two[0], 7, 0.5, 0.25, 1.0, 0.5);
  auto config = load_dataset_config(report.yaml_path);
  CHECK(config.names.size() == 20);
  CHECK(config.names[14] == "person");
  CHECK(DetectionSplit::load(config, "train", {false, 1}).size() == 1);

  o.out = dir / "out2";
  o.skip_difficult = true;
  o.split = "train";
  auto skipped = convert_voc(dir / "VOC", o);
  CHECK(skipped.difficult_skipped == 1);
  CHECK(labels_of(dir / "out2/labels/train/000001.txt", 20).size() == 1);
  CHECK_THROWS_WITH(convert_voc(dir / "nowhere", o), Contains("Annotations/ is missing"));
}

TEST_CASE("convert coco: an id that is not an integer is an error naming it", "[convert]") {
  test::ScratchDir dir("coco_ids");
  const auto instances = [&](const std::string& image_id) {
    const std::string path = dir / "instances_val.json";
    test::write_text(path, R"({"images": [{"id": 1, "file_name": "a.png", "width": 10,
      "height": 10}], "categories": [{"id": 1, "name": "a"}], "annotations": [{"id": 7,
      "image_id": )" + image_id +
                               R"(, "category_id": 1, "bbox": [1, 1, 2, 2]}]})");
    return path;
  };
  ConvertOptions o;
  o.out = dir / "out";
  CHECK_THROWS_WITH(convert_coco(instances("1.5"), o),
                    Contains("instances_val.json: annotation 7: image_id: expected an integer") &&
                        Contains("got 1.5"));
  CHECK_THROWS_WITH(convert_coco(instances("1180591620717411303424"), o),
                    Contains("image_id: expected an integer") && !Contains("-9223372036854775808"));
}
