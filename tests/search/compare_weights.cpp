// compare_weights A.pt B.pt [RTOL]: exit 0 when every tensor of the "model" entry of two mixnas
// checkpoints (weights/last.pt, weights/supernet.pt) matches: the same names and shapes, and
// max|a - b| <= RTOL x max|b| per tensor (default 1e-5). Prints the worst tensor either way.
// BN running statistics are left out: a data-parallel job averages them over its ranks at each
// epoch's end instead of updating them micro-batch after micro-batch (docs/distributed.md).
#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>

namespace {

using Tensors = std::map<std::string, torch::Tensor>;

void collect(torch::serialize::InputArchive& archive, const std::string& prefix, Tensors& out) {
  for (const std::string& key : archive.keys()) {
    torch::Tensor t;
    if (archive.try_read(key, t) || archive.try_read(key, t, /*is_buffer=*/true)) {
      out[prefix + key] = t;
      continue;
    }
    torch::serialize::InputArchive sub;
    if (archive.try_read(key, sub)) collect(sub, prefix + key + ".", out);
  }
}

bool is_bn_statistic(const std::string& name) {
  for (const char* end : {"running_mean", "running_var"}) {
    const std::string e = end;
    if (name.size() >= e.size() && name.compare(name.size() - e.size(), e.size(), e) == 0)
      return true;
  }
  return false;
}

Tensors model_tensors(const std::string& path) {
  torch::serialize::InputArchive archive, model;
  archive.load_from(path);
  archive.read("model", model);
  Tensors out;
  collect(model, "", out);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: compare_weights A.pt B.pt [RTOL]\n");
    return 2;
  }
  const double rtol = argc > 3 ? std::atof(argv[3]) : 1e-5;
  const Tensors a = model_tensors(argv[1]), b = model_tensors(argv[2]);
  if (a.size() != b.size() || a.empty()) {
    std::printf("different tensors: %zu vs %zu\n", a.size(), b.size());
    return 1;
  }
  double worst = 0;
  std::string worst_name;
  for (const auto& [name, ta] : a) {
    auto it = b.find(name);
    if (it == b.end() || !ta.sizes().equals(it->second.sizes())) {
      std::printf("%s: missing or another shape in %s\n", name.c_str(), argv[2]);
      return 1;
    }
    if (!ta.is_floating_point() || is_bn_statistic(name)) continue;
    const torch::Tensor x = ta.to(torch::kFloat64), y = it->second.to(torch::kFloat64);
    const double scale = std::max(y.abs().max().item<double>(), 1e-30);
    const double rel = (x - y).abs().max().item<double>() / scale;
    if (rel >= worst) {
      worst = rel;
      worst_name = name;
    }
  }
  std::printf("%zu tensors, largest relative difference %.3g (%s), tolerance %.3g\n", a.size(),
              worst, worst_name.c_str(), rtol);
  return worst <= rtol ? 0 : 1;
}
