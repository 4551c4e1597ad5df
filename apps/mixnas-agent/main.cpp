// mixnas-agent: measures .mxr packages and one-layer graphs on this device for searches running
// elsewhere. Built from the runtime, cpp-httplib and nlohmann-json only. API: docs/agent.md.
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/log.h"
#include "core/text.h"
#include "core/version.h"
#include "evaluators/device_id.h"
#include "evaluators/agent/server.h"

namespace {

const char* kUsage =
    "usage: mixnas-agent --token-file FILE [--port 8470] [--host 127.0.0.1] [--threads N]\n"
    "                    [--max-body-mb 64] [--queue 8] [--read-timeout 10]\n"
    "Serves the measurement API (docs/agent.md) on HOST:PORT. Every call but /v1/health needs\n"
    "'Authorization: Bearer <token>' with the token held in FILE. Binds 127.0.0.1 unless --host\n"
    "names another address (0.0.0.0 for every interface). SIGTERM or SIGINT stops it.\n";

int parse_int(const std::string& flag, const std::string& value, int lo, int hi) {
  size_t used = 0;
  long v = 0;
  try {
    v = std::stol(value, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != value.size() || v < lo || v > hi) {
    throw mixnas::Error(flag + " expects an integer in " + std::to_string(lo) + ".." +
                        std::to_string(hi) + ", got '" + value + "'");
  }
  return static_cast<int>(v);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace mixnas;
  agent::AgentOptions options;
  std::string token_file;
  try {
    for (int i = 1; i < argc; ++i) {
      std::string arg = argv[i];
      if (arg == "-h" || arg == "--help") {
        std::fputs(kUsage, stdout);
        return 0;
      }
      if (arg == "--version") {
        std::printf("mixnas-agent %s\n", MIXNAS_VERSION);
        return 0;
      }
      if (i + 1 >= argc) throw Error("option " + arg + " needs a value\n" + kUsage);
      std::string value = argv[++i];
      if (arg == "--port") options.port = parse_int(arg, value, 0, 65535);
      else if (arg == "--host") options.host = value;
      else if (arg == "--token-file") token_file = value;
      else if (arg == "--threads") options.threads = parse_int(arg, value, 1, 256);
      else if (arg == "--max-body-mb") options.max_body_bytes = size_t(parse_int(arg, value, 1, 4096)) << 20;
      else if (arg == "--queue") options.max_queue = parse_int(arg, value, 0, 1024);
      else if (arg == "--read-timeout") options.read_timeout_s = parse_int(arg, value, 1, 3600);
      else throw Error("unknown option " + arg + "\n" + kUsage);
    }
    if (token_file.empty()) throw Error(std::string("--token-file is required\n") + kUsage);
    options.token = text::trim(read_file(token_file));
    if (options.token.empty()) throw Error(token_file + ": the token file is empty; put a secret in it");

    // Signals are taken by a dedicated thread (sigwait), so stopping never runs in a handler.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    signal(SIGPIPE, SIG_IGN);

    agent::AgentServer server(options);
    int port = server.bind();
    std::thread stopper([&] {
      int sig = 0;
      sigwait(&signals, &sig);
      log::info("mixnas-agent: signal ", sig, ", stopping");
      server.stop();
    });
    std::printf("mixnas-agent %s listening on http://%s:%d device_id=%s threads=%d\n",
                MIXNAS_VERSION, options.host.c_str(), port, eval::device_id().c_str(),
                options.threads);
    std::fflush(stdout);
    server.serve();
    // serve() returns after stop(); wake the stopper if it is still waiting (serve failed).
    pthread_kill(stopper.native_handle(), SIGTERM);
    stopper.join();
    log::info("mixnas-agent: stopped");
    return 0;
  } catch (const Error& e) {
    log::error(e.what());
    return 1;
  }
}
