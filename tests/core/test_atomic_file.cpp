#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

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

std::vector<std::string> names_in(const fs::path& dir) {
  std::vector<std::string> names;
  for (auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// Runs `body` in a child process (which may change its limits) and returns its exit status.
int in_child(const std::function<int()>& body) {
  const pid_t pid = ::fork();
  if (pid == 0) ::_exit(body());
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
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

TEST_CASE("a write beyond the file size limit fails, names the cause and keeps the old file",
          "[core]") {
  fs::path dir = fresh_dir("atomic_efbig");
  const std::string path = (dir / "last.pt").string();
  write_file_atomic(path, std::string("previous"));
  // In a child: the limit (ulimit -f) would stay for the rest of this test program.
  const int status = in_child([&] {
    ::signal(SIGXFSZ, SIG_IGN);
    rlimit limit{8192, 8192};
    if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) return 10;
    try {
      write_file_atomic(path, std::string(1 << 20, 'x'));
      return 11;  // no error
    } catch (const Error& e) {
      const std::string what = e.what();
      if (what.find(path) == std::string::npos) return 12;
      if (what.find("File too large") == std::string::npos) return 13;
      if (what.find("previous file is kept") == std::string::npos) return 14;
    }
    return 0;
  });
  CHECK(status == 0);
  CHECK(read_file(path) == "previous");
  CHECK(names_in(dir) == std::vector<std::string>{"last.pt"});
  fs::remove_all(dir);
}

TEST_CASE("stale temporaries of dead writers are removed, live ones and other files kept",
          "[core]") {
  fs::path dir = fresh_dir("atomic_stale");
  const pid_t dead = ::fork();
  if (dead == 0) ::_exit(0);
  REQUIRE(dead > 0);
  ::waitpid(dead, nullptr, 0);  // reaped: no process has this pid now
  const std::string stale = "last.pt.tmp." + std::to_string(dead) + ".0123abcd";
  const std::string live = "best.pt.tmp." + std::to_string(::getppid()) + ".89abcdef";
  for (const std::string& name : {stale, live, std::string("notes.tmp.txt"), std::string("a.pt")})
    std::ofstream(dir / name) << "x";
  const std::vector<std::string> removed = remove_stale_temporaries(dir.string());
  CHECK(removed == std::vector<std::string>{(dir / stale).string()});
  CHECK(names_in(dir) == std::vector<std::string>{"a.pt", live, "notes.tmp.txt"});
  CHECK(remove_stale_temporaries((dir / "missing").string()).empty());
  fs::remove_all(dir);
}

TEST_CASE("reading a folder as a file is an error naming it", "[core]") {
  fs::path dir = fresh_dir("read_folder");
  try {
    read_file(dir.string());
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("is a folder") != std::string::npos);
  }
  fs::remove_all(dir);
}

TEST_CASE("a run folder holding only args.yaml is removed, one with results kept", "[core]") {
  fs::path root = fresh_dir("unused_runs");
  const std::string failed = make_run_dir("search", "exp", false, root.string());
  write_file_atomic(failed + "/args.yaml", std::string("name: exp\n"));
  fs::create_directories(failed + "/weights");  // empty folders count as nothing
  CHECK(remove_unused_run_dir(failed));
  CHECK_FALSE(fs::exists(failed));
  CHECK(make_run_dir("search", "exp", false, root.string()) == failed);  // not exp2

  write_file_atomic(failed + "/args.yaml", std::string("name: exp\n"));
  write_file_atomic(failed + "/weights/last.pt", std::string("weights"));
  CHECK_FALSE(remove_unused_run_dir(failed));
  CHECK(fs::exists(failed + "/weights/last.pt"));
  CHECK_FALSE(remove_unused_run_dir((root / "missing").string()));
  fs::remove_all(root);
}
