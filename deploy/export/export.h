#pragma once
// Export of a trained fixed model (docs/export.md): the .mxr package for mixnas' runtime, an ONNX
// file (QDQ or float weights on their grid) and arch.yaml.
//
//   auto model = mixnas::exporter::load_weights("runs/train/exp/weights/best.pt");
//   mixnas::exporter::ExportOptions o;
//   o.imgsz = 320;
//   std::string bytes = mixnas::exporter::export_mxr(model, o);
#include <optional>
#include <string>
#include <vector>

#include "deploy/export/ir.h"
#include "deploy/runtime/graph.h"
#include "supernet/model.h"

namespace mixnas::exporter {

struct ExportOptions {
  int imgsz = 640;  // square network input; must be a multiple of the largest stride
  std::vector<std::string> class_names;  // empty: "class0", "class1", ...
  float conf = 0.25f;                    // NMS score threshold
  float iou = 0.45f;                     // NMS IoU threshold
  int max_det = 300;
  bool letterbox = true;
};

// The model as the exporter's IR: BN folded into each conv (NUMERICS "BatchNorm folding"), weights
// quantized to their trained LSQ steps, input grids from each conv's LSQ+ quantizer. Throws
// mixnas::Error naming the layer for anything it cannot export (a layer type it does not know, a
// searchable site with several candidates, an uncalibrated quantizer).
IrModel model_to_ir(supernet::YoloModel& model, const ExportOptions& options);

// The runtime graph of the model (validated).
rt::Graph export_graph(supernet::YoloModel& model, const ExportOptions& options);
// The .mxr package bytes.
std::string export_mxr(supernet::YoloModel& model, const ExportOptions& options);

struct OnnxOptions {
  // false: QuantizeLinear/DequantizeLinear pairs (int8/uint8 containers, Clip to the real bit
  // range); true: float weights already rounded to their grid and no Q/DQ nodes (activation
  // grids are then not represented).
  bool float_weights = false;
  // true: one decoded output as YOLO code expects it (YOLOv8: "output0" [1, 4 + nc, N], boxes
  // cx, cy, w, h in input pixels then class scores after sigmoid; YOLOv5: [1, N, 5 + nc], boxes,
  // objectness and class scores after sigmoid); false: the raw head outputs per level.
  bool decoded = true;
  std::string producer = "mixnas";
};
// The ONNX model bytes (opset 13), checked with onnx::checker. Throws mixnas::Error when this
// build has no ONNX library.
std::string onnx_bytes(const IrModel& ir, const OnnxOptions& options);
void write_onnx(const IrModel& ir, const std::string& path, const OnnxOptions& options);
void write_onnx(supernet::YoloModel& model, const ExportOptions& options, const std::string& path,
                const OnnxOptions& onnx_options = {});
bool onnx_available();

// A trained model from a weights file: a mixnas checkpoint (format "mixnas-checkpoint-1" with its
// arch.yaml text, "ema" preferred over "model"), or any archive of YoloModel::save when `arch` (an
// arch.yaml or model YAML) is given. `arch` also overrides the architecture stored in a
// checkpoint. Every tensor is checked against the architecture: a file from another model YAML
// gets an error naming the first tensor that does not fit. The model is returned in eval mode with
// BN folding on.
supernet::YoloModel load_weights(const std::string& weights_path,
                                 const std::optional<std::string>& arch = std::nullopt);

// The fixed choices of every site (what arch.yaml records).
supernet::ArchChoices fixed_choices(const supernet::YoloModel& model);

struct ExportRequest {
  std::string input;                // weights file, or a run folder holding weights/best.pt
  std::optional<std::string> arch;  // architecture override (arch.yaml / model YAML)
  std::vector<std::string> formats = {"mxr", "onnx"};
  ExportOptions options;
  OnnxOptions onnx;
  std::string output_dir;  // empty: the run folder
};
struct ExportResult {
  std::string run_dir;
  std::vector<std::string> files;  // written, in order
};
// `mixnas export`: writes model.mxr, model.onnx and arch.yaml (always) into the run folder.
ExportResult run_export(const ExportRequest& request);

}  // namespace mixnas::exporter
