#pragma once
// Training augmentations on uint8 HWC images with their boxes, each switchable: letterbox, random
// affine (scale, translate), horizontal flip, HSV jitter, 4-image mosaic. Boxes are transformed
// with the pixels, clipped, and dropped when too little of them is left (ultralytics'
// box_candidates rule: at least min_box_px wide and high, and > min_area_ratio of the area).
#include <array>
#include <functional>
#include <vector>

#include "datasets/image.h"
#include "datasets/labels.h"
#include "datasets/rng.h"

namespace mixnas::data {

struct AugmentOptions {
  int imgsz = 640;
  bool letterbox = true;  // keep the aspect ratio and pad (off: stretch to imgsz x imgsz)
  bool affine = true;
  double scale = 0.5;      // zoom gain in [1 - scale, 1 + scale]
  double translate = 0.1;  // shift up to this fraction of imgsz
  bool flip = true;
  double fliplr = 0.5;  // probability of a horizontal flip
  bool hsv = true;
  double hsv_h = 0.015, hsv_s = 0.7, hsv_v = 0.4;  // gains as in ultralytics' hyp
  bool mosaic = true;
  double mosaic_prob = 1.0;
  double min_box_px = 2.0;
  double min_area_ratio = 0.1;
  uint8_t pad_value = 114;
  // Validation: letterbox only.
  static AugmentOptions none(int imgsz) {
    AugmentOptions o;
    o.imgsz = imgsz;
    o.affine = o.flip = o.hsv = o.mosaic = false;
    return o;
  }
};

// An image with boxes normalised to it.
struct Annotated {
  Image image;
  std::vector<Box> boxes;
};

// How a letterboxed image maps to its source: x_out = x_src * scale_x + pad_x (pixels).
struct LetterboxInfo {
  int src_width = 0, src_height = 0;
  int out_size = 0;
  float scale_x = 1, scale_y = 1;
  int pad_x = 0, pad_y = 0;
};

// core/letterbox.h's bilinear resize (the runtime's) on an Image.
Image resize_bilinear(const Image& src, int width, int height);
// The runtime's letterbox (core/letterbox.h): resizes so the longer side is `size` (aspect kept)
// and pads to size x size, centred as ultralytics centres; scale_x = scale_y = the ratio r.
Annotated letterbox(const Annotated& src, int size, LetterboxInfo* info, uint8_t pad = 114);
// A box normalised to the letterboxed image back to the source image, and forth.
Box letterbox_to_source(const Box& box, const LetterboxInfo& info);
Box source_to_letterbox(const Box& box, const LetterboxInfo& info);

void flip_horizontal(Annotated* sample);
// Random hue, saturation and value gains (ultralytics augment_hsv); boxes unchanged.
void hsv_jitter(Image* image, Rng& rng, double h_gain, double s_gain, double v_gain);
// Output pixel (x, y) samples the source at ((x + 0.5 - tx) / s + cx - 0.5, same for y), with
// (cx, cy) the source centre: scale by s about the centre, then move the centre to (tx, ty).
// Bilinear, fixed point (within one code of exact arithmetic); pixels with no source tap keep
// options.pad_value. Boxes are mapped, clipped to the output and dropped when too small.
Annotated scale_translate(const Annotated& src, int out_size, double s, double tx, double ty,
                          const AugmentOptions& options);
// Scale by s about the image centre, then translate; output out_size x out_size.
Annotated random_affine(const Annotated& src, Rng& rng, int out_size, double scale,
                        double translate, const AugmentOptions& options);
// Four images (longer side already imgsz) on a 2*imgsz canvas around a random centre, then a
// random affine crop back to imgsz x imgsz.
Annotated mosaic4(const std::array<Annotated, 4>& parts, Rng& rng, const AugmentOptions& options);

// The full training pipeline for one sample. `load(i)` returns sample i of the split (source
// size); `count` is the split size (mosaic draws 3 more samples at random). `mosaic` overrides
// options.mosaic (switched off for the last epochs).
Annotated augment_sample(size_t index, size_t count, const std::function<Annotated(size_t)>& load,
                         Rng& rng, const AugmentOptions& options, bool mosaic);

}  // namespace mixnas::data
