// Load test of the mixnas-agent binary on loopback: 50 clients mixing every kind of request for
// 20 s, plus 16 slow clients sending one header byte per second (each reconnects once dropped).
// Asserts no error other than 503, /v1/health answered throughout, the agent's resident set
// steady (growth after a warm-up under 5 MB), and every slow connection dropped within the read
// timeout. Prints last:
//   AGENT requests=<n> errors_non503=<n> health_p99_ms=<x> rss_growth_kb=<n>
//   slow_clients_dropped=<n>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include <httplib.h>

#include "deploy/runtime/package.h"
#include "evaluators/layer_graph.h"
#include "tests/agent/agent_test_util.h"

using namespace mixnas;
using namespace mixnas::agent;
using namespace mixnas::eval;
using namespace mixnas::agent::testing;
using Clock = std::chrono::steady_clock;

namespace {

const char* kToken = "load-token-3456";
constexpr int kReadTimeoutS = 2;

// The agent as a child process; its port read from the line it prints when listening.
struct AgentProcess {
  pid_t pid = -1;
  int port = -1;

  explicit AgentProcess(const std::string& token_file) {
    int out[2];
    REQUIRE(pipe(out) == 0);
    pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      dup2(out[1], 1);
      int null = open("/dev/null", O_WRONLY);
      dup2(null, 2);
      // MIXNAS_AGENT_BINARY in the environment tests another build (e.g. an older one).
      const char* env = std::getenv("MIXNAS_AGENT_BINARY");
      const char* binary = env ? env : MIXNAS_AGENT_BINARY;
      execl(binary, binary, "--token-file", token_file.c_str(), "--port", "0", "--read-timeout",
            std::to_string(kReadTimeoutS).c_str(), "--max-body-mb", "1",
            static_cast<char*>(nullptr));
      _exit(127);
    }
    close(out[1]);
    std::string line;
    char c;
    while (read(out[0], &c, 1) == 1 && c != '\n') line += c;
    close(out[0]);
    auto at = line.find("127.0.0.1:");
    REQUIRE(at != std::string::npos);
    port = std::atoi(line.c_str() + at + 10);
    REQUIRE(port > 0);
  }
  int64_t rss_kb() const {
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(status, line)) {
      if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
    }
    return -1;
  }
  // SIGTERM; the exit status (0 = stopped cleanly).
  int stop() {
    kill(pid, SIGTERM);
    int status = 0;
    waitpid(pid, &status, 0);
    pid = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  ~AgentProcess() {
    if (pid > 0) stop();
  }
};

struct Stats {
  std::mutex mutex;
  std::vector<double> health_ms;
  int64_t requests = 0, errors_non503 = 0, busy = 0;
  int64_t slow_dropped = 0, slow_late = 0;
  std::vector<std::string> error_samples;

  void record(bool ok, int status, const std::string& what) {
    std::lock_guard<std::mutex> lock(mutex);
    ++requests;
    busy += status == 503;
    if (!ok && status != 503) {
      ++errors_non503;
      if (error_samples.size() < 5) error_samples.push_back(what + " -> " + std::to_string(status));
    }
  }
};

LayerSignature small_layer() {
  LayerSignature s;
  s.in_h = s.in_w = 10;
  s.in_c = s.out_c = 8;
  s.kernel = 3;
  return s;
}

// One request of kind `kind` (0-3 health, 4 info, 5 layers, 6 benchmark, 7 wrong token, 8 an
// unknown endpoint, 9 malformed JSON), recorded with whether its status is the expected one.
void one_request(int port, int kind, const std::string& package, Stats& stats) {
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(30, 0);
  httplib::Headers auth = {{"Authorization", std::string("Bearer ") + kToken}};
  nlohmann::json layers = {{"layers", {small_layer().to_json()}},
                           {"options", {{"runs", 2}, {"warmup", 0}}}};
  int expected = kind == 7 ? 401 : kind == 8 ? 404 : kind == 9 ? 400 : 200;
  const char* what = kind <= 3   ? "health"
                     : kind == 4 ? "info"
                     : kind == 5 ? "layers"
                     : kind == 6 ? "benchmark"
                     : kind == 7 ? "wrong token"
                     : kind == 8 ? "404"
                                 : "bad json";
  auto t0 = Clock::now();
  httplib::Result r = [&] {
    switch (kind) {
      case 4:
        return c.Get("/v1/info", auth);
      case 5:
        return c.Post("/v1/layers", auth, layers.dump(), "application/json");
      case 6:
        return c.Post("/v1/benchmark?runs=2&warmup=0", auth, package, "application/octet-stream");
      case 7:
        return c.Get("/v1/info", {{"Authorization", "Bearer x"}});
      case 8:
        return c.Get("/v1/none", auth);
      case 9:
        return c.Post("/v1/layers", auth, "{\"layers\": [", "application/json");
      default:
        return c.Get("/v1/health");
    }
  }();
  double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  int status = r ? r->status : 0;
  if (kind <= 3) {
    std::lock_guard<std::mutex> lock(stats.mutex);
    stats.health_ms.push_back(status == 200 ? ms : 1e9);  // a failed health is off the scale
  }
  stats.record(status == expected, status, what);
  if (status == 503) std::this_thread::sleep_for(std::chrono::milliseconds(20));
}

