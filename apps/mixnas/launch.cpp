#include "apps/mixnas/launch.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "core/log.h"
#include "core/run_dir.h"
#include "training/distributed.h"

namespace mixnas::cli {
namespace {

// This process's command line, as the kernel keeps it (NUL-separated words).
std::vector<std::string> command_line() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::vector<std::string> words;
  for (std::string word; std::getline(in, word, '\0');) words.push_back(word);
  if (words.empty()) throw Error("--nproc: cannot read /proc/self/cmdline");
  return words;
}

// A TCP port free on this machine now (the rendezvous of a local job), unless MASTER_PORT says.
int rendezvous_port() {
  if (const char* port = std::getenv("MASTER_PORT"); port && *port) return std::atoi(port);
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    if (fd >= 0) ::close(fd);
    throw Error(std::string("--nproc: no free TCP port for the rendezvous (") +
                std::strerror(errno) + "); set MASTER_PORT");
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

// Runs this command line again as `rank`; the child dies with the launcher.
pid_t start_rank(int rank, int nproc, int port) {
  std::vector<std::string> words = command_line();
  std::vector<char*> argv;
  for (auto& w : words) argv.push_back(w.data());
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) throw Error(std::string("--nproc: fork failed: ") + std::strerror(errno));
  if (pid > 0) return pid;
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  ::setenv("RANK", std::to_string(rank).c_str(), 1);
  ::setenv("LOCAL_RANK", std::to_string(rank).c_str(), 1);
  ::setenv("WORLD_SIZE", std::to_string(nproc).c_str(), 1);
  ::setenv("LOCAL_WORLD_SIZE", std::to_string(nproc).c_str(), 1);
  ::setenv("MASTER_ADDR", "127.0.0.1", 0);
  ::setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
  ::execv("/proc/self/exe", argv.data());
  std::fprintf(stderr, "--nproc: cannot run /proc/self/exe: %s\n", std::strerror(errno));
  ::_exit(127);
}

std::string describe(int status) {
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    return "was killed by signal " + std::to_string(sig) + " (" + strsignal(sig) + ")";
  }
  return "exited with code " + std::to_string(WEXITSTATUS(status));
}

// SIGTERM to the ranks still running, SIGKILL to those alive 10 s later; reaps them all.
void stop_ranks(std::vector<pid_t>& pids) {
  for (pid_t p : pids)
    if (p > 0) ::kill(p, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (pid_t& p : pids) {
    while (p > 0) {
      int status = 0;
      if (::waitpid(p, &status, WNOHANG) == p) {
        p = 0;
      } else if (std::chrono::steady_clock::now() > deadline) {
        ::kill(p, SIGKILL);
        ::waitpid(p, &status, 0);
        p = 0;
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    }
  }
}

// Waits for every rank; the first that fails stops the others. Returns 0 or throws.
int wait_for_ranks(std::vector<pid_t> pids) {
  size_t running = pids.size();
  while (running > 0) {
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, 0);
    if (pid < 0) {
      if (errno == EINTR) continue;
      throw Error(std::string("--nproc: waitpid failed: ") + std::strerror(errno));
    }
    size_t rank = 0;
    while (rank < pids.size() && pids[rank] != pid) ++rank;
    if (rank == pids.size()) continue;
    pids[rank] = 0;
    --running;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) continue;
    stop_ranks(pids);
    throw Error("distributed job: rank " + std::to_string(rank) + " (pid " + std::to_string(pid) +
                ") " + describe(status) +
                "; the other ranks were stopped. Continue the job with the same command and "
                "--resume (from rank 0's last checkpoint)");
  }
  return 0;
}

}  // namespace

void add_nproc_option(CLI::App* cmd, int& nproc) {
  cmd->add_option("--nproc", nproc,
                  "Data-parallel job of N local processes sharing each batch (docs/distributed.md)")
      ->check(CLI::Range(1, 1024));
}

std::optional<int> launch_or_join(int nproc) {
  if (nproc > 1 && std::getenv("RANK") == nullptr) {
    const int port = rendezvous_port();
    log::info("--nproc ", nproc, ": starting ranks 0..", nproc - 1, " (rendezvous 127.0.0.1:", port,
              ")");
    std::vector<pid_t> pids;
    for (int r = 0; r < nproc; ++r) pids.push_back(start_rank(r, nproc, port));
    return wait_for_ranks(pids);
  }
  const training::dist::Environment env = training::dist::Environment::from_process();
  if (env.rank != 0 && log::level() == log::Level::kInfo) log::set_level(log::Level::kWarn);
  training::dist::init(env);
  return std::nullopt;
}

std::string make_job_run_dir(const std::string& command, const std::string& name, bool exist_ok) {
  namespace dist = training::dist;
  const std::string run = dist::is_main() ? make_run_dir(command, name, exist_ok) : std::string();
  return dist::broadcast_string(run, "handing out the run folder");
}

}  // namespace mixnas::cli
