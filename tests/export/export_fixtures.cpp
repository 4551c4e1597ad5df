#include "tests/export/export_fixtures.h"

#include <cmath>

#include "supernet/loss.h"
#include "training/trainer.h"

namespace mixnas::exporter::testing {

using torch::Tensor;

supernet::ArchChoices random_choices(const std::string& model_yaml, int nc, const ArchRecipe& r,
                                     uint32_t seed) {
  supernet::BuildOptions o;
  o.nc = nc;
  auto base = supernet::build_model(model_yaml, o);
  std::mt19937 rng(seed);
  auto pick = [&](const auto& v) {
    return v[std::uniform_int_distribution<size_t>(0, v.size() - 1)(rng)];
  };
  std::uniform_real_distribution<double> u(0.0, 1.0);
  supernet::ArchChoices choices;
  for (const auto& s : base->site_refs()) {
    supernet::SiteChoice c;
    if (s.act) c.act = pick(r.acts);
    c.w_bits = pick(r.w_bits);
    c.a_bits = pick(r.a_bits);
    if (u(rng) < r.fp32_fraction) c.w_bits = c.a_bits = 32;
    choices[s.name] = c;
  }
  return choices;
}

supernet::YoloModel make_trained_like(const std::string& model_yaml, int nc,
                                      const supernet::ArchChoices& choices, uint32_t seed,
                                      int imgsz) {
  torch::manual_seed(seed);
  supernet::BuildOptions o;
  o.nc = nc;
  o.choices = choices;
  auto model = supernet::build_model(model_yaml, o);
  std::vector<Tensor> batch;
  for (int i = 0; i < 2; ++i)
    batch.push_back(image_tensor(make_image(imgsz, imgsz, seed * 7 + i), imgsz, imgsz));
  {
    torch::NoGradGuard no_grad;
    for (auto& m : model->modules(false)) {
      if (auto* bn = dynamic_cast<torch::nn::BatchNorm2dImpl*>(m.get())) {
        bn->weight.uniform_(0.6, 1.4);
        bn->bias.uniform_(-0.3, 0.3);
        bn->running_mean.normal_(0.0, 0.2);
        bn->running_var.uniform_(0.5, 2.0);
      }
    }
    // Class biases around the score threshold, so that NMS has something to keep.
    for (const auto& s : model->site_refs()) {
      if (!s.block && s.conv->bias.defined()) s.conv->bias.uniform_(-2.5, 0.5);
    }
    model->eval();
    model->set_fold_bn(true);
    // Calibration: the quantizers initialise from a forward, then move off their initial values
    // as learned steps do.
    model->forward_raw(torch::cat(batch, 0));
    for (const auto& s : model->site_refs()) {
      for (int b : s.conv->w_bits())
        if (auto* wq = s.conv->weight_quantizer(b))
          wq->step.mul_(torch::empty_like(wq->step).uniform_(0.8, 1.25));
      for (int b : s.conv->a_bits()) {
        auto* aq = s.conv->act_quantizer(b);
        if (!aq || aq->image_input()) continue;
        aq->step.mul_(torch::empty_like(aq->step).uniform_(0.8, 1.25));
        aq->beta.mul_(torch::empty_like(aq->beta).uniform_(0.8, 1.25));
      }
    }
  }
  train_steps(model, torch::cat(batch, 0), seed, kTrainSteps);
  return model;
}

void train_steps(supernet::YoloModel& model, const Tensor& images, uint32_t seed, int steps) {
  if (steps <= 0) return;
  torch::manual_seed(seed + 1);
  // One or two boxes per image, [batch_idx, cls, cx, cy, w, h] normalised.
  const int64_t n = images.size(0);
  std::vector<Tensor> rows;
  for (int64_t i = 0; i < n; ++i) {
    for (int k = 0; k < 2; ++k) {
      Tensor r = torch::empty({6});
      r[0] = double(i);
      r[1] = double((i + k) % model->nc());
      r[2] = 0.25 + 0.5 * torch::rand({1}).item<double>();
      r[3] = 0.25 + 0.5 * torch::rand({1}).item<double>();
      r[4] = 0.15 + 0.3 * torch::rand({1}).item<double>();
      r[5] = 0.15 + 0.3 * torch::rand({1}).item<double>();
      rows.push_back(r);
    }
  }
  const Tensor targets = torch::stack(rows, 0);
  auto loss = supernet::make_loss(model);
  torch::optim::Adam opt(model->parameters(), torch::optim::AdamOptions(1e-3));
  // BN folded and its statistics frozen (eval-mode BN), as quantization-aware training runs after
  // quant.freeze_bn_epoch; gradients reach weights, biases, BN affine parameters and the learned
  // quantizer steps and offsets.
  torch::AutoGradMode grad(true);
  model->eval();
  model->set_fold_bn(true);
  for (int s = 0; s < steps; ++s) {
    std::vector<Tensor> raw = model->forward_raw(images);
    supernet::LossItems items = loss->compute(raw, targets, images.size(2), images.size(3));
    opt.zero_grad();
    items.total.backward();
    opt.step();
    training::project_quantizer_steps(model);  // as the trainer does after every step
  }
  model->zero_grad();
}

std::vector<uint8_t> make_image(int h, int w, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  // A few smooth blobs on noise.
  std::vector<uint8_t> img(size_t(h) * w * 3);
  float cx[3], cy[3], r[3], col[3][3];
  for (int k = 0; k < 3; ++k) {
    cx[k] = u(rng) * w, cy[k] = u(rng) * h, r[k] = (0.1f + 0.3f * u(rng)) * w;
    for (int c = 0; c < 3; ++c) col[k][c] = 255.0f * u(rng);
  }
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c) {
        float v = 40.0f * u(rng) + 60.0f;
        for (int k = 0; k < 3; ++k) {
          const float d = std::hypot(x - cx[k], y - cy[k]);
          if (d < r[k]) v = col[k][c] * (1.0f - 0.5f * d / r[k]) + 20.0f * u(rng);
        }
        img[(size_t(y) * w + x) * 3 + c] = uint8_t(std::min(255.0f, std::max(0.0f, v)));
      }
  return img;
}

Tensor image_tensor(const std::vector<uint8_t>& rgb, int h, int w) {
  std::vector<float> f(rgb.size());
  for (size_t i = 0; i < rgb.size(); ++i) f[i] = float(rgb[i]) * (1.0f / 255.0f);
  return torch::from_blob(f.data(), {h, w, 3}, torch::kFloat)
      .permute({2, 0, 1})
      .unsqueeze(0)
      .clone();
}

}  // namespace mixnas::exporter::testing
