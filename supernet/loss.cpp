#include "supernet/loss.h"

#include <cmath>
#include <cstdio>

#include "core/error.h"

namespace mixnas::supernet {

using torch::Tensor;
namespace idx = torch::indexing;

Tensor xywh_to_xyxy(const Tensor& b) {
  Tensor xy = b.narrow(-1, 0, 2), wh = b.narrow(-1, 2, 2) / 2;
  return torch::cat({xy - wh, xy + wh}, -1);
}

Tensor bbox_ciou(const Tensor& box1, const Tensor& box2) {
  constexpr double eps = 1e-7;
  Tensor b1x1 = box1.select(-1, 0), b1y1 = box1.select(-1, 1), b1x2 = box1.select(-1, 2),
         b1y2 = box1.select(-1, 3);
  Tensor b2x1 = box2.select(-1, 0), b2y1 = box2.select(-1, 1), b2x2 = box2.select(-1, 2),
         b2y2 = box2.select(-1, 3);
  Tensor w1 = b1x2 - b1x1, h1 = b1y2 - b1y1 + eps;
  Tensor w2 = b2x2 - b2x1, h2 = b2y2 - b2y1 + eps;
  Tensor inter = (torch::minimum(b1x2, b2x2) - torch::maximum(b1x1, b2x1)).clamp_min(0) *
                 (torch::minimum(b1y2, b2y2) - torch::maximum(b1y1, b2y1)).clamp_min(0);
  Tensor uni = w1 * h1 + w2 * h2 - inter + eps;
  Tensor iou = inter / uni;
  Tensor cw = torch::maximum(b1x2, b2x2) - torch::minimum(b1x1, b2x1);
  Tensor ch = torch::maximum(b1y2, b2y2) - torch::minimum(b1y1, b2y1);
  Tensor c2 = cw.pow(2) + ch.pow(2) + eps;
  Tensor rho2 = ((b2x1 + b2x2 - b1x1 - b1x2).pow(2) + (b2y1 + b2y2 - b1y1 - b1y2).pow(2)) / 4;
  Tensor v = (4 / (M_PI * M_PI)) * (torch::atan(w2 / h2) - torch::atan(w1 / h1)).pow(2);
  Tensor a;
  {
    torch::NoGradGuard no_grad;
    a = v / (v - iou + (1 + eps));
  }
  return iou - (rho2 / c2 + v * a);
}

// ---------------------------------------------------------------------------------------------
Assignment task_aligned_assign(const Tensor& pd_scores, const Tensor& pd_bboxes,
                               const Tensor& anchor_points, const Tensor& gt_labels,
                               const Tensor& gt_bboxes, const Tensor& mask_gt, int64_t nc,
                               int64_t topk, double alpha, double beta) {
  torch::NoGradGuard no_grad;
  constexpr double eps = 1e-9;
  const int64_t b = pd_scores.size(0), a = pd_scores.size(1), m = gt_bboxes.size(1);
  Assignment out;
  if (m == 0) {
    out.target_bboxes = torch::zeros({b, a, 4});
    out.target_scores = torch::zeros({b, a, nc});
    out.fg_mask = torch::zeros({b, a}, torch::kBool);
    return out;
  }
  // Anchor centres strictly inside the gt boxes: [B, M, A].
  Tensor pts = anchor_points.view({1, 1, a, 2});
  Tensor lt = pts - gt_bboxes.narrow(-1, 0, 2).unsqueeze(2);
  Tensor rb = gt_bboxes.narrow(-1, 2, 2).unsqueeze(2) - pts;
  Tensor mask_in_gts = std::get<0>(torch::cat({lt, rb}, -1).min(-1)) > eps;
  Tensor mask_valid = mask_gt.view({b, m, 1}).to(torch::kBool);
  Tensor mask = mask_in_gts & mask_valid;
  // Alignment metric s^alpha * CIoU^beta on anchors inside valid gts.
  Tensor labels = gt_labels.view({b, m}).to(torch::kLong).clamp_min(0);
  Tensor scores =
      torch::gather(pd_scores.transpose(1, 2), 1, labels.unsqueeze(-1).expand({b, m, a}));
  Tensor overlaps = bbox_ciou(gt_bboxes.unsqueeze(2), pd_bboxes.unsqueeze(1)).clamp_min(0);
  overlaps = torch::where(mask, overlaps, torch::zeros_like(overlaps));
  scores = torch::where(mask, scores, torch::zeros_like(scores));
  Tensor align = scores.pow(alpha) * overlaps.pow(beta);
  // Top-k anchors per gt (metric over all anchors; duplicates counted once).
  const int64_t k = std::min(topk, a);
  Tensor topk_idx = std::get<1>(align.topk(k, -1, true));
  topk_idx = torch::where(mask_valid.expand({b, m, k}), topk_idx, torch::zeros_like(topk_idx));
  Tensor count = torch::zeros({b, m, a}, torch::kFloat);
  count.scatter_add_(-1, topk_idx, torch::ones({b, m, k}));
  Tensor mask_topk = (count == 1);
  Tensor mask_pos = (mask_topk & mask & mask_valid).to(torch::kFloat);
  // An anchor assigned to several gts keeps the one it overlaps most.
  Tensor fg = mask_pos.sum(1);  // [B, A]
  if (fg.max().item<float>() > 1) {
    Tensor multi = (fg.unsqueeze(1) > 1).expand({b, m, a});
    Tensor best = overlaps.argmax(1);  // [B, A]
    Tensor is_best = torch::one_hot(best, m).permute({0, 2, 1}).to(torch::kFloat);
    mask_pos = torch::where(multi, is_best, mask_pos);
    fg = mask_pos.sum(1);
  }
  Tensor gt_idx = mask_pos.argmax(1);  // [B, A]
  Tensor flat_idx = gt_idx + torch::arange(b, torch::kLong).unsqueeze(1) * m;
  Tensor t_labels = labels.flatten().index({flat_idx});  // [B, A]
  out.target_bboxes = gt_bboxes.reshape({-1, 4}).index({flat_idx});
  Tensor fg_mask = fg > 0;
  Tensor t_scores = torch::one_hot(t_labels, nc).to(torch::kFloat) * fg_mask.unsqueeze(-1);
  // Normalise: the best-aligned anchor of each gt gets that gt's best IoU as its score.
  align = align * mask_pos;
  Tensor pos_align = std::get<0>(align.max(-1, true));  // [B, M, 1]
  Tensor pos_overlaps = std::get<0>((overlaps * mask_pos).max(-1, true));
  Tensor norm = std::get<0>((align * pos_overlaps / (pos_align + eps)).max(1)).unsqueeze(-1);
  out.target_scores = t_scores * norm;
  out.fg_mask = fg_mask;
  return out;
}

namespace {

// Pads targets [M, 6] to per-image gt tensors: labels [B, Mmax, 1], boxes xyxy pixels [B, Mmax, 4],
// mask [B, Mmax, 1].
void pad_targets(const Tensor& targets, int64_t batch, int64_t h, int64_t w, Tensor& labels,
                 Tensor& boxes, Tensor& mask) {
  if (targets.dim() != 2 || (targets.size(0) > 0 && targets.size(1) != 6))
    throw Error("detection loss: targets must be [M, 6] rows (image, class, cx, cy, w, h)");
  Tensor t = targets.to(torch::kFloat);
  std::vector<int64_t> counts(size_t(batch), 0);
  auto img = t.size(0) ? t.select(1, 0).to(torch::kLong) : torch::zeros({0}, torch::kLong);
  auto ia = img.accessor<int64_t, 1>();
  for (int64_t i = 0; i < img.size(0); ++i) {
    if (ia[i] < 0 || ia[i] >= batch)
      throw Error("detection loss: target row " + std::to_string(i) + " names image " +
                  std::to_string(ia[i]) + " outside the batch of " + std::to_string(batch));
    ++counts[size_t(ia[i])];
  }
  int64_t mmax = 0;
  for (auto c : counts) mmax = std::max(mmax, c);
  labels = torch::zeros({batch, mmax, 1});
  boxes = torch::zeros({batch, mmax, 4});
  mask = torch::zeros({batch, mmax, 1});
  std::vector<int64_t> fill(size_t(batch), 0);
  Tensor scale = torch::tensor({float(w), float(h), float(w), float(h)});
  for (int64_t i = 0; i < img.size(0); ++i) {
    const int64_t bi = ia[i], j = fill[size_t(bi)]++;
    labels[bi][j][0] = t[i][1];
    boxes[bi][j] = xywh_to_xyxy(t[i].narrow(0, 2, 4) * scale);
    mask[bi][j][0] = 1.0;
  }
}

Tensor bbox_to_dist(const Tensor& points, const Tensor& bbox, double reg_max) {
  Tensor lt = points - bbox.narrow(-1, 0, 2);
  Tensor rb = bbox.narrow(-1, 2, 2) - points;
  return torch::cat({lt, rb}, -1).clamp(0, reg_max - 0.01);
}

// The levels' raw outputs ([B, no, H, W] each) as one [B, anchors, no] tensor, levels in order.
Tensor anchor_rows(const std::vector<Tensor>& raw) {
  const int64_t b = raw.at(0).size(0), no = raw[0].size(1);
  std::vector<Tensor> flat;
  for (const auto& r : raw) flat.push_back(r.reshape({b, no, -1}));
  return torch::cat(flat, 2).permute({0, 2, 1});
}

class V8Loss : public DetectionLoss {
 public:
  V8Loss(int64_t nc, std::vector<double> strides, V8LossOptions o)
      : nc_(nc), strides_(std::move(strides)), o_(o) {}

