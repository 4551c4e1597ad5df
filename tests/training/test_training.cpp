// What the trainer and the supernet search share: the epoch history a checkpoint carries, the
// parameter groups, the learning-rate schedule and the loaders' options.
#include <string>
#include <vector>

#include "supernet/model.h"
#include "training/ema.h"
#include "training/history.h"
#include "training/optimizer.h"
#include "training/options.h"
#include "training/trainer.h"

// After LibTorch: glog defines its own CHECK, Catch2 must win.
#undef CHECK
#include <catch2/catch.hpp>

using namespace mixnas;
using namespace mixnas::training;

namespace {

// `archive` written and read back, as a checkpoint file is.
torch::serialize::InputArchive reread(torch::serialize::OutputArchive& archive) {
  std::string bytes;
  archive.save_to([&](const void* data, size_t size) {
    bytes.append(static_cast<const char*>(data), size);
    return size;
  });
  torch::serialize::InputArchive in;
  in.load_from(bytes.data(), bytes.size());
  return in;
}

}  // namespace

TEST_CASE("the epoch history keeps the checkpoint layout and survives a round trip") {
  EpochRecord a, b;
  a.epoch = 1;
  a.box_loss = 0.25;
  a.map50_95 = 0.5;
  a.lr2 = 0.002;
  a.images_per_s = 123;
  b = a;
  b.epoch = 2;
  b.seconds = 4.5;
  torch::serialize::OutputArchive out;
  write_history(out, std::vector<EpochRecord>{a, b});
  torch::serialize::InputArchive in = reread(out);
  // 16 values a record, in the order checkpoints written before have held them.
  torch::Tensor flat;
  in.read("history", flat, /*is_buffer=*/true);
  REQUIRE(flat.numel() == 32);
  const double* d = flat.data_ptr<double>();
  CHECK(d[0] == 1);
  CHECK(d[1] == 0.25);
  CHECK(d[7] == 0.5);
  CHECK(d[13] == 0.002);
  CHECK(d[15] == 123);
  CHECK(d[16] == 2);
  CHECK(d[16 + 14] == 4.5);
  const std::vector<EpochRecord> read = read_history<EpochRecord>(in);
  REQUIRE(read.size() == 2);
  CHECK(read[1].epoch == 2);
  CHECK(read[1].box_loss == 0.25);
  CHECK(read[1].map50_95 == 0.5);
  CHECK(read[1].lr2 == 0.002);
  CHECK(read[1].seconds == 4.5);
  CHECK(read[1].images_per_s == 123);
}

TEST_CASE("every parameter falls in one optimizer group by one rule") {
  supernet::YoloModel model =
      supernet::build_model(std::string(MIXNAS_SOURCE_DIR) + "/configs/models/yolov8-pico.yaml");
  const std::vector<ClassifiedParam> params = classify_parameters(model);
  const auto named = model->named_parameters(true);
  REQUIRE(params.size() == named.size());
  size_t i = 0;
  for (const auto& p : named) {
    const std::string& name = p.key();
    const ClassifiedParam& c = params[i++];
    CHECK(c.tensor.is_same(p.value()));
    const bool bias = name.size() >= 4 && name.compare(name.size() - 4, 4, "bias") == 0;
    if (c.cls == ParamClass::kBias) CHECK(bias);
    if (c.cls == ParamClass::kNorm) CHECK((!bias && p.value().dim() <= 1));
    if (c.cls == ParamClass::kDecay) CHECK((!bias && p.value().dim() > 1));
  }
  const auto decay = of_classes(params, {ParamClass::kDecay});
  const auto rest = of_classes(
      params, {ParamClass::kBias, ParamClass::kNorm, ParamClass::kQuant, ParamClass::kArch});
  CHECK(!decay.empty());
  CHECK(decay.size() + rest.size() == params.size());
}

TEST_CASE("the learning-rate schedule runs from 1 towards lrf") {
  CHECK(schedule_factor("cosine", 0.01, 10, 0) == Approx(1.0));
  CHECK(schedule_factor("cosine", 0.01, 10, 5) == Approx(0.505));
  CHECK(schedule_factor("cosine", 0.01, 10, 10) == Approx(0.01));
  CHECK(schedule_factor("linear", 0.01, 10, 5) == Approx(0.505));
  CHECK(schedule_factor("linear", 0.01, 10, 2) == Approx(0.802));
  CHECK(schedule_factor("cosine", 0.01, 10, 2) > schedule_factor("linear", 0.01, 10, 2));
}

TEST_CASE("training loaders augment and shuffle, evaluation loaders do neither") {
  TrainOptions o;
  o.batch = 8;
  o.workers = 0;
  o.mosaic = 0.5;
  const data::LoaderOptions train = train_loader_options(o);
  const data::LoaderOptions eval = eval_loader_options(o);
  CHECK(train.batch_size == 8);
  CHECK(eval.batch_size == 8);
  CHECK(train.workers == 1);
  CHECK((train.shuffle && train.augment && train.aug.mosaic));
  CHECK(train.aug.mosaic_prob == 0.5);
  CHECK((!eval.shuffle && !eval.augment && !eval.aug.mosaic));
}

TEST_CASE("the EMA averages trained weights and keeps the fixed DFL projection exact") {
  const std::string yaml = std::string(MIXNAS_SOURCE_DIR) + "/configs/models/yolov8-pico.yaml";
  supernet::YoloModel model = supernet::build_model(yaml);
  supernet::YoloModel ema = make_ema_model(model);
  const torch::Tensor ramp = torch::arange(16, torch::kFloat).view({1, 16, 1, 1});
  const std::string dfl = "model.22.dfl.conv.weight";
  REQUIRE(torch::equal(model->named_parameters(true)[dfl].detach(), ramp));
  torch::Tensor w = model->named_parameters(true)["model.0.conv.weight"];
  {
    torch::NoGradGuard no_grad;
    w.add_(1.0);
  }
  const EmaPairs pairs = ema_pairs_of(ema, model);
  // Decays whose d * x + (1 - d) * x rounds away from x for some x of 0..15 in float.
  for (int64_t u = 1; u <= 200; ++u) update_ema(pairs, ema_decay(u * 37));
  CHECK(torch::equal(ema->named_parameters(true)[dfl].detach(), ramp));
  const torch::Tensor e = ema->named_parameters(true)["model.0.conv.weight"];
  const double moved = (e - (w - 1.0)).abs().mean().item<double>();
  CHECK(moved > 0.5);  // most of the way from the start towards the trained weights
  CHECK(moved <= 1.0 + 1e-6);
}
