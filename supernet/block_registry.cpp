#include "supernet/block_registry.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "core/error.h"
#include "supernet/model.h"

namespace mixnas::supernet {

int as_int(const YAML::Node& node, const std::string& where, const std::string& what) {
  try {
    return node.as<int>();
  } catch (const YAML::Exception&) {
    throw Error(where + ": " + what + " must be an integer, got '" + node.Scalar() + "'");
  }
}

double as_double(const YAML::Node& node, const std::string& where, const std::string& what) {
  try {
    return node.as<double>();
  } catch (const YAML::Exception&) {
    throw Error(where + ": " + what + " must be a number, got '" + node.Scalar() + "'");
  }
}

// ---------------------------------------------------------------------------------------------
// Row arguments

namespace {
bool is_none(const YAML::Node& node) {
  return !node || node.IsNull() || (node.IsScalar() && node.Scalar() == "None");
}
}  // namespace

void RowArgs::check_count(size_t lo, size_t hi, const std::string& signature) const {
  if (size() < lo || size() > hi)
    throw Error(where_ + ": " + module_ + " takes " +
                (lo == hi ? std::to_string(lo) : std::to_string(lo) + ".." + std::to_string(hi)) +
                " arguments " + signature + ", got " + std::to_string(size()));
}

std::string RowArgs::at(size_t i) const {
  if (i < size() && node_[i].Mark().line >= 0) {
    const auto m = node_[i].Mark();
    auto colon = where_.find(':');
    std::string file = colon == std::string::npos ? where_ : where_.substr(0, colon);
    return file + ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1);
  }
  return where_;
}

bool RowArgs::has(size_t i) const {
  return i < size() && !is_none(node_[i]);
}

int64_t RowArgs::integer(size_t i, int64_t fallback) const {
  if (!has(i)) return fallback;
  const YAML::Node n = node_[i];
  if (n.IsScalar() && n.Scalar() == "nc") return nc_;
  return as_int(n, at(i), module_ + " argument " + std::to_string(i + 1));
}

double RowArgs::number(size_t i, double fallback) const {
  if (!has(i)) return fallback;
  return as_double(node_[i], at(i), module_ + " argument " + std::to_string(i + 1));
}

bool RowArgs::boolean(size_t i, bool fallback) const {
  if (!has(i)) return fallback;
  try {
    return node_[i].as<bool>();
  } catch (const YAML::Exception&) {
    throw Error(at(i) + ": " + module_ + " argument " + std::to_string(i + 1) +
                " must be True or False, got '" + node_[i].Scalar() + "'");
  }
}

// ---------------------------------------------------------------------------------------------
// Rows

int64_t BlockRow::out_channels(int64_t c2) const {
  if (c2 == nc) return c2;
  const double c = double(std::min<int64_t>(c2, spec.max_channels)) * spec.width;
  return int64_t(std::ceil(c / 8.0)) * 8;  // ultralytics make_divisible(c, 8)
}

int64_t BlockRow::single_input() const {
  if (in_channels.size() != 1)
    throw Error(row.where + ": " + row.module + " takes one input, 'from' lists " +
                std::to_string(in_channels.size()));
  return in_channels[0];
}

void BlockRow::no_repeats() const {
  if (repeats != 1) throw Error(row.where + ": " + row.module + " cannot repeat");
}