  LossItems compute(const std::vector<Tensor>& raw, const Tensor& targets, int64_t image_h,
                    int64_t image_w) const override {
    constexpr int64_t reg = DetectImpl::kRegMax;
    const int64_t b = raw.at(0).size(0), no = nc_ + 4 * reg;
    std::vector<std::pair<int64_t, int64_t>> sizes;
    for (const auto& r : raw) {
      if (r.dim() != 4 || r.size(1) != no)
        throw Error("v8 loss: head output has " + std::to_string(r.size(1)) +
                    " channels, expected " + std::to_string(no));
      sizes.emplace_back(r.size(2), r.size(3));
    }
    Tensor all = anchor_rows(raw);  // [B, A, no]
    Tensor pred_distri = all.narrow(2, 0, 4 * reg);
    Tensor pred_scores = all.narrow(2, 4 * reg, nc_);
    auto [points, stride] = make_anchor_points(sizes, strides_);
    Tensor gt_labels, gt_boxes, mask_gt;
    pad_targets(targets, b, image_h, image_w, gt_labels, gt_boxes, mask_gt);
    Tensor pred_bboxes = dist_to_bbox(dfl_decode(pred_distri, reg), points);  // grid units
    Assignment as = task_aligned_assign(pred_scores.detach().sigmoid(),
                                        pred_bboxes.detach() * stride, points * stride, gt_labels,
                                        gt_boxes, mask_gt, nc_, o_.topk, o_.alpha, o_.beta);
    Tensor tss = torch::clamp_min(as.target_scores.sum(), 1.0);
    Tensor loss_cls = torch::binary_cross_entropy_with_logits(pred_scores, as.target_scores, {}, {},
                                                              at::Reduction::Sum) /
                      tss;
    Tensor loss_box = torch::zeros({}), loss_dfl = torch::zeros({});
    if (as.fg_mask.any().item<bool>()) {
      Tensor fg = as.fg_mask;
      Tensor target_bboxes = as.target_bboxes / stride;
      Tensor weight = as.target_scores.sum(-1).index({fg}).unsqueeze(-1);
      Tensor iou = bbox_ciou(pred_bboxes.index({fg}), target_bboxes.index({fg})).unsqueeze(-1);
      loss_box = ((1.0 - iou) * weight).sum() / tss;
      Tensor target_ltrb = bbox_to_dist(points.unsqueeze(0), target_bboxes, double(reg - 1));
      Tensor t = target_ltrb.index({fg});                      // [N, 4]
      Tensor pd = pred_distri.index({fg}).reshape({-1, reg});  // [N * 4, reg]
      Tensor tl = t.to(torch::kLong), tr = tl + 1;
      Tensor wl = tr.to(torch::kFloat) - t, wr = 1.0 - wl;
      Tensor ce_l = torch::nn::functional::cross_entropy(
                        pd, tl.view(-1),
                        torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone))
                        .view(tl.sizes());
      Tensor ce_r = torch::nn::functional::cross_entropy(
                        pd, tr.view(-1),
                        torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone))
                        .view(tl.sizes());
      Tensor dfl = (ce_l * wl + ce_r * wr).mean(-1, true);
      loss_dfl = (dfl * weight).sum() / tss;
    }
    LossItems items;
    Tensor box = loss_box * o_.box, cls = loss_cls * o_.cls, dfl = loss_dfl * o_.dfl;
    items.total = (box + cls + dfl) * double(b);
    items.box = box.detach();
    items.cls = cls.detach();
    items.third = dfl.detach();
    return items;
  }

