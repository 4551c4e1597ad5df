#pragma once
// The exporter's intermediate form of a trained fixed model: a float dataflow graph whose convs
// carry everything the device needs (BN folded, weight codes at their trained LSQ steps, the input
// grid of each conv's LSQ+ quantizer, the fused activation). No LibTorch: the .mxr lowering and
// the ONNX writer read it, model_to_ir() (export.h) writes it.
//
// Values are float tensors as the trainer sees them; quantization happens only at a conv's input
// (docs/numerics.md "Where quantization happens"). The lowering decides which grids each value is
// materialised in.
#include <string>
#include <vector>

#include "deploy/runtime/graph.h"
#include "deploy/runtime/kernels/activation.h"

namespace mixnas::exporter {

// Shape of one value, NCHW without the batch.
struct IrShape {
  int c = 0, h = 0, w = 0;
};

struct IrConv {
  std::string name;  // site name, e.g. "model.2.m.0.cv1"
  int in_c = 0, out_c = 0, kernel = 1, stride = 1, pad = 0, groups = 1, dilation = 1;
  rt::Activation act = rt::Activation::kIdentity;
  float alpha = 0.1f;          // LeakyReLU slope
  int w_bits = 32;             // 32: float weights
  int a_bits = 32;             // 32: float input
  rt::Grid in_grid;            // the conv's input quantizer (Grid::f32() when a_bits = 32)
  std::vector<float> weight;   // folded float weights, OIHW (before quantization)
  std::vector<int8_t> codes;   // w_bits <= 8: OIHW codes at the trained step
  std::vector<float> w_scale;  // w_bits <= 8: per output channel step
  std::vector<float> bias;     // folded bias (always out_c values)
  // The weights the trainer convolves with: codes * step (quantized) or the folded floats.
  std::vector<float> effective_weight() const;
};

enum class IrOp { kInput, kConv, kConcat, kChunk, kMaxPool, kUpsample };

struct IrNode {
  IrOp op = IrOp::kInput;
  std::string name;
  std::vector<int> inputs;  // values
  int output = -1;          // value
  int conv = -1;            // kConv: index into IrModel::convs
  int residual = -1;        // kConv: float value added after the activation (Bottleneck)
  std::vector<int> chunks;  // kChunk: channel sizes of the partition of the input
  int chunk_index = 0;      // kChunk: which part
  int kernel = 1, stride = 1, pad = 0;  // kMaxPool
  int factor = 2;                       // kUpsample
};

struct IrHead {
  bool anchor_based = false;  // YOLOv5 (anchors) or YOLOv8 (DFL)
  int num_classes = 0;
  std::vector<float> strides;
  // YOLOv8: per level the box value [4 * reg_max] and the class value [nc].
  std::vector<int> boxes, classes;
  int reg_max = 16;
  // YOLOv5: per level the value [na * (5 + nc)] (anchor-major channels), anchors in pixels.
  std::vector<int> levels;
  std::vector<float> anchors;  // levels * na * (w, h)
  int num_anchors = 3;
};

struct IrModel {
  std::string source;  // what it was made from (model file / checkpoint), for the producer string
  int height = 0, width = 0;
  bool letterbox = true;
  std::vector<IrNode> nodes;  // topological order; nodes[0] is the input
  std::vector<IrConv> convs;
  std::vector<IrShape> shapes;  // per value
  IrHead head;
  std::vector<std::string> class_names;
  rt::NmsAttrs nms;
  int add_value(IrShape shape) {
    shapes.push_back(shape);
    return static_cast<int>(shapes.size()) - 1;
  }
};

// Lowers the IR to a runtime graph (validated): per value, one tensor per grid its consumers need.
// Outputs: the raw head outputs (v8: box and class per level; v5: one per level), the decoded
// table [anchors, 4 + nc], and the NMS detections (last). `tensor_values`, if given, receives per
// runtime tensor the IR value it holds (-1 for constants and the decode/NMS outputs).
rt::Graph ir_to_graph(const IrModel& ir, std::vector<int>* tensor_values = nullptr);

}  // namespace mixnas::exporter
