#include "tests/runtime/golden.h"

#include <algorithm>
#include <cctype>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <sstream>

#include "core/error.h"
#include "core/hash.h"

namespace mixnas::rt::golden {

namespace {

uint32_t float_bits(float v) {
  uint32_t b;
  std::memcpy(&b, &v, sizeof b);
  return b;
}

float bits_float(uint32_t b) {
  float v;
  std::memcpy(&v, &b, sizeof v);
  return v;
}

std::string hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016" PRIx64, v);
  return buf;
}

}  // namespace

uint64_t fnv1a64(const void* data, size_t size) {
  return fnv1a(data, size);
}

std::vector<uint8_t> make_input_image(int height, int width, uint64_t seed) {
  uint64_t state = seed;
  struct Disc {
    int cx, cy, r2;
    int colour[3];
  };
  Disc discs[4];
  for (Disc& d : discs) {
    d.cx = int(splitmix64(state) % uint64_t(width));
    d.cy = int(splitmix64(state) % uint64_t(height));
    const int r = width / 10 + int(splitmix64(state) % uint64_t(width / 4 + 1));
    d.r2 = r * r;
    for (int& c : d.colour) c = int(splitmix64(state) % 256);
  }
  std::vector<uint8_t> img(size_t(height) * size_t(width) * 3);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      for (int c = 0; c < 3; ++c) {
        // Background: a gradient per channel plus noise; later discs paint over earlier ones.
        int v = (x * 150) / width + (y * 90) / height + 10 * c + int(splitmix64(state) % 24);
        for (const Disc& d : discs) {
          const int d2 = (x - d.cx) * (x - d.cx) + (y - d.cy) * (y - d.cy);
          if (d2 < d.r2) v = d.colour[c] - (d2 * 60) / d.r2 + int(splitmix64(state) % 12);
        }
        img[(size_t(y) * size_t(width) + size_t(x)) * 3 + size_t(c)] = uint8_t(v < 0     ? 0
                                                                               : v > 255 ? 255
                                                                                         : v);
      }
    }
  }
  return img;
}

void set_input(Session& session, const std::vector<uint8_t>& image) {
  const Graph& g = session.model().graph();
  const TensorDesc& in = g.tensors.at(size_t(g.input.tensor));
  if (in.elements() != int64_t(image.size())) {
    throw Error("golden input: the image has " + std::to_string(image.size()) +
                " values, the graph's input " + std::to_string(in.elements()));
  }
  if (!in.is_float()) {
    session.set_input_codes(image.data(), image.size());
    return;
  }
  const InputSpec& spec = g.input;
  std::vector<float> values(image.size());
  for (size_t i = 0; i < image.size(); ++i) {
    const size_t c = i % 3;
    float v = float(image[i]) * spec.pixel_scale;
    if (!spec.mean.empty()) v -= spec.mean[c];
    if (!spec.std.empty()) v /= spec.std[c];
    values[i] = v;
  }
  session.set_input(values.data(), values.size());
}

namespace {

bool within(float recorded, float actual, double tolerance) {
  return float_bits(recorded) == float_bits(actual) ||
         std::fabs(double(actual) - double(recorded)) <= tolerance;
}

bool is_decode_or_nms(OpType op) {
  return op == OpType::kDetectV8 || op == OpType::kDetectV5 || op == OpType::kNms;
}

}  // namespace

Record record_run(const std::shared_ptr<const Model>& model, uint64_t seed,
                  SessionOptions options) {
  options.arena = ArenaStrategy::kNoReuse;
  Session session(model, options);
  const Graph& g = model->graph();
  Record r;
  r.input_height = g.input.height;
  r.input_width = g.input.width;
  r.input_seed = seed;
  set_input(session, make_input_image(g.input.height, g.input.width, seed));
  session.run_graph();
  std::vector<bool> excluded(g.tensors.size(), false);
  for (const Node& n : g.nodes) {
    if (!is_decode_or_nms(n.op)) continue;
    for (int t : n.outputs) excluded[size_t(t)] = true;
    if (n.op != OpType::kNms) {
      const std::vector<uint8_t> bytes = session.tensor_bytes(n.outputs.at(0));
      r.decoded.resize(bytes.size() / sizeof(float));
      std::memcpy(r.decoded.data(), bytes.data(), r.decoded.size() * sizeof(float));
    }
  }
  for (size_t t = 0; t < g.tensors.size(); ++t) {
    const TensorDesc& d = g.tensors[t];
    if (d.kind != TensorKind::kActivation || excluded[t]) continue;
    const std::vector<uint8_t> bytes = session.tensor_bytes(int(t));
    r.tensors.push_back(
        {int(t), d.name, d.bits, int64_t(bytes.size()), fnv1a64(bytes.data(), bytes.size())});
  }
  r.detections = session.detections();
  return r;
}

