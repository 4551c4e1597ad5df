#pragma once
// Graphs for the runtime frame's tests, benchmarks and fuzz seeds: a small graph touching every op,
// and a YOLOv8n-shaped detector (width 0.25, depth 0.33) with random weights, in fp32 or int8.
//
// The YOLO graph is written as a float network (LogicalGraph) and lowered to runtime tensors the
// way docs/numerics.md "Where quantization happens" prescribes: every conv quantizes its own input
// with its own grid; a producer writes one output per distinct grid its consumers need (plus a
// float copy for residuals and the Detect head); concat/split/maxpool/upsample run once per grid on
// codes.
#include <cstdint>
#include <string>
#include <vector>

#include "deploy/runtime/builder.h"
#include "deploy/runtime/graph.h"

namespace mixnas::rt::testing {

class LogicalGraph {
 public:
  int input(int height, int width);
  // `in_grid`: the conv's input quantizer (Grid::f32() for float convs).
  int conv(const std::string& name, int x, const ConvLayer& layer, Grid in_grid, int residual = -1);
  int concat(const std::string& name, const std::vector<int>& xs);
  std::vector<int> split(const std::string& name, int x, const std::vector<int>& channels);
  int maxpool(const std::string& name, int x, int kernel, int stride, int pad);
  int upsample(const std::string& name, int x);
  int detect_v8(const std::string& name, const std::vector<std::pair<int, int>>& levels,
                const std::vector<float>& strides, int reg_max, int num_classes);
  int nms(const std::string& name, int x, const NmsAttrs& attrs);

  // Lowers to a runtime graph. Outputs are float; `detections` indexes the NMS output in them.
  Graph lower(const std::vector<int>& outputs, int detections) const;

 private:
  enum class Kind { kInput, kConv, kConcat, kSplit, kMaxPool, kUpsample, kDetect, kNms };
  struct Op {
    Kind kind;
    std::string name;
    std::vector<int> inputs;   // logical values
    std::vector<int> outputs;  // logical values
    ConvLayer layer;
    Grid in_grid;
    int residual = -1;
    std::vector<int> channels;
    int kernel = 0, stride = 0, pad = 0;
    std::vector<float> strides;
    int reg_max = 16, num_classes = 0;
    NmsAttrs nms;
    int height = 0, width = 0;
  };
  int new_value();
  std::vector<Op> ops_;
  int values_ = 0;
};

struct YoloOptions {
  int imgsz = 160;
  bool int8 = true;  // false: fp32 weights and activations
  int num_classes = 80;
  uint32_t seed = 1;
  int channel_div = 1;  // divides every hidden width (fuzz seeds use small graphs)
  // int8 graphs: weight and input bits of every conv but the stem and the head's last 1x1 convs
  // (those stay 8-bit); 1..8.
  int w_bits = 8;
  int a_bits = 8;
  NmsAttrs nms{0.25f, 0.45f, 100, true};
};

// YOLOv8n (ultralytics yolov8.yaml at scale n) with random weights; outputs: the 6 head outputs
// (box/cls per level, float), the decoded [anchors, 4+nc] table, and the NMS detections (last).
Graph make_yolov8n_graph(const YoloOptions& options);

// Input codes (int8 graphs) or floats: a deterministic pseudo-image.
std::vector<uint8_t> make_test_image(int width, int height, uint32_t seed);

// One conv of YOLOv8n (ultralytics yolov8.yaml at scale n: depth 0.33, width 0.25) at 320x320.
struct ConvShape {
  std::string name;  // "2.c2f.m0.cv1", "22.detect.p3.box0", ...
  int hw, in_c, out_c, k, stride;
};
// Every conv of YOLOv8n at 320x320, in model order: the one shape list of the kernel benchmarks
// and of the tests that hold per-layer figures recorded from them.
const std::vector<ConvShape>& yolov8n_conv_shapes();
// The shape named `name` (throws std::out_of_range naming it when there is none).
const ConvShape& yolov8n_conv_shape(const std::string& name);

// A small graph with every op (conv int/fp32 with residual and multiple sinks, concat, split,
// add, maxpool, upsample, quantize, dequantize, DetectV8, DetectV5, NMS).
Graph make_all_ops_graph();

}  // namespace mixnas::rt::testing
