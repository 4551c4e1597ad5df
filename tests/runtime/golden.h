#pragma once
// Golden runs of exported models (tests/data/runtime_golden/): what the runtime computed for a
// package on a fixed input, recorded once and compared on every build and ISA (host kernels and
// their fallbacks, aarch64 under qemu). No LibTorch: the cross build compiles this.
//
// Files per model NAME, written by tests/export/write_runtime_golden.cpp:
//   NAME.mxr     the package
//   NAME.golden  text: the input, a hash of every activation tensor up to the head outputs (codes
//                and floats), the decoded head output's values and the NMS detections, floats as
//                their bits in hex
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "deploy/runtime/session.h"

namespace mixnas::rt::golden {

// The input every golden run uses: a 3-channel image (HWC, RGB) of gradients, discs and noise,
// computed with integer arithmetic only, so every platform makes the same bytes.
std::vector<uint8_t> make_input_image(int height, int width, uint64_t seed);

// Puts `image` into the session's input without letterboxing: codes as they are for a code input,
// (pixel * pixel_scale - mean) / std for a float input. The graph's input must have its size.
void set_input(Session& session, const std::vector<uint8_t>& image);

struct TensorRecord {
  int index = -1;
  std::string name;
  int bits = 32;
  int64_t bytes = 0;
  uint64_t hash = 0;  // FNV-1a 64 of the densely packed elements (Session::tensor_bytes)
};

struct Record {
  int input_height = 0, input_width = 0;
  uint64_t input_seed = 0;
  // Every activation tensor except the outputs of box decoding and NMS, in tensor order.
  std::vector<TensorRecord> tensors;
  std::vector<float> decoded;  // the box-decoding node's output (boxes and scores per anchor)
  std::vector<Detection> detections;
};

// How far the decoded boxes (input pixels) and class scores, and the detections, may be from the
// recorded ones, as absolute differences; 0 = bit for bit. Detections must keep their count,
// order and classes. See test_runtime_golden.cpp for why decoding has a tolerance.
struct Tolerance {
  double box = 0;
  double score = 0;
};

uint64_t fnv1a64(const void* data, size_t size);

// Runs `model` on make_input_image(seed) (one region per tensor, so that every intermediate stays
// readable) and records the run. `options.arena` is overridden.
Record record_run(const std::shared_ptr<const Model>& model, uint64_t seed,
                  SessionOptions options = {});

// NAME.golden text; parse() throws mixnas::Error naming `origin` on malformed content.
std::string to_text(const Record& record, const std::string& model_file);
Record parse(const std::string& golden_text, const std::string& origin);

// Differences between two records, one line each ("" when they agree). Tensors are listed in the
// execution order of `graph`, so the first line names the first node whose output differs.
std::string compare(const Graph& graph, const Record& expected, const Record& actual,
                    const Tolerance& tolerance = {});

}  // namespace mixnas::rt::golden
