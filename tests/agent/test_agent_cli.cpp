// The mixnas-agent command line: the warning on a world-readable token file, plain HTTP refused
// on a network address, and a taken port, as a user sees them (exit status and stderr).
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "evaluators/agent/server.h"

namespace {

// Runs the agent with `args` until it exits (or is killed after `seconds`); its stderr in `err`.
int run_agent(const std::vector<std::string>& args, std::string* err, int seconds = 5) {
  std::string err_file = "/tmp/mixnas_agent_cli_" + std::to_string(getpid()) + ".err";
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    int fd = open(err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, 2);
    int null = open("/dev/null", O_WRONLY);
    dup2(null, 1);
    std::vector<char*> argv = {const_cast<char*>(MIXNAS_AGENT_BINARY)};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(MIXNAS_AGENT_BINARY, argv.data());
    _exit(127);
  }
  int status = 0;
  for (int i = 0; i < seconds * 10 && waitpid(pid, &status, WNOHANG) == 0; ++i) usleep(100000);
  if (waitpid(pid, &status, WNOHANG) == 0) {
    kill(pid, SIGTERM);
    waitpid(pid, &status, 0);
  }
  std::ifstream in(err_file);
  std::stringstream ss;
  ss << in.rdbuf();
  *err = ss.str();
  std::remove(err_file.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string token_file(mode_t mode) {
  std::string path = "/tmp/mixnas_agent_cli_" + std::to_string(getpid()) + ".token";
  std::ofstream(path) << "cli-token\n";
  chmod(path.c_str(), mode);
  return path;
}

}  // namespace

TEST_CASE("mixnas-agent warns on a world-readable token file", "[agent]") {
  std::string err;
  std::string token = token_file(0644);
  // Plain HTTP on 0.0.0.0 stops it right after the token is read: exit 1, both messages.
  CHECK(run_agent({"--token-file", token, "--port", "0", "--host", "0.0.0.0"}, &err) == 1);
  CHECK_THAT(err, Catch::Contains("readable by other users (mode 644); run: chmod 600"));
  CHECK_THAT(err, Catch::Contains("refusing plain HTTP on 0.0.0.0"));
  chmod(token.c_str(), 0600);
  CHECK(run_agent({"--token-file", token, "--port", "0", "--host", "0.0.0.0"}, &err) == 1);
  CHECK_THAT(err, !Catch::Contains("readable by other users"));
  std::remove(token.c_str());
}

TEST_CASE("mixnas-agent on a taken port exits 1 with 'Address already in use'", "[agent]") {
  mixnas::agent::AgentOptions o;
  o.port = 0;
  o.token = "x";
  mixnas::agent::AgentServer first(o);
  int port = first.start();
  std::string token = token_file(0600);
  std::string err;
  CHECK(run_agent({"--token-file", token, "--port", std::to_string(port)}, &err) == 1);
  CHECK_THAT(err, Catch::Contains("Address already in use"));
  std::remove(token.c_str());
}