 private:
  int64_t nc_;
  std::vector<double> strides_;
  V8LossOptions o_;
};

class V5Loss : public DetectionLoss {
 public:
  V5Loss(int64_t nc, std::vector<double> strides, Tensor anchors_px, V5LossOptions o)
      : nc_(nc),
        strides_(std::move(strides)),
        anchors_px_(std::move(anchors_px)),
        o_(std::move(o)) {}

  LossItems compute(const std::vector<Tensor>& raw, const Tensor& targets_in, int64_t image_h,
                    int64_t image_w) const override {
    const int64_t nl = int64_t(raw.size()), na = anchors_px_.size(1);
    if (int64_t(o_.balance.size()) < nl)
      throw Error("v5 loss: balance lists fewer levels than the head has");
    const int64_t b = raw.at(0).size(0);
    Tensor targets = targets_in.to(torch::kFloat);
    const int64_t nt = targets.size(0);
    Tensor ai = torch::arange(na, torch::kFloat).view({na, 1}).repeat({1, nt});
    Tensor tt = torch::cat({targets.repeat({na, 1, 1}), ai.unsqueeze(-1)}, 2);  // [na, nt, 7]
    const double g = 0.5;
    Tensor off =
        torch::tensor({0.f, 0.f, 1.f, 0.f, 0.f, 1.f, -1.f, 0.f, 0.f, -1.f}).view({5, 2}) * g;
    Tensor lbox = torch::zeros({}), lobj = torch::zeros({}), lcls = torch::zeros({});
    const double box_gain = o_.box * 3.0 / double(nl);
    const double cls_gain = o_.cls * double(nc_) / 80.0 * 3.0 / double(nl);
    const double obj_gain =
        o_.obj * std::pow(double(std::max(image_h, image_w)) / 640.0, 2) * 3.0 / double(nl);
    for (int64_t i = 0; i < nl; ++i) {
      const Tensor& pi = raw[size_t(i)];  // [B, na, H, W, 5 + nc]
      const int64_t h = pi.size(2), w = pi.size(3);
      Tensor anchors = anchors_px_[i] / strides_.at(size_t(i));  // grid units [na, 2]
      Tensor gain = torch::tensor({1.f, 1.f, float(w), float(h), float(w), float(h), 1.f});
      Tensor t = tt * gain;
      Tensor offsets;
      if (nt) {
        Tensor r = t.narrow(2, 4, 2) / anchors.unsqueeze(1);
        Tensor j = std::get<0>(torch::max(r, 1.0 / r).max(2)) < o_.anchor_t;
        t = t.index({j});  // [n, 7]
        Tensor gxy = t.narrow(1, 2, 2);
        Tensor gxi = torch::tensor({float(w), float(h)}) - gxy;
        Tensor jk = ((torch::fmod(gxy, 1.0) < g) & (gxy > 1)).t();
        Tensor lm = ((torch::fmod(gxi, 1.0) < g) & (gxi > 1)).t();
        Tensor sel = torch::stack({torch::ones_like(jk[0]), jk[0], jk[1], lm[0], lm[1]});
        t = t.repeat({5, 1, 1}).index({sel});
        offsets = (torch::zeros_like(gxy).unsqueeze(0) + off.unsqueeze(1)).index({sel});
      } else {
        t = torch::zeros({0, 7});
        offsets = torch::zeros({0, 2});
      }
      Tensor bimg = t.select(1, 0).to(torch::kLong), cls = t.select(1, 1).to(torch::kLong);
      Tensor gxy = t.narrow(1, 2, 2), gwh = t.narrow(1, 4, 2);
      Tensor a = t.select(1, 6).to(torch::kLong);
      Tensor gij = (gxy - offsets).to(torch::kLong);
      Tensor gi = gij.select(1, 0).clamp(0, w - 1), gj = gij.select(1, 1).clamp(0, h - 1);
      Tensor tbox = torch::cat({gxy - torch::stack({gi, gj}, 1).to(torch::kFloat), gwh}, 1);
      Tensor tobj = torch::zeros({pi.size(0), na, h, w});
      const int64_t n = bimg.size(0);
      if (n) {
        Tensor ps = pi.index({bimg, a, gj, gi});  // [n, 5 + nc]
        Tensor pxy = ps.narrow(1, 0, 2).sigmoid() * 2 - 0.5;
        Tensor pwh = (ps.narrow(1, 2, 2).sigmoid() * 2).pow(2) * anchors.index({a});
        Tensor iou = bbox_ciou(xywh_to_xyxy(torch::cat({pxy, pwh}, 1)), xywh_to_xyxy(tbox));
        lbox = lbox + (1.0 - iou).mean();
        tobj.index_put_({bimg, a, gj, gi}, iou.detach().clamp_min(0));
        if (nc_ > 1) {
          Tensor tc = torch::zeros({n, nc_});
          tc.index_put_({torch::arange(n), cls}, 1.0);
          lcls = lcls + torch::binary_cross_entropy_with_logits(ps.narrow(1, 5, nc_), tc);
        }
      }
      lobj = lobj + torch::binary_cross_entropy_with_logits(pi.select(-1, 4), tobj) *
                        o_.balance[size_t(i)];
    }
    LossItems items;
    Tensor box = lbox * box_gain, obj = lobj * obj_gain, cls = lcls * cls_gain;
    items.total = (box + obj + cls) * double(b);
    items.box = box.detach();
    items.cls = cls.detach();
    items.third = obj.detach();
    return items;
  }

