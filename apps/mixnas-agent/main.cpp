// mixnas-agent: measures .mxr packages and one-layer graphs on this device for searches running
// elsewhere. Built from the runtime, cpp-httplib and nlohmann-json only. API: docs/agent.md.
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>

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
#include "evaluators/agent/server.h"
#include "evaluators/device_id.h"

namespace {

const char* kUsage =
    "usage: mixnas-agent --token-file FILE [--port 8470] [--host 127.0.0.1] [--threads N]\n"
    "                    [--max-body-mb 64] [--queue 8] [--read-timeout 10]\n"
    "                    [--max-connections 128] [--max-memory-mb 2048] [--max-work-gmac 10000]\n"
    "                    [--tls-cert CERT.pem --tls-key KEY.pem] [--insecure-http]\n"
    "Serves the measurement API (docs/agent.md) on HOST:PORT. Every call but /v1/health needs\n"
    "'Authorization: Bearer <token>' with the token held in FILE. Binds 127.0.0.1 unless --host\n"
    "names another address (0.0.0.0 for every interface); there it serves HTTPS with --tls-cert\n"
    "and --tls-key, and plain HTTP only with --insecure-http. SIGTERM or SIGINT stops it.\n";

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

// The token decides who may use the device: warn when other users of this machine can read it.
void warn_if_world_readable(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) == 0 && (st.st_mode & (S_IROTH | S_IRGRP))) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%03o", static_cast<unsigned>(st.st_mode & 0777));
    mixnas::log::warn("mixnas-agent: the token file ", path, " is readable by other users (mode ",
                      mode, "); run: chmod 600 ", path);
  }
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
      if (arg == "--insecure-http") {
        options.insecure_http = true;
        continue;
      }
      if (i + 1 >= argc) throw Error("option " + arg + " needs a value\n" + kUsage);
      std::string value = argv[++i];
      if (arg == "--port")
        options.port = parse_int(arg, value, 0, 65535);
      else if (arg == "--host")
        options.host = value;
      else if (arg == "--token-file")
        token_file = value;
      else if (arg == "--threads")
        options.threads = parse_int(arg, value, 1, 256);
      else if (arg == "--max-body-mb")
        options.max_body_bytes = size_t(parse_int(arg, value, 1, 4096)) << 20;
      else if (arg == "--queue")
        options.max_queue = parse_int(arg, value, 0, 1024);
      else if (arg == "--read-timeout")
        options.read_timeout_s = parse_int(arg, value, 1, 3600);
      else if (arg == "--max-connections")
        options.max_connections = parse_int(arg, value, 4, 4096);
      else if (arg == "--max-memory-mb")
        options.limits.max_memory_bytes = int64_t{parse_int(arg, value, 16, 1 << 20)} << 20;
      else if (arg == "--max-work-gmac")
        options.limits.max_work_gmac = parse_int(arg, value, 1, 100000000);
      else if (arg == "--tls-cert")
        options.tls_cert = value;
      else if (arg == "--tls-key")
        options.tls_key = value;
      else
        throw Error("unknown option " + arg + "\n" + kUsage);
    }
    if (token_file.empty()) throw Error(std::string("--token-file is required\n") + kUsage);
    warn_if_world_readable(token_file);
    options.token = text::trim(read_file(token_file));
    if (options.token.empty())
      throw Error(token_file + ": the token file is empty; put a secret in it");

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
    if (options.insecure_http && !agent::is_loopback_host(options.host) && !server.tls()) {
      log::warn("mixnas-agent: plain HTTP on ", options.host,
                " (--insecure-http): the token crosses the network in clear");
    }
    std::printf("mixnas-agent %s listening on %s://%s:%d device_id=%s threads=%d\n", MIXNAS_VERSION,
                server.tls() ? "https" : "http", options.host.c_str(), port,
                eval::device_id().c_str(), options.threads);
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
