#pragma once
// Images as plain interleaved uint8 buffers (HWC, RGB). Decoding and PNG writing via stb.
#include <cstdint>
#include <string>
#include <vector>

namespace mixnas::data {

struct Image {
  int width = 0;
  int height = 0;
  int channels = 3;
  std::vector<uint8_t> pixels;  // height * width * channels, row-major, interleaved

  Image() = default;
  Image(int w, int h, int c = 3, uint8_t fill = 0)
      : width(w), height(h), channels(c), pixels(static_cast<size_t>(w) * h * c, fill) {}
  bool empty() const { return pixels.empty(); }
  uint8_t* at(int x, int y) {
    return pixels.data() + (static_cast<size_t>(y) * width + x) * channels;
  }
  const uint8_t* at(int x, int y) const {
    return pixels.data() + (static_cast<size_t>(y) * width + x) * channels;
  }
};

// Image suffixes a split folder is scanned for (lower case, with the dot).
bool has_image_suffix(const std::string& path);

// Decodes JPEG, PNG or BMP (anything stb_image reads) to RGB. Throws mixnas::Error naming the path
// and the decoder's reason when the file is missing, truncated or not an image.
Image load_image(const std::string& path);
// Decodes an in-memory encoded image; `what` names it in errors.
Image decode_image(const std::string& bytes, const std::string& what);
// Reads only the header: width and height. Throws mixnas::Error when unreadable.
void image_size(const std::string& path, int* width, int* height);

// PNG bytes of an image; compression 0 (fast) .. 9 (small). Deterministic for equal input.
std::string encode_png(const Image& image, int compression = 1);
// Writes a PNG (not atomically: for bulk dataset writing). Throws mixnas::Error on failure.
void save_png(const std::string& path, const Image& image, int compression = 1);
// Writes a JPEG (quality 1..100), for converter fixtures and previews.
void save_jpeg(const std::string& path, const Image& image, int quality = 90);

}  // namespace mixnas::data