 private:
  int64_t nc_;
  std::vector<double> strides_;
  Tensor anchors_px_;
  V5LossOptions o_;
};

}  // namespace

DistillItems v8_distill_loss(const std::vector<Tensor>& student, const std::vector<Tensor>& teacher,
                             int64_t nc, double cls_gain, double dfl_gain) {
  constexpr int64_t reg = DetectImpl::kRegMax;
  if (student.size() != teacher.size() || student.empty())
    throw Error("distillation: the teacher has " + std::to_string(teacher.size()) +
                " head levels, the student " + std::to_string(student.size()));
  const int64_t b = student[0].size(0), no = nc + 4 * reg;
  for (size_t i = 0; i < student.size(); ++i) {
    if (student[i].dim() != 4 || student[i].size(1) != no ||
        teacher[i].sizes() != student[i].sizes())
      throw Error("distillation: head level " + std::to_string(i) + " of the teacher is " +
                  c10::str(teacher[i].sizes()) + ", the student's " + c10::str(student[i].sizes()) +
                  " (the teacher must be the same detector: classes, reg_max and strides)");
  }
  Tensor s_all = anchor_rows(student);  // [B, A, no]
  Tensor t_all = anchor_rows(teacher).detach();
  Tensor t_logits = t_all.narrow(2, 4 * reg, nc), s_logits = s_all.narrow(2, 4 * reg, nc);
  Tensor p = t_logits.sigmoid();
  Tensor w = std::get<0>(p.max(-1));  // [B, A]
  Tensor norm = torch::clamp_min(w.sum(), 1.0);
  Tensor ce = torch::binary_cross_entropy_with_logits(s_logits, p, {}, {}, at::Reduction::Sum);
  Tensor entropy = torch::binary_cross_entropy_with_logits(t_logits, p, {}, {}, at::Reduction::Sum);
  Tensor loss_cls = (ce - entropy) / norm;
  Tensor s_bins = s_all.narrow(2, 0, 4 * reg).reshape({b, -1, 4, reg});
  Tensor t_bins = t_all.narrow(2, 0, 4 * reg).reshape({b, -1, 4, reg});
  Tensor t_log = torch::log_softmax(t_bins, -1);
  Tensor kl = (t_log.exp() * (t_log - torch::log_softmax(s_bins, -1))).sum(-1).mean(-1);
  Tensor loss_dfl = (kl * w).sum() / norm;
  DistillItems items;
  Tensor cls = loss_cls * cls_gain, dfl = loss_dfl * dfl_gain;
  items.total = (cls + dfl) * double(b);
  items.cls = cls.detach();
  items.dfl = dfl.detach();
  return items;
}

