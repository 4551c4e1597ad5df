#include "supernet/checkpoint.h"

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <set>

#include "core/error.h"

namespace mixnas::supernet {
namespace fs = std::filesystem;

namespace {

std::string shape_str(const torch::Tensor& t) {
  std::string s = "[";
  for (int64_t i = 0; i < t.dim(); ++i) s += (i ? ", " : "") + std::to_string(t.size(i));
  return s + "]";
}

// Copies every parameter and buffer of `archive` into `m`, checking that the two hold the same
// names and shapes, so that weights of another architecture fail with a message, not garbage.
void load_checked(torch::nn::Module& m, torch::serialize::InputArchive& archive,
                  const std::string& prefix, const std::string& file) {
  torch::NoGradGuard no_grad;
  std::set<std::string> known;
  const auto misfit = [&](const std::string& key, const std::string& what) {
    return Error(file + ": " + what + " '" + prefix + key +
                 "': the weights were saved from another model YAML or architecture than the "
                 "one they are loaded into (give the matching arch.yaml with --arch)");
  };
  const auto read_tensor = [&](const std::string& key, torch::Tensor& dst, bool buffer) {
    known.insert(key);
    torch::Tensor t;
    if (!archive.try_read(key, t, buffer)) throw misfit(key, "has no tensor");
    if (t.sizes() != dst.sizes())
      throw misfit(key, "holds shape " + shape_str(t) + ", the architecture expects " +
                            shape_str(dst) + " for");
    dst.copy_(t.to(dst.dtype()));
  };
  for (auto& p : m.named_parameters(false)) read_tensor(p.key(), p.value(), false);
  for (auto& b : m.named_buffers(false)) read_tensor(b.key(), b.value(), true);
  for (auto& c : m.named_children()) {
    known.insert(c.key());
    torch::serialize::InputArchive sub;
    if (!archive.try_read(c.key(), sub)) throw misfit(c.key(), "has no module");
    load_checked(*c.value(), sub, prefix + c.key() + ".", file);
  }
  // Tensors or modules the architecture lacks (keys() also lists the archive's own attributes,
  // such as "training", which are neither).
  for (const std::string& key : archive.keys()) {
    if (known.count(key)) continue;
    torch::Tensor t;
    torch::serialize::InputArchive sub;
    if (archive.try_read(key, t) || archive.try_read(key, sub))
      throw misfit(key, "holds a tensor or module");
  }
}

bool is_arch_yaml(const std::string& path) {
  try {
    YAML::Node root = YAML::LoadFile(path);
    return root.IsMap() && root["model_yaml"] && root["sites"];
  } catch (const YAML::Exception&) {
    return false;
  }
}

// --arch: an arch.yaml, or a model YAML through the builder's own lookup (configs/models,
// yolov8n.yaml -> scale n).
YoloModel model_from_arch_option(const std::string& path) {
  if (fs::exists(path) && is_arch_yaml(path)) return build_from_arch(read_arch_yaml(path));
  return build_model(path);
}

YoloModel model_from_checkpoint_arch(torch::serialize::InputArchive& archive,
                                     const std::string& path) {
  c10::IValue text;
  if (!archive.try_read("arch_yaml", text) || !text.isString())
    throw Error(path + ": the checkpoint holds no arch_yaml; give the architecture with --arch");
  try {
    return build_from_arch(parse_arch_yaml(text.toStringRef(), path + " (arch_yaml)"));
  } catch (const Error& e) {
    throw Error(path + ": the architecture stored in the checkpoint does not build: " + e.what());
  }
}

std::vector<std::string> read_class_names(torch::serialize::InputArchive& archive) {
  std::vector<std::string> names;
  c10::IValue v;
  if (!archive.try_read("names", v) || !v.isString()) return names;
  std::string cur;
  for (char c : v.toStringRef()) {
    if (c == '\n') {
      names.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  return names;
}

}  // namespace

bool has_quantized_sites(const YoloModel& model) {
  for (const auto& s : model->sites()) {
    for (int b : s.w_bits)
      if (b < kFloatBits) return true;
    for (int b : s.a_bits)
      if (b < kFloatBits) return true;
  }
  return false;
}

void write_checkpoint_model(torch::serialize::OutputArchive& archive, const YoloModel& model,
                            const YoloModel* ema, const std::vector<std::string>& class_names) {
  archive.write("format", c10::IValue(std::string(kCheckpointFormat)));
  archive.write("arch_yaml", c10::IValue(arch_yaml_text(model, model->argmax_choices())));
  std::string names;
  for (const auto& n : class_names) names += n + "\n";
  archive.write("names", c10::IValue(names));
  torch::serialize::OutputArchive model_archive, ema_archive;
  model->save(model_archive);
  archive.write("model", model_archive);
  if (ema) {
    (*ema)->save(ema_archive);
    archive.write("ema", ema_archive);
  }
}

TrainedModel load_trained_model(const std::string& path, const std::optional<std::string>& arch) {
  if (!fs::exists(path))
    throw Error(path + ": no such weights file (give weights/best.pt of a run, or the run folder)");
  if (fs::is_directory(path)) throw Error(path + ": is a folder, not a weights file");
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(path);
  } catch (const c10::Error& e) {
    throw Error(path + ": not a readable weights file (expected a mixnas checkpoint .pt)");
  }
  c10::IValue format;
  const bool has_format = archive.try_read("format", format);
  if (has_format && (!format.isString() || format.toStringRef() != kCheckpointFormat))
    throw Error(path + ": unsupported checkpoint format '" +
                (format.isString() ? format.toStringRef() : std::string("?")) +
                "' (this build reads " + kCheckpointFormat + ")");
  if (!has_format && !arch)
    throw Error(path +
                ": not a mixnas checkpoint (no format tag); give the architecture (arch.yaml "
                "or model YAML) with --arch to read plain model weights");
  TrainedModel out;
  out.model = arch ? model_from_arch_option(*arch) : model_from_checkpoint_arch(archive, path);
  if (has_format) {
    // The EMA weights are what validation measured; fall back to the raw ones.
    torch::serialize::InputArchive weights;
    if (!archive.try_read("ema", weights) && !archive.try_read("model", weights))
      throw Error(path + ": the checkpoint holds neither 'ema' nor 'model' weights");
    load_checked(*out.model, weights, "", path);
    out.class_names = read_class_names(archive);
  } else {
    load_checked(*out.model, archive, "", path);
  }
  out.model->eval();
  if (has_quantized_sites(out.model)) out.model->set_fold_bn(true);
  return out;
}

}  // namespace mixnas::supernet