std::string to_text(const Record& r, const std::string& model_file) {
  std::ostringstream out;
  out << "# mixnas runtime golden run (tests/runtime/golden.h); regenerate with\n"
         "# mixnas_write_runtime_golden tests/data/runtime_golden\n";
  out << "mixnas-runtime-golden 1\n";
  out << "model " << model_file << "\n";
  out << "input " << r.input_height << " " << r.input_width << " " << r.input_seed << "\n";
  // Names are single words in this format; the exporter's are module paths.
  auto word = [](const std::string& name) {
    if (name.empty()) return std::string("-");
    for (char c : name)
      if (std::isspace(static_cast<unsigned char>(c)))
        throw Error("golden: the tensor name '" + name + "' holds white space");
    return name;
  };
  for (const TensorRecord& t : r.tensors) {
    out << "tensor " << t.index << " " << word(t.name) << " " << t.bits << " " << t.bytes << " "
        << hex64(t.hash) << "\n";
  }
  out << "decoded " << r.decoded.size();
  for (size_t i = 0; i < r.decoded.size(); ++i) {
    char w[16];
    std::snprintf(w, sizeof w, "%08" PRIx32, float_bits(r.decoded[i]));
    out << (i % 8 == 0 ? "\n" : " ") << w;
  }
  out << "\n";
  for (const Detection& d : r.detections) {
    char line[256];
    std::snprintf(line, sizeof line,
                  "detection %d %08" PRIx32 " %08" PRIx32 " %08" PRIx32 " %08" PRIx32 " %08" PRIx32
                  "  # %.2f %.2f %.2f %.2f %.4f\n",
                  d.class_id, float_bits(d.x1), float_bits(d.y1), float_bits(d.x2),
                  float_bits(d.y2), float_bits(d.score), double(d.x1), double(d.y1), double(d.x2),
                  double(d.y2), double(d.score));
    out << line;
  }
  out << "end\n";
  return out.str();
}

Record parse(const std::string& text, const std::string& origin) {
  Record r;
  std::istringstream in(text);
  std::string line;
  int line_no = 0;
  bool header = false, end = false;
  auto fail = [&](const std::string& what) {
    throw Error(origin + ":" + std::to_string(line_no) + ": " + what);
  };
  auto hex32 = [&](const std::string& word) {
    if (word.size() != 8 || word.find_first_not_of("0123456789abcdef") != std::string::npos)
      fail("'" + word + "' is not 8 hex digits");
    return bits_float(uint32_t(std::stoul(word, nullptr, 16)));
  };
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty() || line[0] == '#') continue;
    std::istringstream words(line);
    std::string kind;
    words >> kind;
    if (!header) {
      int version = 0;
      words >> version;
      if (kind != "mixnas-runtime-golden" || version != 1) fail("not a golden file of version 1");
      header = true;
      continue;
    }
    if (kind == "model") {
      continue;
    } else if (kind == "input") {
      words >> r.input_height >> r.input_width >> r.input_seed;
    } else if (kind == "tensor") {
      TensorRecord t;
      std::string hash;
      words >> t.index >> t.name >> t.bits >> t.bytes >> hash;
      if (hash.size() != 16) fail("a tensor hash has 16 hex digits");
      t.hash = std::stoull(hash, nullptr, 16);
      r.tensors.push_back(t);
    } else if (kind == "decoded") {
      size_t n = 0;
      words >> n;
      std::string w;
      while (r.decoded.size() < n && in >> w) r.decoded.push_back(hex32(w));
      if (r.decoded.size() != n) fail("fewer decoded values than announced");
      std::getline(in, line);  // the rest of the last line of values
    } else if (kind == "detection") {
      Detection d;
      std::string b[5];
      words >> d.class_id >> b[0] >> b[1] >> b[2] >> b[3] >> b[4];
      float* f[5] = {&d.x1, &d.y1, &d.x2, &d.y2, &d.score};
      for (int k = 0; k < 5; ++k) *f[k] = hex32(b[k]);
      r.detections.push_back(d);
    } else if (kind == "end") {
      end = true;
      break;
    } else {
      fail("unknown line '" + kind + "'");
    }
    if (words.fail()) fail("malformed '" + kind + "' line");
  }
  if (!end) fail("truncated (no 'end' line)");
  return r;
}

