#include "supernet/zip_check.h"

#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>

#include "core/error.h"

namespace mixnas::supernet {

namespace {
constexpr uint32_t kEndOfDirectory = 0x06054b50;
constexpr uint32_t kZip64Locator = 0x07064b50;
constexpr uint32_t kZip64EndOfDirectory = 0x06064b50;
constexpr uint32_t kDirectoryEntry = 0x02014b50;
constexpr uint32_t kLocalHeader = 0x04034b50;
constexpr uint16_t kZip64Extra = 0x0001;
constexpr size_t kEndOfDirectorySize = 22;

// Little-endian reads that throw instead of reading past the end.
struct Reader {
  const std::string& bytes;
  const std::string& path;
  uint64_t le(uint64_t at, int size) const {
    if (at > bytes.size() || static_cast<uint64_t>(size) > bytes.size() - at) truncated();
    uint64_t v = 0;
    for (int i = size - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(bytes[at + i]);
    return v;
  }
  [[noreturn]] void truncated() const {
    throw Error(path +
                ": not a readable archive: truncated, or not a LibTorch file (its zip directory "
                "is missing or incomplete); take an earlier copy or train again");
  }
};

struct Directory {
  uint64_t offset = 0, entries = 0;
};

Directory find_directory(const Reader& r) {
  const std::string& b = r.bytes;
  if (b.size() < kEndOfDirectorySize) r.truncated();
  const uint64_t lowest =
      b.size() > 65535 + kEndOfDirectorySize ? b.size() - 65535 - kEndOfDirectorySize : 0;
  for (uint64_t at = b.size() - kEndOfDirectorySize + 1; at-- > lowest;) {
    if (r.le(at, 4) != kEndOfDirectory) continue;
    Directory d{r.le(at + 16, 4), r.le(at + 10, 2)};
    if (at >= 20 && r.le(at - 20, 4) == kZip64Locator) {
      const uint64_t z = r.le(at - 12, 8);
      if (r.le(z, 4) != kZip64EndOfDirectory) r.truncated();
      d = {r.le(z + 48, 8), r.le(z + 32, 8)};
    }
    return d;
  }
  r.truncated();
}

// A record of the directory: where its data is, its sizes and CRC, from the ZIP64 extra field
// where the 32-bit fields hold 0xFFFFFFFF.
struct Record {
  std::string name;
  uint32_t crc = 0;
  uint16_t method = 0;
  uint64_t size = 0, stored_size = 0, header = 0;
};

Record read_record(const Reader& r, uint64_t& at) {
  if (r.le(at, 4) != kDirectoryEntry) r.truncated();
  Record rec;
  rec.method = static_cast<uint16_t>(r.le(at + 10, 2));
  rec.crc = static_cast<uint32_t>(r.le(at + 16, 4));
  rec.stored_size = r.le(at + 20, 4);
  rec.size = r.le(at + 24, 4);
  const uint64_t name_len = r.le(at + 28, 2), extra_len = r.le(at + 30, 2);
  rec.header = r.le(at + 42, 4);
  if (at + 46 + name_len > r.bytes.size()) r.truncated();
  rec.name = r.bytes.substr(at + 46, name_len);
  for (uint64_t e = at + 46 + name_len; e + 4 <= at + 46 + name_len + extra_len;) {
    const uint64_t id = r.le(e, 2), len = r.le(e + 2, 2);
    uint64_t f = e + 4;
    if (id == kZip64Extra) {
      for (uint64_t* field : {&rec.size, &rec.stored_size, &rec.header}) {
        if (*field != 0xFFFFFFFFu) continue;
        *field = r.le(f, 8);
        f += 8;
      }
    }
    e += 4 + len;
  }
  at += 46 + name_len + extra_len + r.le(at + 32, 2);
  return rec;
}

void check_record(const Reader& r, const Record& rec) {
  if (r.le(rec.header, 4) != kLocalHeader) r.truncated();
  const uint64_t data = rec.header + 30 + r.le(rec.header + 26, 2) + r.le(rec.header + 28, 2);
  if (data > r.bytes.size() || rec.stored_size > r.bytes.size() - data) r.truncated();
  if (rec.method != 0) return;  // compressed (LibTorch stores): bounds only
  uint64_t crc = crc32(0L, Z_NULL, 0);
  for (uint64_t done = 0; done < rec.stored_size;) {
    const uInt n = static_cast<uInt>(std::min<uint64_t>(rec.stored_size - done, 1u << 30));
    crc = crc32(crc, reinterpret_cast<const Bytef*>(r.bytes.data() + data + done), n);
    done += n;
  }
  if (rec.size != rec.stored_size || crc != rec.crc) {
    char detail[96];
    std::snprintf(detail, sizeof detail, "CRC-32 %08x, stored %08x", static_cast<unsigned>(crc),
                  rec.crc);
    throw Error(r.path + ": corrupted: its record '" + rec.name + "' fails its checksum (" +
                detail + "); the file cannot be used: take an earlier copy or train again");
  }
}
}  // namespace

void check_zip_records(const std::string& bytes, const std::string& path) {
  const Reader r{bytes, path};
  const Directory d = find_directory(r);
  uint64_t at = d.offset;
  for (uint64_t i = 0; i < d.entries; ++i) check_record(r, read_record(r, at));
}

}  // namespace mixnas::supernet
