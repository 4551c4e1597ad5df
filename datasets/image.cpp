#include "datasets/image.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>

#include <zlib.h>

#include "core/error.h"

#define STB_IMAGE_IMPLEMENTATION
#include <stb/stb_image.h>
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>

namespace mixnas::data {
namespace {

std::string lower_suffix(const std::string& path) {
  auto dot = path.find_last_of('.');
  auto slash = path.find_last_of('/');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return "";
  std::string s = path.substr(dot);
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open image " + path + ": missing or not readable");
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw Error("cannot read image " + path);
  return bytes;
}

void append_to_string(void* context, void* data, int size) {
  static_cast<std::string*>(context)->append(static_cast<const char*>(data), size);
}

}  // namespace

bool has_image_suffix(const std::string& path) {
  static const char* kSuffixes[] = {".bmp", ".jpeg", ".jpg", ".png"};
  std::string s = lower_suffix(path);
  for (const char* k : kSuffixes) {
    if (s == k) return true;
  }
  return false;
}

Image decode_image(const std::string& bytes, const std::string& what) {
  if (bytes.empty()) throw Error("image " + what + " is empty (0 bytes); re-create or remove it");
  if (bytes.size() > static_cast<size_t>(INT32_MAX)) throw Error("image " + what + " is too large");
  int w = 0, h = 0, c = 0;
  stbi_uc* data = stbi_load_from_memory(reinterpret_cast<const stbi_uc*>(bytes.data()),
                                        static_cast<int>(bytes.size()), &w, &h, &c, 3);
  if (!data) {
    throw Error("cannot decode image " + what + ": " + stbi_failure_reason() +
                " (corrupt, truncated or unsupported format; JPEG, PNG and BMP are read)");
  }
  Image image;
  image.width = w;
  image.height = h;
  image.channels = 3;
  image.pixels.assign(data, data + static_cast<size_t>(w) * h * 3);
  stbi_image_free(data);
  return image;
}

Image load_image(const std::string& path) {
  return decode_image(read_bytes(path), path);
}

void image_size(const std::string& path, int* width, int* height) {
  std::string bytes = read_bytes(path);
  int c = 0;
  if (bytes.empty() || !stbi_info_from_memory(reinterpret_cast<const stbi_uc*>(bytes.data()),
                                              static_cast<int>(bytes.size()), width, height, &c)) {
    throw Error("cannot read the header of image " + path + ": " +
                (bytes.empty() ? "empty file" : stbi_failure_reason()));
  }
}

// PNG through zlib with one fixed filter (Paeth) per row: several times faster than trying every
// filter per row, and as small on fmnist-det's images. Deterministic for a zlib version.
std::string encode_png(const Image& image, int compression) {
  if (image.channels < 1 || image.channels > 4 || image.width <= 0 || image.height <= 0) {
    throw Error("PNG encoding: bad image shape");
  }
  const size_t stride = static_cast<size_t>(image.width) * image.channels;
  const int bpp = image.channels;
  std::string filtered;
  filtered.resize((stride + 1) * image.height);
  for (int y = 0; y < image.height; ++y) {
    const uint8_t* row = image.pixels.data() + stride * y;
    const uint8_t* up = y > 0 ? row - stride : nullptr;
    uint8_t* dst = reinterpret_cast<uint8_t*>(&filtered[(stride + 1) * y]);
    dst[0] = 4;  // Paeth
    for (size_t i = 0; i < stride; ++i) {
      int a = i >= static_cast<size_t>(bpp) ? row[i - bpp] : 0;
      int b = up ? up[i] : 0;
      int c = (up && i >= static_cast<size_t>(bpp)) ? up[i - bpp] : 0;
      int p = a + b - c;
      int pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
      int pred = (pa <= pb && pa <= pc) ? a : (pb <= pc ? b : c);
      dst[1 + i] = static_cast<uint8_t>(row[i] - pred);
    }
  }
  uLongf packed_size = compressBound(static_cast<uLong>(filtered.size()));
  std::string packed(packed_size, '\0');
  if (compress2(reinterpret_cast<Bytef*>(&packed[0]), &packed_size,
                reinterpret_cast<const Bytef*>(filtered.data()),
                static_cast<uLong>(filtered.size()), std::clamp(compression, 0, 9)) != Z_OK) {
    throw Error("PNG encoding failed (zlib)");
  }
  packed.resize(packed_size);

  std::string out("\x89PNG\r\n\x1a\n", 8);
  auto put32 = [](std::string& s, uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8)
      s.push_back(static_cast<char>((v >> shift) & 0xff));
  };
  auto chunk = [&](const char* type, const std::string& data) {
    put32(out, static_cast<uint32_t>(data.size()));
    std::string body = std::string(type, 4) + data;
    out += body;
    put32(out, static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(body.data()),
                                           static_cast<uInt>(body.size()))));
  };
  static const uint8_t kColourType[5] = {0, 0, 4, 2, 6};  // grey, grey+alpha, RGB, RGBA
  std::string ihdr;
  put32(ihdr, static_cast<uint32_t>(image.width));
  put32(ihdr, static_cast<uint32_t>(image.height));
  ihdr += std::string{char(8), char(kColourType[image.channels]), 0, 0, 0};
  chunk("IHDR", ihdr);
  chunk("IDAT", packed);
  chunk("IEND", "");
  return out;
}

void save_png(const std::string& path, const Image& image, int compression) {
  std::string bytes = encode_png(image, compression);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw Error("cannot write " + path);
}

void save_jpeg(const std::string& path, const Image& image, int quality) {
  std::string bytes;
  if (!stbi_write_jpg_to_func(append_to_string, &bytes, image.width, image.height, image.channels,
                              image.pixels.data(), std::clamp(quality, 1, 100))) {
    throw Error("JPEG encoding failed for " + path);
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw Error("cannot write " + path);
}

}  // namespace mixnas::data
