// Runs an .mxr package on one image and prints its detections: the smallest program embedding
// mixnas' runtime. It needs the runtime alone (no LibTorch, no yaml-cpp) and cross-compiles.
//
//   run_mxr MODEL.mxr IMAGE.ppm [--threads N] [--conf X]
//
// Images are binary (P6) or text (P3) PPM files with 8-bit channels, so that the example needs no
// image library; an application passes its own decoded RGB pixels to Session::run the same way.
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "deploy/runtime/session.h"

namespace {

struct RgbImage {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;  // row after row, 3 bytes per pixel
};

// The next header number of a PPM file, skipping white space and # comments.
int read_ppm_number(std::istream& in, const std::string& path) {
  while (true) {
    int c = in.peek();
    if (c == '#') {
      std::string comment;
      std::getline(in, comment);
    } else if (std::isspace(c)) {
      in.get();
    } else {
      break;
    }
  }
  int value = -1;
  if (!(in >> value) || value < 0)
    throw mixnas::Error(path + ": malformed PPM header (expected a non-negative number)");
  return value;
}

RgbImage read_ppm(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw mixnas::Error(path + ": cannot open the image");
  std::string magic(2, '\0');
  in.read(&magic[0], 2);
  if (magic != "P6" && magic != "P3")
    throw mixnas::Error(path +
                        ": not a PPM image (P6 or P3); convert it, e.g. `convert in.jpg out.ppm`");
  RgbImage image;
  image.width = read_ppm_number(in, path);
  image.height = read_ppm_number(in, path);
  const int maxval = read_ppm_number(in, path);
  if (image.width < 1 || image.height < 1 || image.width > 16384 || image.height > 16384)
    throw mixnas::Error(path + ": image size must be 1..16384 pixels a side");
  if (maxval != 255) throw mixnas::Error(path + ": only 8-bit PPM (maxval 255) is read");
  image.rgb.resize(static_cast<size_t>(image.width) * image.height * 3);
  if (magic == "P6") {
    in.get();  // the single white-space byte before the pixels
    in.read(reinterpret_cast<char*>(image.rgb.data()),
            static_cast<std::streamsize>(image.rgb.size()));
    if (in.gcount() != static_cast<std::streamsize>(image.rgb.size()))
      throw mixnas::Error(path + ": the pixel data is truncated");
  } else {
    for (auto& v : image.rgb) v = static_cast<uint8_t>(std::min(255, read_ppm_number(in, path)));
  }
  return image;
}

int usage(const char* argv0) {
  std::fprintf(stderr, "usage: %s MODEL.mxr IMAGE.ppm [--threads N] [--conf X]\n", argv0);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return usage(argv[0]);
  int threads = 1;
  float conf = 0.0f;  // print every detection the package's own NMS keeps
  for (int i = 3; i < argc; ++i) {
    std::string flag = argv[i];
    if (i + 1 >= argc) return usage(argv[0]);
    if (flag == "--threads") {
      threads = std::atoi(argv[++i]);
    } else if (flag == "--conf") {
      conf = static_cast<float>(std::atof(argv[++i]));
    } else {
      return usage(argv[0]);
    }
  }
  try {
    // A Model is the validated, immutable package; a Session runs it (one per thread).
    auto model = mixnas::rt::Model::load(argv[1]);
    mixnas::rt::SessionOptions options;
    options.threads = threads;
    mixnas::rt::Session session(model, options);
    RgbImage image = read_ppm(argv[2]);
    const auto detections =
        session.run({image.rgb.data(), image.width, image.height, image.width * 3});
    int shown = 0;
    for (const auto& d : detections) {
      if (d.score < conf) continue;
      std::printf("class %d  score %.4f  box %.1f %.1f %.1f %.1f\n", d.class_id, d.score, d.x1,
                  d.y1, d.x2, d.y2);
      ++shown;
    }
    std::printf("detections: %d\n", shown);
  } catch (const mixnas::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