std::string compare(const Graph& graph, const Record& expected, const Record& actual,
                    const Tolerance& tolerance) {
  std::ostringstream out;
  if (expected.input_height != actual.input_height || expected.input_width != actual.input_width ||
      expected.input_seed != actual.input_seed) {
    out << "input differs\n";
  }
  auto find = [](const Record& r, int index) -> const TensorRecord* {
    for (const TensorRecord& t : r.tensors)
      if (t.index == index) return &t;
    return nullptr;
  };
  if (expected.tensors.size() != actual.tensors.size()) {
    out << "tensor count: expected " << expected.tensors.size() << ", got " << actual.tensors.size()
        << "\n";
  }
  // The input first, then node outputs in execution order.
  std::vector<std::pair<int, std::string>> order = {{graph.input.tensor, "input"}};
  for (const Node& n : graph.nodes) {
    if (is_decode_or_nms(n.op)) continue;
    for (int t : n.outputs) order.push_back({t, n.name + " (" + op_type_name(n.op) + ")"});
  }
  for (const auto& [index, producer] : order) {
    const TensorRecord* e = find(expected, index);
    const TensorRecord* a = find(actual, index);
    if (!e || !a) {
      out << "tensor " << index << " of " << producer << ": missing from a record\n";
      continue;
    }
    if (e->bits != a->bits || e->bytes != a->bytes || e->hash != a->hash) {
      out << "tensor " << index << " '" << e->name << "' of " << producer << " ("
          << (e->bits == 32 ? std::string("f32") : std::to_string(e->bits) + "-bit codes")
          << ") differs\n";
    }
  }
  if (expected.decoded.size() != actual.decoded.size()) {
    out << "decoded: expected " << expected.decoded.size() << " values, got "
        << actual.decoded.size() << "\n";
  } else {
    // Rows of 4 box coordinates and the class scores.
    size_t cols = 0;
    for (const Node& n : graph.nodes) {
      if (n.op == OpType::kDetectV8) cols = 4 + size_t(n.v8.num_classes);
      if (n.op == OpType::kDetectV5) cols = 4 + size_t(n.v5.num_classes);
    }
    size_t differ = 0, beyond = 0;
    double max_box = 0, max_score = 0;
    for (size_t k = 0; k < expected.decoded.size(); ++k) {
      const float e = expected.decoded[k], a = actual.decoded[k];
      const bool is_box = cols == 0 || k % cols < 4;
      differ += float_bits(e) != float_bits(a);
      beyond += !within(e, a, is_box ? tolerance.box : tolerance.score);
      double& m = is_box ? max_box : max_score;
      m = std::max(m, std::fabs(double(e) - double(a)));
    }
    if (beyond > 0) {
      out << "decoded: " << differ << " of " << expected.decoded.size()
          << " values differ in their bits, " << beyond << " beyond the tolerance (max |d| "
          << max_box << " on boxes, " << max_score << " on scores)\n";
    }
  }
  if (expected.detections.size() != actual.detections.size()) {
    out << "detections: expected " << expected.detections.size() << ", got "
        << actual.detections.size() << "\n";
  } else {
    for (size_t i = 0; i < expected.detections.size(); ++i) {
      const Detection& e = expected.detections[i];
      const Detection& a = actual.detections[i];
      const float ef[4] = {e.x1, e.y1, e.x2, e.y2};
      const float af[4] = {a.x1, a.y1, a.x2, a.y2};
      bool close = e.class_id == a.class_id && within(e.score, a.score, tolerance.score);
      for (int k = 0; k < 4; ++k) close = close && within(ef[k], af[k], tolerance.box);
      if (!close) out << "detection " << i << " differs\n";
    }
  }
  return out.str();
}

}  // namespace mixnas::rt::golden
