// The checkpoint reader and writer: refused corrupted and truncated files, resume checks naming
// both sides, weights or losses holding NaN never saved, writes that fail keep the previous file.
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "core/atomic_file.h"
#include "core/error.h"
#include "supernet/checkpoint.h"
#include "supernet/loss.h"
#include "supernet/model.h"

// After LibTorch: glog defines its own CHECK, Catch2 must win.
#undef CHECK
#include <catch2/catch.hpp>

using namespace mixnas;
using namespace mixnas::supernet;
namespace fs = std::filesystem;
using Catch::Matchers::Contains;

namespace {

const std::string kModels = std::string(MIXNAS_SOURCE_DIR) + "/configs/models/";

fs::path temp_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() /
               ("mixnas_test_checkpoint_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

std::vector<std::string> class_names(int n) {
  std::vector<std::string> names;
  for (int i = 0; i < n; ++i) names.push_back("class" + std::to_string(i));
  return names;
}

YoloModel pico(int nc) {
  BuildOptions options;
  options.nc = nc;
  return build_model(kModels + "yolov8-pico.yaml", options);
}

void save(const YoloModel& model, int nc, const std::string& path) {
  torch::serialize::OutputArchive archive;
  write_checkpoint_model(archive, model, nullptr, class_names(nc));
  save_archive(archive, path);
}

// The middle of the largest record's data (a weight): between two local headers, past the first
// one's name and extra field (where the alignment padding lives, which no CRC covers).
size_t inside_largest_record(const std::string& bytes) {
  const std::string magic("PK\x03\x04", 4);
  std::vector<size_t> headers;
  for (size_t at = bytes.find(magic); at != std::string::npos; at = bytes.find(magic, at + 1))
    headers.push_back(at);
  size_t best_start = 0, best_size = 0;
  for (size_t i = 0; i + 1 < headers.size(); ++i) {
    const auto u16 = [&](size_t at) {
      return static_cast<size_t>(static_cast<unsigned char>(bytes[at])) |
             static_cast<size_t>(static_cast<unsigned char>(bytes[at + 1])) << 8;
    };
    const size_t data = headers[i] + 30 + u16(headers[i] + 26) + u16(headers[i] + 28);
    if (headers[i + 1] > data && headers[i + 1] - data > best_size)
      best_start = data, best_size = headers[i + 1] - data;
  }
  REQUIRE(best_size > 64);
  return best_start + best_size / 2;
}

int in_child(const std::function<int()>& body) {
  const pid_t pid = ::fork();
  if (pid == 0) ::_exit(body());
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace

TEST_CASE("a checkpoint with a flipped byte in a weight is refused, naming the file",
          "[checkpoint]") {
  const fs::path dir = temp_dir("flip");
  const std::string path = (dir / "best.pt").string();
  save(pico(3), 3, path);
  REQUIRE_NOTHROW(load_trained_model(path));
  std::string bytes = read_file(path);
  bytes[inside_largest_record(bytes)] ^= 0x10;
  write_file_atomic(path, bytes);
  CHECK_THROWS_WITH(load_trained_model(path),
                    Contains(path) && Contains("corrupted") && Contains("checksum"));
  fs::remove_all(dir);
}

TEST_CASE("a truncated checkpoint is refused, naming the file", "[checkpoint]") {
  const fs::path dir = temp_dir("truncated");
  const std::string path = (dir / "last.pt").string();
  save(pico(3), 3, path);
  const std::string bytes = read_file(path);
  for (size_t keep : {bytes.size() / 2, bytes.size() - 10, size_t{0}}) {
    write_file_atomic(path, bytes.substr(0, keep));
    torch::serialize::InputArchive archive;
    CHECK_THROWS_WITH(open_archive(archive, path),
                      Contains(path) && Contains("not a readable") && Contains("truncated"));
  }
  fs::remove_all(dir);
}

TEST_CASE("resume checks format, class count and model, naming both sides", "[checkpoint]") {
  const fs::path dir = temp_dir("resume");
  const std::string path = (dir / "last.pt").string();
  save(pico(3), 3, path);
  torch::serialize::InputArchive archive;
  open_archive(archive, path);
  CHECK_NOTHROW(check_resumable(archive, path, pico(3), class_names(3)));

  CHECK_THROWS_WITH(check_resumable(archive, path, pico(5), class_names(5)),
                    Contains(path) && Contains("trained for 3 classes (class0, class1, class2)") &&
                        Contains("the config gives 5"));
  BuildOptions v5;
  v5.nc = 3;
  CHECK_THROWS_WITH(
      check_resumable(archive, path, build_model(kModels + "yolov5n.yaml", v5), class_names(3)),
      Contains(path) && Contains("yolov8-pico.yaml (scale ''") && Contains("the config gives ") &&
          Contains("yolov5") && Contains("scale 'n'"));

  // Same model YAML, another bit-width at one site: another model.
  YoloModel quantized = pico(3);
  ArchChoices choices = quantized->argmax_choices();
  choices.begin()->second.w_bits = 4;
  ArchFile arch = parse_arch_yaml(arch_yaml_text(quantized, choices), "q.yaml");
  CHECK_THROWS_WITH(check_resumable(archive, path, build_from_arch(arch), class_names(3)),
                    Contains("model hash"));

  torch::serialize::OutputArchive plain;
  pico(3)->save(plain);
  save_archive(plain, path);
  torch::serialize::InputArchive untagged;
  open_archive(untagged, path);
  CHECK_THROWS_WITH(check_resumable(untagged, path, pico(3), class_names(3)),
                    Contains(path) && Contains("format 'none'") && Contains(kCheckpointFormat));
  fs::remove_all(dir);
}

TEST_CASE("weights of another class count are refused on resume, not silently reshaped",
          "[checkpoint]") {
  const fs::path dir = temp_dir("reshape");
  const std::string path = (dir / "last.pt").string();
  save(pico(3), 3, path);
  torch::serialize::InputArchive archive;
  open_archive(archive, path);
  YoloModel other = pico(5);
  CHECK_THROWS_WITH(load_weights(archive, "model", other, path),
                    Contains(path) && Contains("holds shape"));
  fs::remove_all(dir);
}

TEST_CASE("weights holding NaN or Inf never reach a checkpoint", "[checkpoint]") {
  const fs::path dir = temp_dir("nan");
  const std::string path = (dir / "last.pt").string();
  YoloModel model = pico(3);
  save(model, 3, path);
  const std::string before = read_file(path);
  {
    torch::NoGradGuard no_grad;
    model->parameters()[5].view(-1)[0] = std::nan("");
  }
  CHECK_THROWS_WITH(save(model, 3, path), Contains("NaN or Inf") && Contains("not saved"));
  CHECK(read_file(path) == before);

  LossItems items{
      torch::tensor(std::nan("")), torch::tensor(1.0), torch::tensor(2.0), torch::tensor(3.0), {}};
  CHECK_THROWS_WITH(require_finite_loss(items, "epoch 2/3, batch 4/6"),
                    Contains("epoch 2/3, batch 4/6: the training loss is nan"));
  items.total = torch::tensor(INFINITY);
  CHECK_THROWS_WITH(require_finite_loss(items, "step 1"), Contains("is inf"));
  items.distill = torch::tensor(INFINITY);
  CHECK_THROWS_WITH(require_finite_loss(items, "step 1"), Contains("dfl/obj=3 distill=inf)"));
  items.total = torch::tensor(0.5);
  CHECK_NOTHROW(require_finite_loss(items, "step 1"));
  fs::remove_all(dir);
}

TEST_CASE("a checkpoint write beyond the file size limit fails cleanly and keeps the old file",
          "[checkpoint]") {
  const fs::path dir = temp_dir("efbig");
  const std::string path = (dir / "last.pt").string();
  write_file_atomic(path, std::string("previous"));
  YoloModel model = pico(3);
  // In a child: LibTorch's own writer aborts the process on a failed write (exit 134 before).
  const int status = in_child([&] {
    ::signal(SIGXFSZ, SIG_IGN);
    rlimit limit{64 << 10, 64 << 10};
    if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) return 10;
    try {
      save(model, 3, path);
      return 11;
    } catch (const Error& e) {
      const std::string what = e.what();
      return what.find(path) != std::string::npos &&
                     what.find("File too large") != std::string::npos
                 ? 0
                 : 12;
    }
  });
  CHECK(status == 0);
  CHECK(read_file(path) == "previous");
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(dir)) files.push_back(e.path().filename().string());
  CHECK(files == std::vector<std::string>{"last.pt"});
  fs::remove_all(dir);
}
