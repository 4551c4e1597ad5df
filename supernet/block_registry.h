#pragma once
// The blocks a model YAML may name, in one table: per module name, how the model builder makes the
// block of a row and how the exporter lowers it. Adding a block is one entry in block_types()
// (block_registry.cpp): the block class (blocks.h), a build function and a lower function.
//
// The lowering speaks to the exporter through Lowerer, whose values are opaque integers: the
// exporter (deploy/export/export.cpp) implements it, so supernet/ stays free of the export IR.
#include <torch/torch.h>
#include <yaml-cpp/yaml.h>

#include <memory>
#include <string>
#include <vector>

#include "supernet/blocks.h"

namespace mixnas::supernet {

struct LayerSpec;
struct ModelSpec;

// A YAML scalar as a number; throws mixnas::Error "<where>: <what> must be ..." otherwise.
int as_int(const YAML::Node& node, const std::string& where, const std::string& what);
double as_double(const YAML::Node& node, const std::string& where, const std::string& what);

// The arguments of one row, read with their file:line:col; `nc` stands for the class count.
class RowArgs {
 public:
  RowArgs(const YAML::Node& node, std::string where, std::string module, int nc)
      : node_(node), where_(std::move(where)), module_(std::move(module)), nc_(nc) {}
  size_t size() const { return node_ ? node_.size() : 0; }
  // Throws "<row>: <module> takes lo..hi arguments <signature>, got n" outside [lo, hi].
  void check_count(size_t lo, size_t hi, const std::string& signature) const;
  // Where argument i stands (the row's place when it is missing).
  std::string at(size_t i) const;
  bool has(size_t i) const;  // given and not None
  int64_t integer(size_t i, int64_t fallback) const;
  double number(size_t i, double fallback) const;
  bool boolean(size_t i, bool fallback) const;
  const YAML::Node& node() const { return node_; }

 private:
  YAML::Node node_;
  std::string where_, module_;
  int nc_;
};

// One model-YAML row as its build function sees it.
struct BlockRow {
  BuildContext& ctx;
  const ModelSpec& spec;
  const LayerSpec& row;
  const RowArgs& args;
  std::string name;                  // module path, "model.<i>"
  int repeats = 1;                   // after depth_multiple
  std::vector<int64_t> in_channels;  // per `from` input
  int nc = 80;
  bool last = false;  // the model's last row
  // c2 of the YAML scaled by width_multiple and capped by max_channels, as ultralytics does
  // (nc stays nc).
  int64_t out_channels(int64_t c2) const;
  // The channels of the row's one input; throws when `from` lists several.
  int64_t single_input() const;
  // Throws "<row>: <module> cannot repeat" when repeats > 1.
  void no_repeats() const;
};

// What a build function makes of a row: a block, or the model's head (the last row).
struct BuiltBlock {
  std::shared_ptr<BlockImpl> block;
  std::shared_ptr<HeadImpl> head;
  int64_t channels = 0;   // output channels (0 for the head)
  std::string arguments;  // the evaluated arguments as the model summary prints them
};

// What the exporter offers a block's lowering. Values are the exporter's handles.
class Lowerer {
 public:
  virtual ~Lowerer() = default;
  // A Conv block: BN folded, activation fused, `residual` (a value or -1) added after it.
  virtual int conv(ConvImpl& c, int x, int residual = -1) = 0;
  // A bare conv (a head's output conv): its own weight and bias, no activation.
  virtual int bare_conv(QConv2dImpl& q, int x) = 0;
  virtual int concat(const std::string& name, const std::vector<int>& xs) = 0;
  // `x` split into `parts` equal channel slices, one value each.
  virtual std::vector<int> split(const std::string& name, int x, int parts) = 0;
  virtual int max_pool(const std::string& name, int x, int kernel, int stride, int pad) = 0;
  virtual int upsample(const std::string& name, int x, int factor) = 0;
  // The heads' outputs: YOLOv8 per level a box value [4 * reg_max] and a class value [nc];
  // YOLOv5 per level one value [na * (5 + nc)], anchors_px [levels, na, 2].
  virtual void detect_v8(int nc, int reg_max, const std::vector<int>& boxes,
                         const std::vector<int>& classes) = 0;
  virtual void detect_v5(int nc, const torch::Tensor& anchors_px,
                         const std::vector<int>& levels) = 0;
  // Throws the exporter's error for what the runtime cannot run.
  [[noreturn]] virtual void unsupported(const std::string& what) = 0;
};

struct BlockType {
  std::string name;                  // as the YAML's module column names it
  std::vector<std::string> aliases;  // other spellings that mean the same module
  BuiltBlock (*build)(const BlockRow& row);
  // Lowers the block `m` (at module path `path`) reading `inputs`; returns its output value (-1
  // for the head).
  int (*lower)(torch::nn::Module& m, Lowerer& low, const std::vector<int>& inputs,
               const std::string& path);
};

// Every block, in the order errors list them.
const std::vector<BlockType>& block_types();
// The block a module name (or alias) means; nullptr when there is none.
const BlockType* find_block_type(const std::string& module);
// The names of block_types(), for messages.
std::vector<std::string> block_type_names();

// type.lower for the block a row built, through the copies of a repeated row (RepeatImpl).
int lower_block(const BlockType& type, torch::nn::Module& m, Lowerer& low,
                const std::vector<int>& inputs, const std::string& path);

}  // namespace mixnas::supernet
