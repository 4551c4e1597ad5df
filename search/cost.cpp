#include "search/cost.h"

#include <algorithm>
#include <map>
#include <random>
#include <set>

#include "core/error.h"

namespace mixnas::search {
namespace sn = mixnas::supernet;

namespace {

int bytes_per_element(int bits) {
  return bits == 32 ? 4 : 1;
}

// The activation name the runtime knows (layer signatures use it).
std::string rt_act(const CostModel::Site& s, size_t a) {
  return s.has_act ? sn::act_name(s.acts[a]) : "identity";
}

// Relative cost of activations in an epilogue, to pick the "slowest" one for reference choices
// when no table is attached yet (the table's numbers decide once attached).
int act_rank(sn::Act a) {
  switch (a) {
    case sn::Act::kIdentity:
      return 0;
    case sn::Act::kRelu:
      return 1;
    case sn::Act::kRelu6:
      return 2;
    case sn::Act::kLeakyRelu:
      return 3;
    case sn::Act::kHardsigmoid:
      return 4;
    case sn::Act::kHardswish:
      return 5;
    case sn::Act::kSigmoid:
      return 6;
    case sn::Act::kSilu:
      return 7;
    case sn::Act::kTanh:
      return 8;
    case sn::Act::kGeluTanh:
      return 9;
    case sn::Act::kGelu:
      return 10;
    case sn::Act::kMish:
      return 11;
  }
  return 0;
}

}  // namespace

CostModel::CostModel(sn::YoloModel& model, int imgsz) : imgsz_(imgsz) {
  model->probe(imgsz, imgsz);
  for (const auto& ref : model->site_refs()) {
    Site s;
    s.name = ref.name;
    s.has_act = ref.act != nullptr;
    s.head_output = ref.block == nullptr;
    if (s.has_act) s.acts = ref.act->candidates();
    s.w_bits = ref.conv->w_bits();
    s.a_bits = ref.conv->a_bits();
    s.geometry = ref.conv->geometry();
    if (s.geometry.in_h <= 0 || s.geometry.out_h <= 0) {
      throw Error("site " + s.name + " has no geometry at " + std::to_string(imgsz) +
                  " px (is the input size a multiple of the largest stride?)");
    }
    sites_.push_back(std::move(s));
  }
  if (sites_.empty()) throw Error("the model has no conv sites to cost");
}

eval::LayerSignature CostModel::signature(const Site& s, size_t a, int w_bits, int a_bits) const {
  eval::LayerSignature sig;
  const auto& g = s.geometry;
  sig.in_h = static_cast<int>(g.in_h);
  sig.in_w = static_cast<int>(g.in_w);
  sig.in_c = static_cast<int>(g.in_channels);
  sig.out_c = static_cast<int>(g.out_channels);
  sig.kernel = static_cast<int>(g.kernel);
  sig.stride = static_cast<int>(g.stride);
  sig.groups = static_cast<int>(g.groups);
  sig.act = rt_act(s, a);
  // The runtime runs a conv with either side in fp32 as a float conv (the exporter dequantizes
  // the other side: docs/export.md), so such candidates are measured as fp32 layers.
  bool is_float = w_bits == 32 || a_bits == 32;
  sig.w_bits = is_float ? 32 : w_bits;
  sig.a_bits = is_float ? 32 : a_bits;
  // A head output conv feeds the decode in float.
  sig.out_bits = (s.head_output || is_float) ? 32 : 8;
  return sig;
}

std::vector<eval::LayerSignature> CostModel::signatures() const {
  std::vector<eval::LayerSignature> out;
  std::set<std::string> seen;
  for (const auto& s : sites_) {
    size_t na = s.has_act ? s.acts.size() : 1;
    for (size_t a = 0; a < na; ++a)
      for (int w : s.w_bits)
        for (int b : s.a_bits) {
          auto sig = signature(s, a, w, b);
          if (seen.insert(sig.key()).second) out.push_back(sig);
        }
  }
  return out;
}

size_t CostModel::site_index(const std::string& name) const {
  for (size_t i = 0; i < sites_.size(); ++i)
    if (sites_[i].name == name) return i;
  throw Error("cost model: unknown site " + name);
}

namespace {
struct Pick {
  size_t a = 0, w = 0, b = 0;
};
template <typename T>
size_t index_of(const std::vector<T>& v, const T& x) {
  auto it = std::find(v.begin(), v.end(), x);
  return it == v.end() ? v.size() : static_cast<size_t>(it - v.begin());
}
}  // namespace

std::vector<eval::LayerSignature> CostModel::signatures(const sn::ArchChoices& choices) const {
  std::vector<eval::LayerSignature> out;
  for (const auto& s : sites_) {
    auto it = choices.find(s.name);
    size_t a = 0;
    int w = s.w_bits.front(), b = s.a_bits.front();
    if (it != choices.end()) {
      if (s.has_act && it->second.act) {
        a = index_of(s.acts, *it->second.act);
        if (a == s.acts.size()) {
          // A fixed architecture may use an activation outside the candidates (a baseline).
          Site tmp = s;
          tmp.acts = {*it->second.act};
          out.push_back(signature(tmp, 0, it->second.w_bits, it->second.a_bits));
          continue;
        }
      }
      w = it->second.w_bits;
      b = it->second.a_bits;
    }
    out.push_back(signature(s, a, w, b));
  }
  return out;
}

void CostModel::attach(const eval::LatencyTable& table) {
  for (auto& s : sites_) {
    size_t na = s.has_act ? s.acts.size() : 1, nw = s.w_bits.size(), nb = s.a_bits.size();
    s.latency.assign(na * nw * nb, 0.0f);
    s.weight_bytes.assign(nw, 0.0f);
    s.resident_bytes.assign(nw * nb, 0.0f);
    for (size_t a = 0; a < na; ++a)
      for (size_t w = 0; w < nw; ++w)
        for (size_t b = 0; b < nb; ++b) {
          const auto& e = table.at(signature(s, a, s.w_bits[w], s.a_bits[b]).key());
          s.latency[(a * nw + w) * nb + b] = static_cast<float>(e.median_ms);
          if (a == 0 && b == 0) s.weight_bytes[w] = static_cast<float>(e.weight_bytes);
          if (a == 0) s.resident_bytes[w * nb + b] = static_cast<float>(e.resident_weight_bytes);
        }
  }
  calibration_ = table.calibration();
  attached_ = true;
}

std::vector<CostModel::Pruned> CostModel::dominated_bits(const eval::LatencyTable& table,
                                                         double margin) const {
  std::vector<Pruned> out;
  if (margin < 0) return out;
  for (const auto& s : sites_) {
    const size_t na = s.has_act ? s.acts.size() : 1;
    auto entry = [&](size_t a, int w, int b) -> const eval::LatencyEntry& {
      return table.at(signature(s, a, w, b).key());
    };
    // `low` pays nowhere against `high`: no variant of the layer is faster or smaller with it.
    auto no_gain = [&](const eval::LatencyEntry& low, const eval::LatencyEntry& high) {
      const bool faster =
          low.kernel != high.kernel && low.median_ms < (1.0 - margin) * high.median_ms;
      return !faster && low.resident_weight_bytes >= high.resident_weight_bytes &&
             low.arena_bytes >= high.arena_bytes;
    };
    // Splits one axis (weight bits when `weights`, else activation bits) into kept and dropped:
    // bits x go when some wider x' of the axis gains nothing over them for every activation and
    // every bit-width of the other axis.
    auto split = [&](bool weights, std::vector<int>* kept, std::vector<int>* dropped) {
      const std::vector<int>& axis = weights ? s.w_bits : s.a_bits;
      const std::vector<int>& other = weights ? s.a_bits : s.w_bits;
      for (int x : axis) {
        bool dominated = false;
        for (int wide : axis) {
          if (wide <= x || dominated) continue;
          bool all = true;
          for (size_t a = 0; a < na && all; ++a)
            for (int y : other)
              all = all && (weights ? no_gain(entry(a, x, y), entry(a, wide, y))
                                    : no_gain(entry(a, y, x), entry(a, y, wide)));
          dominated = all;
        }
        (dominated ? dropped : kept)->push_back(x);
      }
    };
    Pruned p;
    p.site = s.name;
    split(true, &p.w_bits, &p.dropped_w_bits);
    split(false, &p.a_bits, &p.dropped_a_bits);
    if (!p.dropped_w_bits.empty() || !p.dropped_a_bits.empty()) out.push_back(std::move(p));
  }
  return out;
}

torch::Tensor CostModel::expected_latency_ms(const sn::YoloModel& model) const {
  if (!attached_) throw Error("cost model: no latency table attached");
  auto views = model->sites();
  if (views.size() != sites_.size()) throw Error("cost model: the model's sites changed");
  torch::Tensor total = torch::zeros({}, torch::kFloat64);
  for (size_t i = 0; i < sites_.size(); ++i) {
    const Site& s = sites_[i];
    const auto& v = views[i];
    int64_t na = s.has_act ? static_cast<int64_t>(s.acts.size()) : 1;
    int64_t nw = static_cast<int64_t>(s.w_bits.size()), nb = static_cast<int64_t>(s.a_bits.size());
    torch::Tensor lat =
        torch::from_blob(const_cast<float*>(s.latency.data()), {na, nw, nb}, torch::kFloat32)
            .to(torch::kFloat64);
    torch::Tensor pa =
        s.has_act ? v.act_probs.to(torch::kFloat64) : torch::ones({1}, torch::kFloat64);
    torch::Tensor pw = v.w_probs.to(torch::kFloat64), pb = v.a_probs.to(torch::kFloat64);
    total = total + torch::einsum("a,w,b,awb->", {pa, pw, pb, lat});
  }
  return total * calibration_.scale + calibration_.offset_ms;
}

torch::Tensor CostModel::expected_memory_bytes(const sn::YoloModel& model) const {
  if (!attached_) throw Error("cost model: no latency table attached");
  auto views = model->sites();
  torch::Tensor weights = torch::zeros({}, torch::kFloat64);
  std::vector<torch::Tensor> acts;
  for (size_t i = 0; i < sites_.size(); ++i) {
    const Site& s = sites_[i];
    const auto& v = views[i];
    // Weights as the kernels hold them: the kernel (and so the resident size) depends on both bits.
    int64_t nw = static_cast<int64_t>(s.w_bits.size()), nb = static_cast<int64_t>(s.a_bits.size());
    torch::Tensor wb =
        torch::from_blob(const_cast<float*>(s.resident_bytes.data()), {nw, nb}, torch::kFloat32)
            .to(torch::kFloat64);
    weights = weights + torch::einsum("w,b,wb->", {v.w_probs.to(torch::kFloat64),
                                                   v.a_probs.to(torch::kFloat64), wb});
    std::vector<double> per_b;
    for (int b : s.a_bits) per_b.push_back(bytes_per_element(b));
    torch::Tensor eb =
        (v.a_probs.to(torch::kFloat64) * torch::tensor(per_b, torch::kFloat64)).sum();
    const auto& g = s.geometry;
    double in_elems = static_cast<double>(g.in_channels * g.in_h * g.in_w);
    double out_elems = static_cast<double>(g.out_channels * g.out_h * g.out_w);
    torch::Tensor out_bytes =
        s.head_output ? torch::full({}, 4.0 * out_elems, torch::kFloat64) : eb * out_elems;
    acts.push_back(eb * in_elems + out_bytes);
  }
  return weights + torch::stack(acts).max();
}

double CostModel::raw_latency_ms(const sn::ArchChoices& choices) const {
  if (!attached_) throw Error("cost model: no latency table attached");
  double sum = 0;
  for (const auto& s : sites_) {
    size_t a = 0, w = 0, b = 0;
    auto it = choices.find(s.name);
    if (it != choices.end()) {
      if (s.has_act && it->second.act) a = index_of(s.acts, *it->second.act);
      w = index_of(s.w_bits, it->second.w_bits);
      b = index_of(s.a_bits, it->second.a_bits);
      if (a >= std::max<size_t>(1, s.acts.size()) || w >= s.w_bits.size() || b >= s.a_bits.size()) {
        throw Error("cost model: the choice of site " + s.name +
                    " is not one of its candidates (no table entry to predict it from)");
      }
    }
    sum += s.latency[(a * s.w_bits.size() + w) * s.a_bits.size() + b];
  }
  return sum;
}

double CostModel::latency_ms(const sn::ArchChoices& choices) const {
  return calibration_.scale * raw_latency_ms(choices) + calibration_.offset_ms;
}

Proxies CostModel::proxies(const sn::ArchChoices& choices) const {
  Proxies p;
  for (const auto& s : sites_) {
    int w = s.w_bits.front(), b = s.a_bits.front();
    auto it = choices.find(s.name);
    if (it != choices.end()) {
      w = it->second.w_bits;
      b = it->second.a_bits;
    }
    const auto& g = s.geometry;
    int64_t macs = g.macs();
    p.macs += macs;
    p.bops += static_cast<double>(macs) * w * b;
    int64_t params = g.out_channels * (g.in_channels / g.groups) * g.kernel * g.kernel;
    p.params += params + g.out_channels;
    size_t wi = index_of(s.w_bits, w);
    size_t bi = index_of(s.a_bits, b);
    if (attached_ && wi < s.weight_bytes.size() && bi < s.a_bits.size()) {
      p.weight_bytes += static_cast<int64_t>(s.weight_bytes[wi]);
      p.resident_weight_bytes += static_cast<int64_t>(s.resident_bytes[wi * s.a_bits.size() + bi]);
    } else {
      const int64_t packed = (params * w + 7) / 8 + g.out_channels * 4;
      p.weight_bytes += packed;
      p.resident_weight_bytes += packed;
    }
    int eb = bytes_per_element(b);
    int64_t act = g.in_channels * g.in_h * g.in_w * eb +
                  g.out_channels * g.out_h * g.out_w * (s.head_output ? 4 : eb);
    p.peak_activation_bytes = std::max(p.peak_activation_bytes, act);
  }
  return p;
}

double CostModel::memory_bytes(const sn::ArchChoices& choices) const {
  Proxies p = proxies(choices);
  return static_cast<double>(p.resident_weight_bytes + p.peak_activation_bytes);
}

sn::ArchChoices CostModel::random_choices(uint64_t seed) const {
  std::mt19937_64 rng(seed);
  sn::ArchChoices out;
  for (const auto& s : sites_) {
    sn::SiteChoice c;
    if (s.has_act) c.act = s.acts[rng() % s.acts.size()];
    c.w_bits = s.w_bits[rng() % s.w_bits.size()];
    c.a_bits = s.a_bits[rng() % s.a_bits.size()];
    out[s.name] = c;
  }
  return out;
}

sn::ArchChoices CostModel::reference_choices() const {
  sn::ArchChoices out;
  auto largest = [](const std::vector<int>& bits) {
    int best = -1;
    for (int b : bits)
      if (b <= 8) best = std::max(best, b);
    return best > 0 ? best : bits.front();
  };
  for (const auto& s : sites_) {
    sn::SiteChoice c;
    c.w_bits = largest(s.w_bits);
    c.a_bits = largest(s.a_bits);
    if (s.has_act) {
      size_t best = 0;
      if (attached_) {
        size_t nw = s.w_bits.size(), nb = s.a_bits.size();
        size_t w = index_of(s.w_bits, c.w_bits), b = index_of(s.a_bits, c.a_bits);
        for (size_t a = 1; a < s.acts.size(); ++a)
          if (s.latency[(a * nw + w) * nb + b] > s.latency[(best * nw + w) * nb + b]) best = a;
      } else {
        for (size_t a = 1; a < s.acts.size(); ++a)
          if (act_rank(s.acts[a]) > act_rank(s.acts[best])) best = a;
      }
      c.act = s.acts[best];
    }
    out[s.name] = c;
  }
  return out;
}

sn::ArchChoices CostModel::uniform_choices(sn::Act act, const std::string& bits_policy,
                                           const sn::ArchChoices& searched) const {
  sn::ArchChoices out;
  for (const auto& s : sites_) {
    sn::SiteChoice c;
    if (s.has_act) {
      // Sites fixed to one activation by the search space keep it (e.g. a fixed stem).
      c.act = s.acts.size() == 1 ? s.acts.front() : act;
    }
    if (bits_policy == "fp32") {
      c.w_bits = c.a_bits = 32;
    } else if (bits_policy == "int8") {
      auto pick = [](const std::vector<int>& bits) {
        if (std::find(bits.begin(), bits.end(), 8) != bits.end()) return 8;
        return *std::max_element(bits.begin(), bits.end());
      };
      c.w_bits = pick(s.w_bits);
      c.a_bits = pick(s.a_bits);
    } else if (bits_policy == "searched") {
      auto it = searched.find(s.name);
      if (it == searched.end())
        throw Error("uniform_choices: searched architecture lacks " + s.name);
      c.w_bits = it->second.w_bits;
      c.a_bits = it->second.a_bits;
    } else {
      throw Error("unknown bits policy '" + bits_policy + "' (fp32, int8 or searched)");
    }
    out[s.name] = c;
  }
  return out;
}

}  // namespace mixnas::search
