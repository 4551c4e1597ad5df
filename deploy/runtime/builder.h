#pragma once
// Builds a runtime graph op by op and writes it as an .mxr package. Tests use it directly; the
// exporter (deploy/export) translates a trained model through it.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "deploy/runtime/graph.h"

namespace mixnas::rt {

// One convolution layer: geometry, weights (float OIHW, or signed codes OIHW with per-output-
// channel scales), bias and fused activation.
struct ConvLayer {
  int out_c = 0;
  int kernel_h = 1, kernel_w = 1;
  int stride_h = 1, stride_w = 1;
  int pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  int dilation_h = 1, dilation_w = 1;
  int groups = 1;
  int activation = 0;  // rt::Activation value
  float alpha = 0.1f;
  int w_bits = 32;                   // 32: weights_f32; 1..8: weight_codes + weight_scale
  std::vector<float> weights_f32;    // OIHW
  std::vector<int8_t> weight_codes;  // OIHW, docs/numerics.md codes (1-bit: +-1)
  std::vector<float> weight_scale;   // per output channel
  std::vector<float> bias;           // per output channel, empty = none
  // The float output (if any) holds channels [f32_channel_begin, + f32_channels) only (0 = all):
  // what a residual read from one part of a split needs (graph.h ConvAttrs).
  int f32_channel_begin = 0;
  int f32_channels = 0;

  // Square kernel k, stride s, "same"-style padding k/2 (YOLO's autopad).
  static ConvLayer square(int out_c, int k, int s, int activation);
};

class GraphBuilder {
 public:
  explicit GraphBuilder(std::string producer = "mixnas");

  // The image input [height, width, 3]: float32 or 8-bit codes (s = 1/255, z = 0 per
  // docs/numerics.md). Also fills the input spec (letterbox on, pad 114, pixel scale 1/255).
  // `channels` other than 3 (any grid) make a non-image input, as one-layer graphs have.
  int add_input(const std::string& name, int height, int width, Grid grid, int channels = 3);

  // A conv writing one output per grid in `outputs` (float copy and/or codes for each distinct
  // consumer grid). `residual` (float, output shape) is added after the activation.
  std::vector<int> add_conv(const std::string& name, int x, const ConvLayer& layer,
                            const std::vector<Grid>& outputs, int residual = -1);
  int add_concat(const std::string& name, const std::vector<int>& inputs);
  std::vector<int> add_split(const std::string& name, int x, const std::vector<int>& channels);
  int add_add(const std::string& name, int a, int b);
  int add_maxpool(const std::string& name, int x, int kernel, int stride, int pad);
  int add_upsample(const std::string& name, int x, int factor = 2);
  int add_quantize(const std::string& name, int x, Grid grid);
  int add_dequantize(const std::string& name, int x);
  // levels: (box [H, W, 4*reg_max], cls [H, W, nc]) per level, both float32.
  int add_detect_v8(const std::string& name, const std::vector<std::pair<int, int>>& levels,
                    const std::vector<float>& strides, int reg_max, int num_classes);
  // levels: [H, W, na*(5+nc)] per level; anchors: levels*na*(w, h) in input pixels.
  int add_detect_v5(const std::string& name, const std::vector<int>& levels,
                    const std::vector<float>& strides, const std::vector<float>& anchors,
                    int num_anchors, int num_classes);
  int add_nms(const std::string& name, int x, const NmsAttrs& attrs);

  // Output tensors; `detections` indexes the NMS output within them (-1 = none).
  void set_outputs(const std::vector<int>& tensors, int detections = -1);
  InputSpec& input_spec() { return graph_.input; }
  OutputSpec& output_spec() { return graph_.output; }

  const TensorDesc& tensor(int index) const;
  const Graph& graph() const { return graph_; }
  // Validates and serializes (throws mixnas::Error naming the first problem).
  std::string serialize() const;
  // Writes the package atomically.
  void save(const std::string& path) const;

 private:
  int add_tensor(const std::string& name, std::vector<int> shape, Grid grid);
  int add_constant_f32(const std::string& name, std::vector<int> shape,
                       const std::vector<float>& values);
  int add_constant_codes(const std::string& name, std::vector<int> shape,
                         const std::vector<int8_t>& codes, int bits,
                         const std::vector<float>& scales);
  int add_node(Node node);
  const std::vector<int>& shape_of(int t, const char* op) const;

  Graph graph_;
};

}  // namespace mixnas::rt
