// The LibTorch adapter: shapes, scaling and ownership of the copied tensors.
#include <catch2/catch.hpp>

#include "datasets/torch_batch.h"

using namespace mixnas::data;

TEST_CASE("batches become NCHW float tensors and [T, 6] targets", "[datasets][torch]") {
  Batch b;
  b.size = 2;
  b.height = 2;
  b.width = 3;
  b.images.resize(2 * 3 * 2 * 3);
  for (size_t i = 0; i < b.images.size(); ++i) b.images[i] = static_cast<uint8_t>(i * 7);
  b.targets = {0, 1, 0.5f, 0.5f, 0.1f, 0.2f, 1, 4, 0.25f, 0.75f, 0.5f, 0.5f};
  TensorBatch t = to_tensors(b);
  REQUIRE(t.images.sizes() == torch::IntArrayRef({2, 3, 2, 3}));
  REQUIRE(t.targets.sizes() == torch::IntArrayRef({2, 6}));
  // Element [1, 2, 1, 0] is at flat index ((1 * 3 + 2) * 2 + 1) * 3 + 0 = 33.
  CHECK(t.images[1][2][1][0].item<float>() == Approx(33 * 7 / 255.0f));
  CHECK(t.targets[1][1].item<float>() == 4);
  b.targets[7] = 9;  // the tensors own copies
  CHECK(t.targets[1][1].item<float>() == 4);
  TensorBatch raw = to_tensors(b, false);
  CHECK(raw.images.dtype() == torch::kUInt8);
  CHECK(raw.images[0][0][0][1].item<uint8_t>() == 7);
  Batch empty;
  empty.size = 1;
  empty.height = empty.width = 1;
  empty.images = {255};
  empty.channels = 1;
  CHECK(to_tensors(empty).targets.size(0) == 0);
}
