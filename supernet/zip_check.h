#pragma once
// The integrity check of LibTorch archives (zip files, ZIP64, records stored uncompressed):
// LibTorch's own reader skips the CRC-32 of every record, so a flipped byte in a weight loads as
// a wrong weight. Used by open_archive (supernet/checkpoint.h).
#include <string>

namespace mixnas::supernet {

// Throws mixnas::Error naming `path` when `bytes` are not a complete zip archive (truncated: no
// directory at the end, or a record reaching past the end) or a record's CRC-32 differs from the
// one stored for it. Records stored compressed are checked for bounds only.
void check_zip_records(const std::string& bytes, const std::string& path);

}  // namespace mixnas::supernet
