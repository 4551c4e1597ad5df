#pragma once
// Outputs and checkpoints are written atomically: to a temporary file in the same folder, flushed
// to disk, then renamed over the target. A crash leaves either the old file or the new one.
#include <functional>
#include <ostream>
#include <string>

namespace mixnas {

// Writes `bytes` to `path` atomically. Throws mixnas::Error naming the path on failure.
void write_file_atomic(const std::string& path, const std::string& bytes);

// Calls `writer` with a stream to a temporary file, then renames it to `path`. If `writer` throws,
// the temporary file is removed and `path` is untouched.
void write_file_atomic(const std::string& path, const std::function<void(std::ostream&)>& writer);

// Reads a whole file. Throws mixnas::Error naming the path when it cannot be read.
std::string read_file(const std::string& path);

}  // namespace mixnas