namespace {

// The module `m` as the block type its lowering expects.
template <class T>
T& as(torch::nn::Module& m) {
  auto* t = dynamic_cast<T*>(&m);
  if (!t) throw Error("export: internal error: " + m.name() + " is not the block its row names");
  return *t;
}

// Conv, Bottleneck, SPPF, C2f and C3 read one input and take c2 first.
struct Channels {
  int64_t c1, c2;
};
Channels conv_family_channels(const BlockRow& r) {
  const int64_t c1 = r.single_input();
  const int64_t c2 = r.out_channels(r.args.integer(0, 0));
  if (c2 < 1) throw Error(r.args.at(0) + ": output channels must be positive");
  return {c1, c2};
}

// The row's `repeats` copies of make(path, input channels) in a row, each copy after the first
// reading c2; copies are named "<row>.<k>" when there are several.
template <class Make>
std::shared_ptr<BlockImpl> repeated(const BlockRow& r, Channels ch, const Make& make) {
  std::vector<std::shared_ptr<BlockImpl>> copies;
  for (int k = 0; k < r.repeats; ++k)
    copies.push_back(
        make(r.repeats > 1 ? r.name + "." + std::to_string(k) : r.name, k == 0 ? ch.c1 : ch.c2));
  return copies.size() == 1 ? copies[0] : std::make_shared<RepeatImpl>(copies);
}

BuiltBlock built(std::shared_ptr<BlockImpl> block, int64_t channels,
                 const std::ostringstream& args) {
  BuiltBlock b;
  b.block = std::move(block);
  b.channels = channels;
  b.arguments = args.str();
  return b;
}

// ---------------------------------------------------------------------------------------------
// Conv

BuiltBlock build_conv(const BlockRow& r) {
  const Channels ch = conv_family_channels(r);
  const RowArgs& a = r.args;
  a.check_count(1, 7, "[c2, k, s, p, g, d, act]");
  const int64_t k = a.integer(1, 1), s = a.integer(2, 1), p = a.integer(3, -1), g = a.integer(4, 1),
                d = a.integer(5, 1);
  const bool act = a.boolean(6, true);
  std::ostringstream text;
  text << "[" << ch.c1 << ", " << ch.c2 << ", " << k << ", " << s;
  if (a.has(3)) text << ", " << p;
  text << "]";
  auto block = repeated(r, ch, [&](const std::string& path, int64_t c1) {
    return std::make_shared<ConvImpl>(r.ctx, path, c1, ch.c2, k, s, p, g, d, act);
  });
  return built(block, ch.c2, text);
}

int lower_conv(torch::nn::Module& m, Lowerer& low, const std::vector<int>& in, const std::string&) {
  return low.conv(as<ConvImpl>(m), in.at(0));
}

// ---------------------------------------------------------------------------------------------
// Bottleneck

BuiltBlock build_bottleneck(const BlockRow& r) {
  const Channels ch = conv_family_channels(r);
  const RowArgs& a = r.args;
  const bool v5 = r.spec.anchor_based;
  a.check_count(1, v5 ? 4 : 5, v5 ? "[c2, shortcut, g, e]" : "[c2, shortcut, g, k, e]");
  const bool shortcut = a.boolean(1, true);
  const int64_t g = a.integer(2, 1);
  int64_t k1 = v5 ? 1 : 3, k2 = 3;
  double e = 0.5;
  if (v5) {
    e = a.number(3, 0.5);
  } else {
    if (a.has(3)) {
      const YAML::Node kn = a.node()[3];
      if (!kn.IsSequence() || kn.size() != 2)
        throw Error(a.at(3) + ": Bottleneck k must be [k1, k2]");
      k1 = as_int(kn[0], a.at(3), "k1");
      k2 = as_int(kn[1], a.at(3), "k2");
    }
    e = a.number(4, 0.5);
  }
  std::ostringstream text;
  text << "[" << ch.c1 << ", " << ch.c2 << "]";
  auto block = repeated(r, ch, [&](const std::string& path, int64_t c1) {
    return std::make_shared<BottleneckImpl>(r.ctx, path, c1, ch.c2, shortcut, g, k1, k2, e);
  });
  return built(block, ch.c2, text);
}

int lower_bottleneck_block(BottleneckImpl& b, Lowerer& low, int x) {
  const int a = low.conv(*b.cv1, x);
  return low.conv(*b.cv2, a, b.add ? x : -1);
}

int lower_bottleneck(torch::nn::Module& m, Lowerer& low, const std::vector<int>& in,
                     const std::string&) {
  return lower_bottleneck_block(as<BottleneckImpl>(m), low, in.at(0));
}

// ---------------------------------------------------------------------------------------------
// C2f and C3: the row's repeats become the block's n bottlenecks.

BuiltBlock build_csp(const BlockRow& r, bool c3) {
  const Channels ch = conv_family_channels(r);
  const RowArgs& a = r.args;
  a.check_count(1, 4, "[c2, shortcut, g, e]");
  const bool shortcut = a.boolean(1, c3);
  const int64_t g = a.integer(2, 1);
  const double e = a.number(3, 0.5);
  std::ostringstream text;
  text << "[" << ch.c1 << ", " << ch.c2 << ", " << r.repeats;
  if (a.has(1)) text << ", " << (shortcut ? "True" : "False");
  text << "]";
  std::shared_ptr<BlockImpl> block;
  if (c3)
    block = std::make_shared<C3Impl>(r.ctx, r.name, ch.c1, ch.c2, r.repeats, shortcut, g, e);
  else
    block = std::make_shared<C2fImpl>(r.ctx, r.name, ch.c1, ch.c2, r.repeats, shortcut, g, e);
  return built(block, ch.c2, text);
}

BuiltBlock build_c2f(const BlockRow& r) {
  return build_csp(r, false);
}

BuiltBlock build_c3(const BlockRow& r) {
  return build_csp(r, true);
}

int lower_c2f(torch::nn::Module& m, Lowerer& low, const std::vector<int>& in,
              const std::string& path) {
  C2fImpl& c = as<C2fImpl>(m);
  const int t = low.conv(*c.cv1, in.at(0));
  std::vector<int> ys = low.split(path + ".chunk", t, 2);
  for (auto& b : c.m) ys.push_back(lower_bottleneck_block(*b, low, ys.back()));
  return low.conv(*c.cv2, low.concat(path + ".cat", ys));
}

int lower_c3(torch::nn::Module& m, Lowerer& low, const std::vector<int>& in,
             const std::string& path) {
  C3Impl& c = as<C3Impl>(m);
  int a = low.conv(*c.cv1, in.at(0));
  for (auto& b : c.m) a = lower_bottleneck_block(*b, low, a);
  const int d = low.conv(*c.cv2, in.at(0));
  return low.conv(*c.cv3, low.concat(path + ".cat", {a, d}));
}

// ---------------------------------------------------------------------------------------------
// SPPF

BuiltBlock build_sppf(const BlockRow& r) {
  const Channels ch = conv_family_channels(r);
  r.args.check_count(1, 2, "[c2, k]");
  const int64_t k = r.args.integer(1, 5);
  std::ostringstream text;
  text << "[" << ch.c1 << ", " << ch.c2 << ", " << k << "]";
  auto block = repeated(r, ch, [&](const std::string& path, int64_t c1) {
    return std::make_shared<SPPFImpl>(r.ctx, path, c1, ch.c2, k);
  });
  return built(block, ch.c2, text);
}

int lower_sppf(torch::nn::Module& m, Lowerer& low, const std::vector<int>& in,
               const std::string& path) {
  SPPFImpl& s = as<SPPFImpl>(m);
  std::vector<int> ys{low.conv(*s.cv1, in.at(0))};
  const int k = int(s.k);
  for (int i = 0; i < 3; ++i)
    ys.push_back(low.max_pool(path + ".pool" + std::to_string(i), ys.back(), k, 1, k / 2));
  return low.conv(*s.cv2, low.concat(path + ".cat", ys));
}

// ---------------------------------------------------------------------------------------------
// nn.Upsample and Concat

BuiltBlock build_upsample(const BlockRow& r) {
  const int64_t c = r.single_input();
  const RowArgs& a = r.args;
  a.check_count(3, 3, "[size, scale_factor, mode]");
  if (a.has(0)) throw Error(a.at(0) + ": nn.Upsample size must be None (use scale_factor)");
  const double scale = a.number(1, 2.0);
  const std::string mode = a.node()[2].as<std::string>();
  if (mode != "nearest")
    throw Error(a.at(2) + ": nn.Upsample mode '" + mode + "' is not supported; use 'nearest'");
  r.no_repeats();
  std::ostringstream text;
  text << "[None, " << scale << ", 'nearest']";
  return built(std::make_shared<UpsampleImpl>(scale), c, text);
}

int lower_upsample(torch::nn::Module& m, Lowerer& low, const std::vector<int>& in,
                   const std::string& path) {
  const double scale = as<UpsampleImpl>(m).scale();
  const int f = int(std::lround(scale));
  if (f < 1 || double(f) != scale)
    low.unsupported("upsample factor " + std::to_string(scale) + " is not an integer");
  return low.upsample(path + ".up", in.at(0), f);
}

BuiltBlock build_concat(const BlockRow& r) {
  r.args.check_count(0, 1, "[dim]");
  const int64_t dim = r.args.integer(0, 1);
  if (dim != 1) throw Error(r.args.at(0) + ": Concat supports dim 1 (channels) only");
  r.no_repeats();
  int64_t c = 0;
  for (int64_t x : r.in_channels) c += x;
  std::ostringstream text;
  text << "[" << dim << "]";
  return built(std::make_shared<ConcatImpl>(dim), c, text);
}

int lower_concat(torch::nn::Module&, Lowerer& low, const std::vector<int>& in,
                 const std::string& path) {
  return low.concat(path + ".cat", in);
}

// ---------------------------------------------------------------------------------------------
// Detect: YOLOv8 (anchor-free, DFL) or, when the model YAML has anchors:, YOLOv5.

BuiltBlock build_detect(const BlockRow& r) {
  if (!r.last) throw Error(r.row.where + ": Detect must be the last layer");
  const RowArgs& a = r.args;
  const bool v5 = r.spec.anchor_based;
  BuiltBlock b;
  if (v5) {
    a.check_count(2, 2, "[nc, anchors]");
    if (!(a.node()[1].IsScalar() && a.node()[1].Scalar() == "anchors"))
      throw Error(a.at(1) + ": Detect's second argument must be 'anchors' (the anchors: key)");
    b.head = std::make_shared<DetectV5Impl>(r.ctx, r.name, a.integer(0, r.nc), r.spec.anchors,
                                            r.in_channels);
  } else {
    a.check_count(1, 1, "[nc]");
    b.head = std::make_shared<DetectImpl>(r.ctx, r.name, a.integer(0, r.nc), r.in_channels);
  }
  std::ostringstream text;
  text << "[" << b.head->nc;
  if (v5) text << ", anchors";
  text << ", [";
  for (size_t k = 0; k < r.in_channels.size(); ++k) text << (k ? ", " : "") << r.in_channels[k];
  text << "]]";
  b.arguments = text.str();
  return b;
}

void lower_detect_v8(DetectImpl& d, Lowerer& low, const std::vector<int>& in) {
  const torch::Tensor ramp = torch::arange(DetectImpl::kRegMax, torch::kFloat).view({1, -1, 1, 1});
  // Within float rounding of the ramp (checkpoints averaged by an EMA before it copied fixed
  // parameters hold it to 1 ulp); the runtime decodes with the exact ramp.
  if (!d.dfl_weight.defined() || !torch::allclose(d.dfl_weight.detach().cpu(), ramp, 0, 1e-4))
    low.unsupported("the DFL projection is not the fixed 0..reg_max-1 ramp");
  std::vector<int> boxes, classes;
  for (size_t i = 0; i < in.size(); ++i)
    for (int k = 0; k < 2; ++k) {
      DetectBranchImpl& branch = k == 0 ? *d.cv2.at(i) : *d.cv3.at(i);
      const int x = low.conv(*branch.c1, low.conv(*branch.c0, in[i]));
      (k == 0 ? boxes : classes).push_back(low.bare_conv(*branch.out, x));
    }
  low.detect_v8(int(d.nc), int(DetectImpl::kRegMax), boxes, classes);
}

int lower_detect(torch::nn::Module& m, Lowerer& low, const std::vector<int>& in,
                 const std::string&) {
  if (auto* v5 = dynamic_cast<DetectV5Impl*>(&m)) {
    std::vector<int> levels;
    for (size_t i = 0; i < in.size(); ++i) levels.push_back(low.bare_conv(*v5->m.at(i), in[i]));
    low.detect_v5(int(v5->nc), v5->anchors_px, levels);
  } else {
    lower_detect_v8(as<DetectImpl>(m), low, in);
  }
  return -1;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// The table

const std::vector<BlockType>& block_types() {
  static const std::vector<BlockType> types = {
      {"Conv", {}, build_conv, lower_conv},
      {"Bottleneck", {}, build_bottleneck, lower_bottleneck},
      {"C2f", {}, build_c2f, lower_c2f},
      {"C3", {}, build_c3, lower_c3},
      {"SPPF", {}, build_sppf, lower_sppf},
      {"nn.Upsample", {"Upsample", "torch.nn.Upsample"}, build_upsample, lower_upsample},
      {"Concat", {}, build_concat, lower_concat},
      {"Detect", {}, build_detect, lower_detect},
  };
  return types;
}

const BlockType* find_block_type(const std::string& module) {
  for (const BlockType& t : block_types())
    if (t.name == module ||
        std::find(t.aliases.begin(), t.aliases.end(), module) != t.aliases.end())
      return &t;
  return nullptr;
}

std::vector<std::string> block_type_names() {
  std::vector<std::string> names;
  for (const BlockType& t : block_types()) names.push_back(t.name);
  return names;
}

int lower_block(const BlockType& type, torch::nn::Module& m, Lowerer& low,
                const std::vector<int>& inputs, const std::string& path) {
  if (!dynamic_cast<RepeatImpl*>(&m)) return type.lower(m, low, inputs, path);
  int x = inputs.at(0);
  for (const auto& child : m.named_children())
    x = type.lower(*child.value(), low, {x}, path + "." + child.key());
  return x;
}

}  // namespace mixnas::supernet
