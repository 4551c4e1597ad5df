#pragma once
// The runtime's in-memory graph: what a .mxr package holds, independent of FlatBuffers. The
// builder (builder.h) creates one, package.h serializes and loads it, validate_graph() checks it.
#include <cstdint>
#include <string>
#include <vector>

namespace mixnas::rt {

enum class OpType : uint8_t {
  kConv2d,
  kConcat,
  kSplit,
  kAdd,
  kMaxPool,
  kUpsample,
  kQuantize,
  kDequantize,
  kDetectV8,
  kDetectV5,
  kNms,
};
constexpr int kNumOpTypes = 11;
const char* op_type_name(OpType op);

enum class TensorKind : uint8_t { kActivation, kConstant };

// A quantization grid of an activation tensor: float32 (bits = 32) or unsigned codes q in
// [0, 2^bits - 1] with value scale * (q - zero_point) (docs/numerics.md).
struct Grid {
  int bits = 32;
  float scale = 1.0f;
  int zero_point = 0;
  static Grid f32() { return Grid{}; }
  static Grid codes(int bits, float scale, int zero_point) { return Grid{bits, scale, zero_point}; }
  bool is_float() const { return bits == 32; }
  bool operator==(const Grid& o) const {
    return bits == o.bits && (is_float() || (scale == o.scale && zero_point == o.zero_point));
  }
  bool operator!=(const Grid& o) const { return !(*this == o); }
};

struct TensorDesc {
  std::string name;
  TensorKind kind = TensorKind::kActivation;
  std::vector<int> shape;  // activations [H, W, C] (batch 1, NHWC) or [rows, cols]; weights OIHW
  int bits = 32;           // 32 = float32, 1..8 = codes
  std::vector<float> scale;
  std::vector<int> zero_point;
  int buffer = -1;  // constants: index into Graph::buffers

  bool is_float() const { return bits == 32; }
  int64_t elements() const;
  // The grid of an activation tensor (per-tensor scale and zero point).
  Grid grid() const;
};

enum class BufferLayout : uint8_t { kF32, kDenseCodes };

struct WeightBuffer {
  BufferLayout layout = BufferLayout::kF32;
  int bits = 32;
  uint64_t count = 0;
  std::vector<uint8_t> data;
};

struct ConvAttrs {
  int stride_h = 1, stride_w = 1;
  int pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  int dilation_h = 1, dilation_w = 1;
  int groups = 1;
  int activation = 0;  // an rt::Activation value (deploy/runtime/kernels), 0 = identity
  float alpha = 0.1f;  // LeakyReLU slope
  bool has_bias = false;
  bool has_residual = false;
  // A float output holds output channels [f32_channel_begin, f32_channel_begin + its channels):
  // a residual read from one part of a split needs floats for that part only (docs/memory.md).
  // Code outputs always hold every channel.
  int f32_channel_begin = 0;
};

struct PoolAttrs {
  int kernel = 1, stride = 1, pad = 0;
};

struct DetectV8Attrs {
  std::vector<float> strides;
  int reg_max = 16;
  int num_classes = 0;
};

struct DetectV5Attrs {
  std::vector<float> strides;
  std::vector<float> anchors;  // levels * num_anchors * (w, h), input pixels
  int num_anchors = 3;
  int num_classes = 0;
};

struct NmsAttrs {
  float score_threshold = 0.25f;
  float iou_threshold = 0.45f;
  int max_detections = 300;
  bool class_aware = true;
};

// One op. Only the attribute member of its op type is meaningful.
struct Node {
  std::string name;
  OpType op = OpType::kConv2d;
  std::vector<int> inputs;
  std::vector<int> outputs;
  ConvAttrs conv;
  PoolAttrs pool;
  int upsample_factor = 2;
  DetectV8Attrs v8;
  DetectV5Attrs v5;
  NmsAttrs nms;
};

struct InputSpec {
  int tensor = -1;  // [H, W, 3] RGB
  int height = 0, width = 0;
  bool letterbox = true;
  int pad_value = 114;
  // Float inputs: x = (pixel * pixel_scale - mean[c]) / std[c]. Code inputs take the pixel as code.
  float pixel_scale = 1.0f / 255.0f;
  std::vector<float> mean;  // empty = 0
  std::vector<float> std;   // empty = 1
};

enum class DecodeKind : uint8_t { kNone, kYoloV8, kYoloV5 };

struct OutputSpec {
  std::vector<int> tensors;
  DecodeKind decode = DecodeKind::kNone;
  std::vector<float> strides;
  int reg_max = 16;
  std::vector<std::string> class_names;
  int detections = -1;  // index into `tensors` of the [max_det, 6] NMS output, -1 = none
};

struct Graph {
  std::string producer;
  std::vector<TensorDesc> tensors;
  std::vector<Node> nodes;  // in execution (topological) order
  std::vector<WeightBuffer> buffers;
  InputSpec input;
  OutputSpec output;
};

// Checks every index, shape, size and attribute of a graph (the loader runs it on every package;
// the builder before it serializes). Throws mixnas::Error naming `origin`, the node or tensor, what
// is wrong and what to do.
void validate_graph(const Graph& graph, const std::string& origin);

// Conv output size along one axis, or -1 when the geometry yields no output.
int conv_out_size(int in, int kernel, int stride, int pad_begin, int pad_end, int dilation);

}  // namespace mixnas::rt
