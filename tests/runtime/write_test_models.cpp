// Writes the frame's test graphs as .mxr packages: benchmark inputs for `mixnas bench` and seeds
// for the loader fuzzer (fuzz/run.sh).
//   mixnas_write_test_models OUT_DIR [IMGSZ]
// writes OUT_DIR/yolov8n_{int8,fp32}_<IMGSZ>.mxr, yolo_tiny_{int8,fp32}.mxr (hidden widths / 8,
// 64 px, 3 classes), yolo_tiny_w{4a4,2a2,1a2}.mxr (widths / 4, packed low-bit codes) and
// all_ops.mxr.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>

#include "core/atomic_file.h"
#include "core/error.h"
#include "deploy/runtime/package.h"
#include "tests/runtime/frame_graphs.h"

int main(int argc, char** argv) {
  using namespace mixnas::rt;
  if (argc < 2 || argc > 3) {
    std::fprintf(stderr, "usage: %s OUT_DIR [IMGSZ (multiple of 32, default 320)]\n", argv[0]);
    return 1;
  }
  const std::string dir = argv[1];
  const int imgsz = argc == 3 ? std::atoi(argv[2]) : 320;
  if (imgsz < 32 || imgsz % 32 != 0) {
    std::fprintf(stderr, "IMGSZ must be a positive multiple of 32, got '%s'\n", argv[2]);
    return 1;
  }
  try {
    for (bool int8 : {true, false}) {
      testing::YoloOptions o;
      o.int8 = int8;
      o.imgsz = imgsz;
      const std::string path =
          dir + "/yolov8n_" + (int8 ? "int8_" : "fp32_") + std::to_string(imgsz) + ".mxr";
      mixnas::write_file_atomic(path, serialize_package(testing::make_yolov8n_graph(o)));
      std::printf("%s\n", path.c_str());
    }
    for (bool int8 : {true, false}) {  // small seeds for the fuzzer
      testing::YoloOptions o;
      o.int8 = int8;
      o.imgsz = 64;
      o.channel_div = 8;
      o.num_classes = 3;
      const std::string path = dir + "/yolo_tiny_" + (int8 ? "int8" : "fp32") + ".mxr";
      mixnas::write_file_atomic(path, serialize_package(testing::make_yolov8n_graph(o)));
      std::printf("%s\n", path.c_str());
    }
    for (const auto& [wb, ab] : {std::pair{4, 4}, std::pair{2, 2}, std::pair{1, 2}}) {
      testing::YoloOptions o;  // low-bit seeds: packed code tensors in the arena (codes.h)
      o.imgsz = 64;
      o.channel_div = 4;
      o.num_classes = 3;
      o.w_bits = wb;
      o.a_bits = ab;
      const std::string path =
          dir + "/yolo_tiny_w" + std::to_string(wb) + "a" + std::to_string(ab) + ".mxr";
      mixnas::write_file_atomic(path, serialize_package(testing::make_yolov8n_graph(o)));
      std::printf("%s\n", path.c_str());
    }
    mixnas::write_file_atomic(dir + "/all_ops.mxr",
                              serialize_package(testing::make_all_ops_graph()));
    std::printf("%s/all_ops.mxr\n", dir.c_str());
  } catch (const mixnas::Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
