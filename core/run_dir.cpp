#include "core/run_dir.h"

#include <filesystem>

#include "core/error.h"

namespace mixnas {
namespace fs = std::filesystem;

std::string make_run_dir(const std::string& command, const std::string& name, bool exist_ok,
                         const std::string& runs_root) {
  if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..") {
    throw Error("run name '" + name + "' must be a plain folder name (no '/')");
  }
  fs::path parent = fs::path(runs_root) / command;
  std::error_code ec;
  fs::create_directories(parent, ec);
  if (ec) throw Error("cannot create " + parent.string() + ": " + ec.message());
  fs::path dir = parent / name;
  if (!exist_ok) {
    // create_directory is atomic: two runs started together get different folders.
    for (int n = 2; !fs::create_directory(dir, ec); ++n) {
      if (ec) throw Error("cannot create " + dir.string() + ": " + ec.message());
      dir = parent / (name + std::to_string(n));
    }
  } else {
    fs::create_directories(dir, ec);
    if (ec) throw Error("cannot create " + dir.string() + ": " + ec.message());
  }
  return dir.string();
}

bool remove_unused_run_dir(const std::string& dir) {
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (it->is_directory(ec)) continue;
    if (it.depth() > 0 || it->path().filename() != "args.yaml") return false;
  }
  if (ec) return false;
  return fs::remove_all(dir, ec) > 0 && !ec;
}

}  // namespace mixnas
