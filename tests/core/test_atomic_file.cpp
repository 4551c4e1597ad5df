#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <stdexcept>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/run_dir.h"

using namespace mixnas;
namespace fs = std::filesystem;

namespace {
fs::path fresh_dir(const std::string& name) {
  fs::path dir =
      fs::temp_directory_path() / ("mixnas_test_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}
}  // namespace

TEST_CASE("atomic write replaces the file and leaves no temporary", "[core]") {
  fs::path dir = fresh_dir("atomic");
  std::string path = (dir / "sub" / "out.txt").string();
  write_file_atomic(path, std::string("first"));
  CHECK(read_file(path) == "first");
  write_file_atomic(path, std::string("second"));
  CHECK(read_file(path) == "second");
  int files = 0;
  for (auto& e : fs::directory_iterator(dir / "sub")) {
    (void)e;
    ++files;
  }
  CHECK(files == 1);
  fs::remove_all(dir);
}

TEST_CASE("a writer that throws keeps the old file", "[core]") {
  fs::path dir = fresh_dir("atomic_throw");
  std::string path = (dir / "ckpt.bin").string();
  write_file_atomic(path, std::string("good"));
  CHECK_THROWS_AS(write_file_atomic(path,
                                    [](std::ostream& out) {
                                      out << "half written";
                                      throw std::runtime_error("crash mid-write");
                                    }),
                  std::runtime_error);
  CHECK(read_file(path) == "good");
  int files = 0;
  for (auto& e : fs::directory_iterator(dir)) {
    (void)e;
    ++files;
  }
  CHECK(files == 1);
  fs::remove_all(dir);
}

TEST_CASE("reading a missing file names it", "[core]") {
  try {
    read_file("/nonexistent/mixnas/file.yaml");
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("/nonexistent/mixnas/file.yaml") != std::string::npos);
  }
}

TEST_CASE("run folders number exp, exp2, exp3 unless exist_ok", "[core]") {
  fs::path root = fresh_dir("runs");
  CHECK(make_run_dir("train", "exp", false, root.string()) == (root / "train" / "exp").string());
  CHECK(make_run_dir("train", "exp", false, root.string()) == (root / "train" / "exp2").string());
  CHECK(make_run_dir("train", "exp", false, root.string()) == (root / "train" / "exp3").string());
  CHECK(make_run_dir("train", "exp", true, root.string()) == (root / "train" / "exp").string());
  CHECK_THROWS_AS(make_run_dir("train", "../escape", false, root.string()), Error);
  fs::remove_all(root);
}
