#include "core/atomic_file.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "core/error.h"
#include "core/log.h"

namespace mixnas {
namespace fs = std::filesystem;

namespace {
constexpr const char* kTempMarker = ".tmp.";

std::string temp_name_for(const std::string& path) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  char suffix[40];
  std::snprintf(suffix, sizeof suffix, "%s%d.%08llx", kTempMarker, static_cast<int>(getpid()),
                static_cast<unsigned long long>(rng() & 0xffffffffULL));
  return path + suffix;
}

// The pid in a temporary's name `<name>.tmp.<pid>.<8 hex>`, or -1 when `name` is not one.
long temp_owner(const std::string& name) {
  const size_t at = name.rfind(kTempMarker);
  if (at == std::string::npos || at == 0) return -1;
  const std::string rest = name.substr(at + std::strlen(kTempMarker));
  const size_t dot = rest.find('.');
  if (dot == 0 || dot == std::string::npos || rest.size() - dot - 1 != 8) return -1;
  for (size_t i = 0; i < rest.size(); ++i) {
    const bool ok = i < dot ? std::isdigit(static_cast<unsigned char>(rest[i]))
                            : i == dot || std::isxdigit(static_cast<unsigned char>(rest[i]));
    if (!ok) return -1;
  }
  return dot > 9 ? -1 : std::stol(rest.substr(0, dot));
}

// What went wrong and what to do; the old file is kept in every case.
std::string write_error(const std::string& path, int err) {
  std::string hint;
  if (err == ENOSPC || err == EDQUOT) hint = "; free space on its disk and run again";
  if (err == EFBIG) hint = "; the file size limit (ulimit -f) is below the file's size";
  return "cannot write " + path + ": " + std::strerror(err) + hint + " (the previous file is kept)";
}

void write_all(int fd, const std::string& bytes, const std::string& path) {
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw Error(write_error(path, errno));
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 && errno != EINVAL) throw Error(write_error(path, errno));
}

void fsync_folder(const fs::path& folder) {
  int fd = ::open(folder.empty() ? "." : folder.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}
}  // namespace

void write_file_atomic(const std::string& path, const std::string& bytes) {
  const fs::path target(path);
  if (target.has_parent_path()) {
    std::error_code ec;
    fs::create_directories(target.parent_path(), ec);
    if (ec)
      throw Error("cannot create folder " + target.parent_path().string() + ": " + ec.message());
  }
  const std::string tmp = temp_name_for(path);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  if (fd < 0) throw Error(write_error(path, errno));
  try {
    write_all(fd, bytes, path);
  } catch (...) {
    ::close(fd);
    std::remove(tmp.c_str());
    throw;
  }
  if (::close(fd) != 0) {
    const int err = errno;
    std::remove(tmp.c_str());
    throw Error(write_error(path, err));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    std::remove(tmp.c_str());
    throw Error("cannot rename " + tmp + " to " + path + ": " + std::strerror(err));
  }
  fsync_folder(target.parent_path());
}

void write_file_atomic(const std::string& path, const std::function<void(std::ostream&)>& writer) {
  std::ostringstream buffer(std::ios::binary);
  writer(buffer);
  write_file_atomic(path, std::move(buffer).str());
}

std::vector<std::string> remove_stale_temporaries(const std::string& folder) {
  std::vector<std::string> removed;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(folder, ec)) {
    const long pid = temp_owner(entry.path().filename().string());
    if (pid <= 0 || pid == static_cast<long>(getpid())) continue;
    if (::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;  // its writer runs
    std::error_code rm;
    if (!fs::remove(entry.path(), rm)) continue;
    log::info("removed ", entry.path().string(), " (the temporary of an interrupted write)");
    removed.push_back(entry.path().string());
  }
  return removed;
}

std::string read_file(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec))
    throw Error("cannot read " + path + ": it is a folder, not a file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read " + path + ": " + std::strerror(errno));
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad()) throw Error("error while reading " + path);
  return buf.str();
}

}  // namespace mixnas
