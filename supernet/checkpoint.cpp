#include "supernet/checkpoint.h"

#include <yaml-cpp/yaml.h>

#include <cstdio>
#include <filesystem>
#include <set>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/text.h"
#include "supernet/zip_check.h"

namespace mixnas::supernet {
namespace fs = std::filesystem;

namespace {

std::string shape_str(const torch::Tensor& t) {
  std::string s = "[";
  for (int64_t i = 0; i < t.dim(); ++i) s += (i ? ", " : "") + std::to_string(t.size(i));
  return s + "]";
}

constexpr const char* kArchRemedy = "give the matching arch.yaml with --arch";

// Copies every parameter and buffer of `archive` into `m`, checking that the two hold the same
// names and shapes, so that weights of another architecture fail with a message, not garbage.
void load_checked(torch::nn::Module& m, torch::serialize::InputArchive& archive,
                  const std::string& prefix, const std::string& file,
                  const std::string& remedy = kArchRemedy) {
  torch::NoGradGuard no_grad;
  std::set<std::string> known;
  const auto misfit = [&](const std::string& key, const std::string& what) {
    return Error(file + ": " + what + " '" + prefix + key +
                 "': the weights were saved from another model YAML or architecture than the "
                 "one they are loaded into (" +
                 remedy + ")");
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
    load_checked(*c.value(), sub, prefix + c.key() + ".", file, remedy);
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

// The model a checkpoint was trained from, as check_resumable compares it: the model YAML's text
// (trailing blanks ignored), its scale and every site's choice.
struct ModelIdentity {
  std::string file, scale;
  uint64_t hash = 0;
  std::string str() const {
    char hex[20];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(hash));
    return file + " (scale '" + scale + "', model hash " + hex + ")";
  }
};

ModelIdentity identity_of(const ModelSpec& spec, const ArchChoices& choices) {
  uint64_t h = fnv1a(spec.scale + "\n");
  std::string pending;  // blank lines count only when text follows them
  for (const std::string& raw : text::split(spec.text, '\n')) {
    const std::string line = raw.substr(0, raw.find_last_not_of(" \t\r") + 1);
    pending += line + "\n";
    if (line.empty()) continue;
    h = fnv1a(pending, h);
    pending.clear();
  }
  for (const auto& [site, c] : choices) {
    h = fnv1a(site + " " + (c.act ? act_name(*c.act) : "-") + " " + std::to_string(c.w_bits) + " " +
                  std::to_string(c.a_bits) + "\n",
              h);
  }
  return {spec.file, spec.scale, h};
}

ArchFile checkpoint_arch(torch::serialize::InputArchive& archive, const std::string& path) {
  c10::IValue text;
  if (!archive.try_read("arch_yaml", text) || !text.isString())
    throw Error(path + ": the checkpoint holds no arch_yaml; it cannot be resumed");
  return parse_arch_yaml(text.toStringRef(), path + " (arch_yaml)");
}

std::string first_names(const std::vector<std::string>& names) {
  std::vector<std::string> shown(names.begin(), names.begin() + std::min<size_t>(names.size(), 4));
  return text::join(shown, ", ") + (names.size() > 4 ? ", ..." : "");
}

void check_finite(const YoloModel& model, const std::string& which) {
  torch::NoGradGuard no_grad;
  const auto check = [&](const std::string& name, const torch::Tensor& t) {
    if (t.is_floating_point() && !torch::isfinite(t).all().item<bool>())
      throw Error("not saved: the " + which + " tensor '" + name +
                  "' holds NaN or Inf (training diverged; lower train.lr0, check the labels with "
                  "`mixnas data check`, and resume from the last checkpoint)");
  };
  for (const auto& p : model->named_parameters(true)) check(p.key(), p.value());
  for (const auto& b : model->named_buffers(true)) check(b.key(), b.value());
}

}  // namespace

void save_archive(torch::serialize::OutputArchive& archive, const std::string& path) {
  std::string bytes;
  archive.save_to([&bytes](const void* data, size_t size) {
    bytes.append(static_cast<const char*>(data), size);
    return size;
  });
  write_file_atomic(path, bytes);
}

void open_archive(torch::serialize::InputArchive& archive, const std::string& path,
                  const std::string& what) {
  if (!fs::exists(path)) throw Error(path + ": no such " + what + " file");
  if (fs::is_directory(path)) throw Error(path + ": is a folder, not a " + what + " file");
  const std::string bytes = read_file(path);
  check_zip_records(bytes, path);
  try {
    archive.load_from(bytes.data(), bytes.size());
  } catch (const c10::Error& e) {
    throw Error(path + ": not a readable " + what + " (" + e.what_without_backtrace() + ")");
  }
}

void check_resumable(torch::serialize::InputArchive& archive, const std::string& path,
                     const YoloModel& model, const std::vector<std::string>& class_names) {
  c10::IValue format;
  if (!archive.try_read("format", format) || !format.isString() ||
      format.toStringRef() != kCheckpointFormat)
    throw Error(path + ": format '" + (format.isString() ? format.toStringRef() : "none") +
                "', this build resumes " + kCheckpointFormat + "; start a new run (no --resume)");
  const ArchFile arch = checkpoint_arch(archive, path);
  const std::vector<std::string> names = read_class_names(archive);
  if (arch.nc != model->nc() || names.size() != class_names.size())
    throw Error(path + ": the checkpoint was trained for " + std::to_string(arch.nc) +
                " classes (" + first_names(names) + "), the config gives " +
                std::to_string(model->nc()) + " (" + first_names(class_names) +
                "); resume with the dataset it was trained on, or start a new run (no --resume)");
  if (names != class_names)
    log::warn(path, ": class names differ from the dataset's (", first_names(names), " vs ",
              first_names(class_names), "); resuming, the count matches");
  const ModelIdentity stored = identity_of(arch.spec, arch.choices);
  const ModelIdentity given = identity_of(model->spec(), model->argmax_choices());
  if (stored.hash != given.hash)
    throw Error(path + ": the checkpoint was trained from " + stored.str() + ", the config gives " +
                given.str() +
                "; resume with the model it was trained from, or start a new run (no --resume)");
}

void load_weights(torch::serialize::InputArchive& archive, const std::string& key, YoloModel& model,
                  const std::string& path, const std::string& remedy) {
  torch::serialize::InputArchive weights;
  if (!archive.try_read(key, weights))
    throw Error(path + ": the checkpoint holds no '" + key + "'");
  load_checked(*model, weights, "", path, remedy.empty() ? kArchRemedy : remedy);
}

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
  check_finite(model, "model's");
  if (ema) check_finite(*ema, "EMA model's");
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
  torch::serialize::InputArchive archive;
  open_archive(archive, path, "weights file");
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