std::unique_ptr<DetectionLoss> make_v8_loss(int64_t nc, std::vector<double> strides,
                                            V8LossOptions options) {
  return std::make_unique<V8Loss>(nc, std::move(strides), options);
}

std::unique_ptr<DetectionLoss> make_v5_loss(int64_t nc, std::vector<double> strides,
                                            Tensor anchors_px, V5LossOptions options) {
  return std::make_unique<V5Loss>(nc, std::move(strides), std::move(anchors_px),
                                  std::move(options));
}

std::unique_ptr<DetectionLoss> make_loss(const YoloModel& model) {
  if (model->anchor_based()) {
    const auto& head = dynamic_cast<const DetectV5Impl&>(model->head());
    return make_v5_loss(model->nc(), model->strides(), head.anchors_px.clone());
  }
  return make_v8_loss(model->nc(), model->strides());
}

// ---------------------------------------------------------------------------------------------
std::vector<Detections> non_max_suppression(const Predictions& predictions, double conf_threshold,
                                            double iou_threshold, int64_t max_det, bool agnostic) {
  torch::NoGradGuard no_grad;
  std::vector<Detections> out;
  const int64_t b = predictions.boxes.size(0);
  constexpr double kMaxWh =
      7680.0;  // class offset so that boxes of different classes never overlap
  constexpr int64_t kMaxNms = 30000;
  for (int64_t i = 0; i < b; ++i) {
    Tensor boxes = predictions.boxes[i].to(torch::kFloat).cpu();
    auto [conf, cls] = predictions.scores[i].to(torch::kFloat).cpu().max(-1);
    Tensor keep = conf > conf_threshold;
    boxes = boxes.index({keep});
    conf = conf.index({keep});
    cls = cls.index({keep});
    Tensor order = conf.argsort(0, true);
    if (order.size(0) > kMaxNms) order = order.narrow(0, 0, kMaxNms);
    boxes = boxes.index({order}).contiguous();
    conf = conf.index({order}).contiguous();
    cls = cls.index({order}).contiguous();
    Tensor shifted =
        boxes + (agnostic ? torch::zeros_like(conf) : cls.to(torch::kFloat) * kMaxWh).unsqueeze(1);
    const int64_t n = boxes.size(0);
    auto bx = shifted.accessor<float, 2>();
    std::vector<char> removed(size_t(n), 0);
    std::vector<int64_t> kept;
    for (int64_t p = 0; p < n && int64_t(kept.size()) < max_det; ++p) {
      if (removed[size_t(p)]) continue;
      kept.push_back(p);
      const float area_p = (bx[p][2] - bx[p][0]) * (bx[p][3] - bx[p][1]);
      for (int64_t q = p + 1; q < n; ++q) {
        if (removed[size_t(q)]) continue;
        const float iw = std::min(bx[p][2], bx[q][2]) - std::max(bx[p][0], bx[q][0]);
        const float ih = std::min(bx[p][3], bx[q][3]) - std::max(bx[p][1], bx[q][1]);
        if (iw <= 0 || ih <= 0) continue;
        const float inter = iw * ih;
        const float area_q = (bx[q][2] - bx[q][0]) * (bx[q][3] - bx[q][1]);
        if (inter / (area_p + area_q - inter) > iou_threshold) removed[size_t(q)] = 1;
      }
    }
    Tensor idx = torch::tensor(kept, torch::kLong);
    out.push_back({boxes.index({idx}), conf.index({idx}), cls.index({idx})});
  }
  return out;
}

void require_finite_loss(const LossItems& items, const std::string& where) {
  const double total = items.total.item<double>();
  if (std::isfinite(total)) return;
  char values[200];
  int n =
      std::snprintf(values, sizeof values, "%g (box=%g cls=%g dfl/obj=%g", total,
                    items.box.item<double>(), items.cls.item<double>(), items.third.item<double>());
  if (items.distill.defined())
    n += std::snprintf(values + n, sizeof values - size_t(n), " distill=%g",
                       items.distill.item<double>());
  std::snprintf(values + n, sizeof values - size_t(n), ")");
  throw Error(where + ": the training loss is " + values +
              "; stopped before it reaches the weights, the last checkpoint keeps the last "
              "finished epoch. Lower the learning rate or check the labels (mixnas data check), "
              "then resume with --resume");
}

}  // namespace mixnas::supernet
