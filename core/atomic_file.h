#pragma once
// Outputs and checkpoints are written atomically: to a temporary file in the same folder
// (`<name>.tmp.<pid>.<random>`), flushed to disk, then renamed over the target. A crash leaves
// either the old file or the new one, plus at most a temporary that remove_stale_temporaries
// clears on the next start. A write that fails (disk full, file size limit) throws, removes its
// temporary and keeps the old file. Processes that write files should ignore SIGXFSZ (mixnas does,
// in main) so that a file size limit is an error here, not a silent death.
#include <functional>
#include <ostream>
#include <string>
#include <vector>

namespace mixnas {

// Writes `bytes` to `path` atomically. Throws mixnas::Error naming the path and the cause.
void write_file_atomic(const std::string& path, const std::string& bytes);

// Calls `writer` with a stream to a memory buffer, then writes it as above. If `writer` throws,
// nothing is written and `path` is untouched.
void write_file_atomic(const std::string& path, const std::function<void(std::ostream&)>& writer);

// Removes, in `folder`, the temporaries of write_file_atomic left by processes that no longer run
// (killed during a write), logging each. Returns their paths. A missing folder holds none.
std::vector<std::string> remove_stale_temporaries(const std::string& folder);

// Reads a whole file. Throws mixnas::Error naming the path when it cannot be read (also when it is
// a folder).
std::string read_file(const std::string& path);

}  // namespace mixnas
