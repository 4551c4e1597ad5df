// mixnas predict MODEL IMAGE...: detections of a trained model (weights .pt through LibTorch, or an
// exported .mxr through the runtime), printed and drawn into PNGs in runs/predict/<name>/, and
// with --save-txt / --save-json written as YOLO labels (labels/<stem>.txt) and COCO results
// (predictions.json) as ultralytics lays them out.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>

#define STB_EASY_FONT_IMPLEMENTATION
#include <stb/stb_easy_font.h>

#include "apps/mixnas/commands.h"
#include "apps/mixnas/prediction_files.h"
#include "core/error.h"
#include "core/log.h"
#include "core/run_dir.h"
#include "datasets/image.h"
#include "deploy/runtime/session.h"
#include "supernet/checkpoint.h"
#include "supernet/loss.h"

namespace mixnas::cli {
namespace fs = std::filesystem;

namespace {

using Found = PredictedBox;

// A distinct, saturated colour per class.
void class_colour(int cls, uint8_t rgb[3]) {
  static const uint8_t palette[10][3] = {
      {255, 56, 56}, {255, 157, 151}, {255, 112, 31}, {255, 178, 29}, {207, 210, 49},
      {72, 249, 10}, {26, 147, 52},   {0, 212, 187},  {44, 153, 168}, {0, 194, 255}};
  for (int i = 0; i < 3; ++i) rgb[i] = palette[((cls % 10) + 10) % 10][i];
}

void fill_rect(data::Image& img, int x0, int y0, int x1, int y1, const uint8_t rgb[3]) {
  x0 = std::max(0, x0);
  y0 = std::max(0, y0);
  x1 = std::min(img.width, x1);
  y1 = std::min(img.height, y1);
  for (int y = y0; y < y1; ++y) {
    for (int x = x0; x < x1; ++x) {
      uint8_t* p = &img.pixels[(static_cast<size_t>(y) * img.width + x) * img.channels];
      for (int c = 0; c < 3; ++c) p[c] = rgb[c];
    }
  }
}

void draw_text(data::Image& img, int x, int y, const std::string& text, const uint8_t rgb[3]) {
  static char buffer[60000];
  int quads =
      stb_easy_font_print(0, 0, const_cast<char*>(text.c_str()), nullptr, buffer, sizeof buffer);
  const float* v = reinterpret_cast<const float*>(buffer);
  for (int q = 0; q < quads; ++q) {
    // Each quad is 4 vertices of (x, y, z, colour) = 16 bytes; corners 0 and 2 span it.
    const float* a = v + q * 16;
    const float* c = v + q * 16 + 8;
    fill_rect(img, x + static_cast<int>(a[0]), y + static_cast<int>(a[1]),
              x + static_cast<int>(c[0]), y + static_cast<int>(c[1]), rgb);
  }
}

void draw(data::Image& img, const std::vector<Found>& found,
          const std::vector<std::string>& names) {
  for (const auto& f : found) {
    uint8_t rgb[3];
    class_colour(f.cls, rgb);
    int x1 = static_cast<int>(std::lround(f.x1)), y1 = static_cast<int>(std::lround(f.y1));
    int x2 = static_cast<int>(std::lround(f.x2)), y2 = static_cast<int>(std::lround(f.y2));
    int t = std::max(1, std::min(img.width, img.height) / 200);
    fill_rect(img, x1, y1, x2, y1 + t, rgb);
    fill_rect(img, x1, y2 - t, x2, y2, rgb);
    fill_rect(img, x1, y1, x1 + t, y2, rgb);
    fill_rect(img, x2 - t, y1, x2, y2, rgb);
    std::string label =
        (f.cls >= 0 && f.cls < static_cast<int>(names.size()) ? names[f.cls]
                                                              : std::to_string(f.cls));
    char score[16];
    std::snprintf(score, sizeof score, " %.2f", f.score);
    label += score;
    int w = stb_easy_font_width(const_cast<char*>(label.c_str()));
    int ty = std::max(0, y1 - 12);
    fill_rect(img, x1, ty, x1 + w + 2, ty + 12, rgb);
    const uint8_t white[3] = {255, 255, 255};
    draw_text(img, x1 + 1, ty + 2, label, white);
  }
}

// Detections of a LibTorch model on one image: letterboxed into imgsz x imgsz as validation does,
// NMS, boxes mapped back to the image.
std::vector<Found> predict_torch(supernet::YoloModel& torch_model, data::Image& img, int imgsz,
                                 float conf, float iou) {
  std::vector<Found> found;
  torch::NoGradGuard no_grad;
  // Letterbox into imgsz x imgsz, as validation does.
  float r = std::min(static_cast<float>(imgsz) / img.width, static_cast<float>(imgsz) / img.height);
  int nw = std::max(1, static_cast<int>(std::lround(img.width * r)));
  int nh = std::max(1, static_cast<int>(std::lround(img.height * r)));
  auto t = torch::from_blob(img.pixels.data(), {img.height, img.width, 3}, torch::kUInt8)
               .permute({2, 0, 1})
               .unsqueeze(0)
               .to(torch::kFloat32)
               .div(255.0);
  t = torch::nn::functional::interpolate(t, torch::nn::functional::InterpolateFuncOptions()
                                                .size(std::vector<int64_t>{nh, nw})
                                                .mode(torch::kBilinear)
                                                .align_corners(false));
  int px = (imgsz - nw) / 2, py = (imgsz - nh) / 2;
  auto input = torch::full({1, 3, imgsz, imgsz}, 114.0f / 255.0f);
  input.index_put_({torch::indexing::Slice(), torch::indexing::Slice(),
                    torch::indexing::Slice(py, py + nh), torch::indexing::Slice(px, px + nw)},
                   t);
  auto out = torch_model->forward(input);
  auto dets = supernet::non_max_suppression(*out.predictions, conf, iou, 300);
  auto boxes = dets[0].boxes.contiguous();
  for (int64_t k = 0; k < boxes.size(0); ++k) {
    Found f;
    f.x1 = std::clamp((boxes[k][0].item<float>() - px) / r, 0.0f, float(img.width));
    f.y1 = std::clamp((boxes[k][1].item<float>() - py) / r, 0.0f, float(img.height));
    f.x2 = std::clamp((boxes[k][2].item<float>() - px) / r, 0.0f, float(img.width));
    f.y2 = std::clamp((boxes[k][3].item<float>() - py) / r, 0.0f, float(img.height));
    f.score = dets[0].scores[k].item<float>();
    f.cls = static_cast<int>(dets[0].classes[k].item<int64_t>());
    found.push_back(f);
  }
  return found;
}

}  // namespace

Runner add_predict_command(CLI::App& app) {
  struct Args {
    std::string model;
    std::vector<std::string> images;
    int imgsz = 0;
    double conf = 0.25, iou = 0.45;
    std::string name = "exp";
    bool exist_ok = false;
    bool save_txt = false, save_conf = false, save_json = false;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("predict", "Run a model on images and draw the detections");
  cmd->add_option("model", a->model, "weights (.pt, from mixnas train) or package (.mxr)")
      ->required();
  cmd->add_option("images", a->images, "Image files (JPEG, PNG, BMP)")->required();
  cmd->add_option("--imgsz", a->imgsz, "Input size for .pt models (default: 160)");
  cmd->add_option("--conf", a->conf, "Score threshold")->capture_default_str();
  cmd->add_option("--iou", a->iou, "NMS IoU threshold")->capture_default_str();
  cmd->add_option("--name", a->name, "Run name: runs/predict/<name>")->capture_default_str();
  cmd->add_flag("--exist-ok", a->exist_ok, "Reuse runs/predict/<name>");
  cmd->add_flag("--save-txt", a->save_txt,
                "Write labels/<image stem>.txt: class cx cy w h per box, normalised (YOLO format)");
  cmd->add_flag("--save-conf", a->save_conf, "With --save-txt: the score as a sixth column");
  cmd->add_flag("--save-json", a->save_json,
                "Write predictions.json: COCO results (image_id = file stem, category_id = class)");
  return [a] {
    bool is_mxr = fs::path(a->model).extension() == ".mxr";
    std::shared_ptr<const rt::Model> package;
    std::unique_ptr<rt::Session> session;
    supernet::YoloModel torch_model{nullptr};
    std::vector<std::string> names;
    if (is_mxr) {
      package = rt::Model::load(a->model);
      session = std::make_unique<rt::Session>(package, rt::SessionOptions{});
      names = package->graph().output.class_names;
    } else {
      // In eval mode with BN folded when quantized, as val and export compute it.
      supernet::TrainedModel trained = supernet::load_trained_model(a->model);
      torch_model = trained.model;
      names = trained.class_names;
    }
    int imgsz = a->imgsz > 0 ? a->imgsz : 160;
    if (a->save_conf && !a->save_txt) throw Error("mixnas predict: --save-conf needs --save-txt");
    std::string run = make_run_dir("predict", a->name, a->exist_ok);
    CocoResultsWriter json;
    for (const auto& path : a->images) {
      data::Image img = data::load_image(path);
      std::vector<Found> found;
      if (is_mxr) {
        rt::ImageView view{img.pixels.data(), img.width, img.height, img.width * 3};
        for (const auto& d : session->run(view)) {
          if (d.score >= a->conf) found.push_back({d.x1, d.y1, d.x2, d.y2, d.score, d.class_id});
        }
      } else {
        found = predict_torch(torch_model, img, imgsz, float(a->conf), float(a->iou));
      }
      std::printf("%s: %zu detections\n", path.c_str(), found.size());
      for (const auto& f : found) {
        std::string label = f.cls >= 0 && f.cls < static_cast<int>(names.size())
                                ? names[f.cls]
                                : std::to_string(f.cls);
        std::printf("  %-12s %.3f  [%.1f, %.1f, %.1f, %.1f]\n", label.c_str(), f.score, f.x1, f.y1,
                    f.x2, f.y2);
      }
      if (a->save_txt)
        write_yolo_txt((fs::path(run) / "labels").string(), path, img.width, img.height, found,
                       a->save_conf);
      if (a->save_json) json.add(path, found);
      draw(img, found, names);
      std::string out = (fs::path(run) / (fs::path(path).stem().string() + ".png")).string();
      data::save_png(out, img);
    }
    if (a->save_json) json.write((fs::path(run) / "predictions.json").string());
    std::printf("drawn into %s\n", run.c_str());
    return 0;
  };
}

}  // namespace mixnas::cli