// Connects and sends one header byte per second until the agent drops the connection.
void slow_client(int port, Clock::time_point end, Stats& stats) {
  const std::string head =
      "GET /v1/health HTTP/1.1\r\nHost: slow\r\nX-Padding: aaaaaaaaaaaaaaaa\r\n\r\n";
  while (Clock::now() < end) {
    int fd = connect_loopback(port);
    if (fd < 0) {
      std::lock_guard<std::mutex> lock(stats.mutex);
      ++stats.slow_late;  // not even accepted
      continue;
    }
    auto t0 = Clock::now();
    bool dropped = false;
    for (size_t i = 0; i < head.size() && !dropped; ++i) {
      if (!send_all(fd, head.substr(i, 1)))
        dropped = true;
      else
        dropped = wait_closed(fd, 1000);
      if (Clock::now() - t0 > std::chrono::seconds(kReadTimeoutS + 5)) break;
    }
    double s = std::chrono::duration<double>(Clock::now() - t0).count();
    close(fd);
    std::lock_guard<std::mutex> lock(stats.mutex);
    if (dropped && s <= kReadTimeoutS + 1.0)
      ++stats.slow_dropped;
    else if (Clock::now() < end)
      ++stats.slow_late;  // (one cut by the end of the run is fine)
  }
}

void run_load(int port, double seconds, const std::string& package, Stats& stats) {
  auto end = Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
  std::vector<std::thread> threads;
  for (int i = 0; i < 50; ++i) {
    threads.emplace_back([&, i] {
      std::mt19937 rng(static_cast<unsigned>(i));
      while (Clock::now() < end) {
        one_request(port, static_cast<int>(rng() % 10), package, stats);
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    });
  }
  for (int i = 0; i < 16; ++i) threads.emplace_back([&] { slow_client(port, end, stats); });
  for (auto& t : threads) t.join();
}

double p99(std::vector<double> v) {
  if (v.empty()) return 1e9;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(0.99 * static_cast<double>(v.size())))];
}

}  // namespace

TEST_CASE("agent under load: 50 mixed clients and 16 slow ones for 20 s", "[agent][load]") {
  char dir[] = "/tmp/mixnas_load_XXXXXX";
  REQUIRE(mkdtemp(dir) != nullptr);
  std::string token_file = std::string(dir) + "/token";
  { std::ofstream(token_file) << kToken << "\n"; }
  chmod(token_file.c_str(), 0600);
  std::string package = rt::serialize_package(build_layer_graph(small_layer()));

  AgentProcess agent(token_file);
  Stats warm;
  run_load(agent.port, 3, package, warm);  // thread stacks, allocator arenas, kernel plans
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  int64_t rss_before = agent.rss_kb();
  Stats stats;
  run_load(agent.port, 20, package, stats);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // slow connections closed
  int64_t rss_growth = agent.rss_kb() - rss_before;
  CHECK(agent.stop() == 0);
  std::remove(token_file.c_str());
  rmdir(dir);

  double health_p99 = p99(stats.health_ms);
  for (const auto& e : stats.error_samples) UNSCOPED_INFO("error: " << e);
  CHECK(stats.errors_non503 == 0);
  CHECK(health_p99 < 1000);
  CHECK(rss_growth < 5 * 1024);
  CHECK(stats.slow_late == 0);
  CHECK(stats.slow_dropped >= 16);
  CHECK(stats.requests > 1000);
  std::printf("AGENT busy_503=%lld health_requests=%zu\n", static_cast<long long>(stats.busy),
              stats.health_ms.size());
  std::printf(
      "AGENT requests=%lld errors_non503=%lld health_p99_ms=%.1f rss_growth_kb=%lld "
      "slow_clients_dropped=%lld\n",
      static_cast<long long>(stats.requests), static_cast<long long>(stats.errors_non503),
      health_p99, static_cast<long long>(rss_growth), static_cast<long long>(stats.slow_dropped));
}
