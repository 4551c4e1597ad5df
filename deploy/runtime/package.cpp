#include "deploy/runtime/package.h"

#include <flatbuffers/flatbuffers.h>

#include <cstring>
#include <string>

#include "core/atomic_file.h"
#include "core/error.h"
#include "deploy/runtime/mxr_generated.h"

namespace mixnas::rt {
namespace {

namespace fb = mixnas::rt::fb;
using flatbuffers::FlatBufferBuilder;
using flatbuffers::Offset;

template <typename T>
std::vector<T> to_vector(const flatbuffers::Vector<T>* v) {
  return v ? std::vector<T>(v->begin(), v->end()) : std::vector<T>{};
}

std::string to_string(const flatbuffers::String* s) {
  return s ? s->str() : std::string();
}

Offset<void> write_attrs(FlatBufferBuilder& b, const Node& n, fb::OpAttrs* type) {
  switch (n.op) {
    case OpType::kConv2d: {
      const ConvAttrs& a = n.conv;
      *type = fb::OpAttrs::ConvAttrs;
      return fb::CreateConvAttrs(b, a.stride_h, a.stride_w, a.pad_top, a.pad_left, a.pad_bottom,
                                 a.pad_right, a.dilation_h, a.dilation_w, a.groups,
                                 static_cast<fb::Activation>(a.activation), a.alpha, a.has_bias,
                                 a.has_residual, a.f32_channel_begin)
          .Union();
    }
    case OpType::kConcat:
      *type = fb::OpAttrs::ConcatAttrs;
      return fb::CreateConcatAttrs(b).Union();
    case OpType::kSplit:
      *type = fb::OpAttrs::SplitAttrs;
      return fb::CreateSplitAttrs(b).Union();
    case OpType::kAdd:
      *type = fb::OpAttrs::AddAttrs;
      return fb::CreateAddAttrs(b).Union();
    case OpType::kMaxPool:
      *type = fb::OpAttrs::PoolAttrs;
      return fb::CreatePoolAttrs(b, n.pool.kernel, n.pool.stride, n.pool.pad).Union();
    case OpType::kUpsample:
      *type = fb::OpAttrs::UpsampleAttrs;
      return fb::CreateUpsampleAttrs(b, n.upsample_factor).Union();
    case OpType::kQuantize:
    case OpType::kDequantize:
      *type = fb::OpAttrs::QuantAttrs;
      return fb::CreateQuantAttrs(b).Union();
    case OpType::kDetectV8:
      *type = fb::OpAttrs::DetectV8Attrs;
      return fb::CreateDetectV8AttrsDirect(b, &n.v8.strides, n.v8.reg_max, n.v8.num_classes)
          .Union();
    case OpType::kDetectV5:
      *type = fb::OpAttrs::DetectV5Attrs;
      return fb::CreateDetectV5AttrsDirect(b, &n.v5.strides, &n.v5.anchors, n.v5.num_anchors,
                                           n.v5.num_classes)
          .Union();
    case OpType::kNms:
      *type = fb::OpAttrs::NmsAttrs;
      return fb::CreateNmsAttrs(b, n.nms.score_threshold, n.nms.iou_threshold, n.nms.max_detections,
                                n.nms.class_aware)
          .Union();
  }
  throw Error("serialize_package: node '" + n.name + "' has an unknown op type");
}

// Which attrs table each op carries.
fb::OpAttrs attrs_type_of(OpType op) {
  switch (op) {
    case OpType::kConv2d:
      return fb::OpAttrs::ConvAttrs;
    case OpType::kConcat:
      return fb::OpAttrs::ConcatAttrs;
    case OpType::kSplit:
      return fb::OpAttrs::SplitAttrs;
    case OpType::kAdd:
      return fb::OpAttrs::AddAttrs;
    case OpType::kMaxPool:
      return fb::OpAttrs::PoolAttrs;
    case OpType::kUpsample:
      return fb::OpAttrs::UpsampleAttrs;
    case OpType::kQuantize:
    case OpType::kDequantize:
      return fb::OpAttrs::QuantAttrs;
    case OpType::kDetectV8:
      return fb::OpAttrs::DetectV8Attrs;
    case OpType::kDetectV5:
      return fb::OpAttrs::DetectV5Attrs;
    case OpType::kNms:
      return fb::OpAttrs::NmsAttrs;
  }
  return fb::OpAttrs::NONE;
}

Node read_node(const fb::Node& f, int index, const std::string& origin) {
  Node n;
  n.name = to_string(f.name());
  const int op = static_cast<int>(f.op());
  if (op < 0 || op >= kNumOpTypes)
    throw Error(origin + ": node " + std::to_string(index) + " has unknown op type " +
                std::to_string(op) + "; the package needs a newer runtime or is corrupt");
  n.op = static_cast<OpType>(op);
  n.inputs = to_vector(f.inputs());
  n.outputs = to_vector(f.outputs());
  const fb::OpAttrs want = attrs_type_of(n.op);
  if (f.attrs_type() != want && f.attrs_type() != fb::OpAttrs::NONE)
    throw Error(origin + ": node " + std::to_string(index) + " '" + n.name + "' (" +
                op_type_name(n.op) + ") carries attributes of another op; the package is corrupt");
  switch (n.op) {
    case OpType::kConv2d: {
      const fb::ConvAttrs* a = f.attrs_as_ConvAttrs();
      if (!a)
        throw Error(origin + ": conv node '" + n.name +
                    "' has no attributes; the package is corrupt");
      ConvAttrs& c = n.conv;
      c.stride_h = a->stride_h();
      c.stride_w = a->stride_w();
      c.pad_top = a->pad_top();
      c.pad_left = a->pad_left();
      c.pad_bottom = a->pad_bottom();
      c.pad_right = a->pad_right();
      c.dilation_h = a->dilation_h();
      c.dilation_w = a->dilation_w();
      c.groups = a->groups();
      c.activation = static_cast<int>(a->activation());
      c.alpha = a->alpha();
      c.has_bias = a->has_bias();
      c.has_residual = a->has_residual();
      c.f32_channel_begin = a->f32_channel_begin();
      break;
    }
    case OpType::kMaxPool:
      if (const fb::PoolAttrs* a = f.attrs_as_PoolAttrs())
        n.pool = {a->kernel(), a->stride(), a->pad()};
      break;
    case OpType::kUpsample:
      if (const fb::UpsampleAttrs* a = f.attrs_as_UpsampleAttrs()) n.upsample_factor = a->factor();
      break;
    case OpType::kDetectV8:
      if (const fb::DetectV8Attrs* a = f.attrs_as_DetectV8Attrs()) {
        n.v8.strides = to_vector(a->strides());
        n.v8.reg_max = a->reg_max();
        n.v8.num_classes = a->num_classes();
      }
      break;
    case OpType::kDetectV5:
      if (const fb::DetectV5Attrs* a = f.attrs_as_DetectV5Attrs()) {
        n.v5.strides = to_vector(a->strides());
        n.v5.anchors = to_vector(a->anchors());
        n.v5.num_anchors = a->num_anchors();
        n.v5.num_classes = a->num_classes();
      }
      break;
    case OpType::kNms:
      if (const fb::NmsAttrs* a = f.attrs_as_NmsAttrs()) {
        n.nms.score_threshold = a->score_threshold();
        n.nms.iou_threshold = a->iou_threshold();
        n.nms.max_detections = a->max_detections();
        n.nms.class_aware = a->class_aware();
      }
      break;
    default:
      break;
  }
  return n;
}

}  // namespace

std::string serialize_package(const Graph& g) {
  validate_graph(g, "serialize_package");
  return serialize_package_unvalidated(g);
}

std::string serialize_package_unvalidated(const Graph& g) {
  FlatBufferBuilder b(1 << 16);
  std::vector<Offset<fb::Tensor>> tensors;
  for (const TensorDesc& t : g.tensors) {
    tensors.push_back(
        fb::CreateTensorDirect(b, t.name.c_str(), static_cast<fb::TensorKind>(t.kind), &t.shape,
                               static_cast<uint8_t>(t.bits), t.scale.empty() ? nullptr : &t.scale,
                               t.zero_point.empty() ? nullptr : &t.zero_point, t.buffer));
  }
  std::vector<Offset<fb::Node>> nodes;
  for (const Node& n : g.nodes) {
    fb::OpAttrs type = fb::OpAttrs::NONE;
    const Offset<void> attrs = write_attrs(b, n, &type);
    nodes.push_back(fb::CreateNodeDirect(b, n.name.c_str(), static_cast<fb::OpType>(n.op),
                                         &n.inputs, &n.outputs, type, attrs));
  }
  std::vector<Offset<fb::Buffer>> buffers;
  for (const WeightBuffer& w : g.buffers) {
    b.ForceVectorAlignment(w.data.size(), 1, 16);  // packed weights start 16-byte aligned
    buffers.push_back(fb::CreateBufferDirect(b, static_cast<fb::BufferLayout>(w.layout),
                                             static_cast<uint8_t>(w.bits), w.count, &w.data));
  }
  const InputSpec& in = g.input;
  const auto input = fb::CreateInputSpecDirect(b, in.tensor, in.height, in.width, in.letterbox,
                                               static_cast<uint8_t>(in.pad_value), in.pixel_scale,
                                               &in.mean, &in.std);
  const OutputSpec& out = g.output;
  std::vector<Offset<flatbuffers::String>> names;
  for (const std::string& s : out.class_names) names.push_back(b.CreateString(s));
  const auto output =
      fb::CreateOutputSpecDirect(b, &out.tensors, static_cast<fb::DecodeKind>(out.decode),
                                 &out.strides, out.reg_max, &names, out.detections);
  const auto model = fb::CreateModelDirect(b, kMxrSchemaVersion, g.producer.c_str(), &tensors,
                                           &nodes, &buffers, input, output);
  fb::FinishModelBuffer(b, model);
  return std::string(reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize());
}

Graph parse_package(const uint8_t* data, size_t size, const std::string& origin) {
  const std::string hint =
      "; the file is not a complete .mxr package (re-export it with `mixnas export`)";
  if (data == nullptr || size < 8) throw Error(origin + ": too short to be an .mxr package" + hint);
  if (size >= kMxrMaxBytes) throw Error(origin + ": larger than the 2 GiB package limit");
  if (!fb::ModelBufferHasIdentifier(data))
    throw Error(origin + ": not an .mxr package (file identifier is not \"MXR1\")" + hint);
  // FlatBuffers reads scalars in place: the verifier checks alignment, so parse from an aligned
  // copy when the caller's memory is not.
  std::vector<uint64_t> aligned;
  if (reinterpret_cast<uintptr_t>(data) % 16 != 0) {
    aligned.resize((size + 7) / 8);
    std::memcpy(aligned.data(), data, size);
    data = reinterpret_cast<const uint8_t*>(aligned.data());
  }
  flatbuffers::Verifier verifier(data, size, /*max_depth=*/64, /*max_tables=*/4000000);
  if (!fb::VerifyModelBuffer(verifier))
    throw Error(origin + ": the FlatBuffers verifier rejected the package (truncated or corrupt)" +
                hint);
  const fb::Model* m = fb::GetModel(data);
  if (m->schema_version() != kMxrSchemaVersion)
    throw Error(origin + ": schema version " + std::to_string(m->schema_version()) +
                " but this runtime reads version " + std::to_string(kMxrSchemaVersion) +
                "; export the model with a matching mixnas version");
  Graph g;
  g.producer = to_string(m->producer());
  if (m->buffers()) {
    for (const fb::Buffer* fbuf : *m->buffers()) {
      WeightBuffer w;
      const int layout = static_cast<int>(fbuf->layout());
      if (layout > static_cast<int>(BufferLayout::kDenseCodes))
        throw Error(origin + ": buffer " + std::to_string(g.buffers.size()) +
                    " has unknown layout " + std::to_string(layout) + hint);
      w.layout = static_cast<BufferLayout>(layout);
      w.bits = fbuf->bits();
      w.count = fbuf->count();
      w.data = to_vector(fbuf->data());
      g.buffers.push_back(std::move(w));
    }
  }
  if (m->tensors()) {
    for (const fb::Tensor* ft : *m->tensors()) {
      TensorDesc t;
      t.name = to_string(ft->name());
      const int kind = static_cast<int>(ft->kind());
      if (kind > static_cast<int>(TensorKind::kConstant))
        throw Error(origin + ": tensor " + std::to_string(g.tensors.size()) + " has unknown kind" +
                    hint);
      t.kind = static_cast<TensorKind>(kind);
      t.shape = to_vector(ft->shape());
      t.bits = ft->bits();
      t.scale = to_vector(ft->scale());
      t.zero_point = to_vector(ft->zero_point());
      t.buffer = ft->buffer();
      g.tensors.push_back(std::move(t));
    }
  }
  if (m->nodes()) {
    int i = 0;
    for (const fb::Node* fnode : *m->nodes()) g.nodes.push_back(read_node(*fnode, i++, origin));
  }
  if (!m->input()) throw Error(origin + ": no input spec" + hint);
  const fb::InputSpec& in = *m->input();
  g.input.tensor = in.tensor();
  g.input.height = in.height();
  g.input.width = in.width();
  g.input.letterbox = in.letterbox();
  g.input.pad_value = in.pad_value();
  g.input.pixel_scale = in.pixel_scale();
  g.input.mean = to_vector(in.mean());
  g.input.std = to_vector(in.std());
  if (!m->output()) throw Error(origin + ": no output spec" + hint);
  const fb::OutputSpec& out = *m->output();
  g.output.tensors = to_vector(out.tensors());
  const int decode = static_cast<int>(out.decode());
  if (decode > static_cast<int>(DecodeKind::kYoloV5))
    throw Error(origin + ": unknown decode kind " + std::to_string(decode) + hint);
  g.output.decode = static_cast<DecodeKind>(decode);
  g.output.strides = to_vector(out.strides());
  g.output.reg_max = out.reg_max();
  if (out.class_names())
    for (const flatbuffers::String* s : *out.class_names())
      g.output.class_names.push_back(to_string(s));
  g.output.detections = out.detections();
  validate_graph(g, origin);
  return g;
}

Graph load_package_file(const std::string& path) {
  const std::string bytes = read_file(path);
  return parse_package(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), path);
}

}  // namespace mixnas::rt
