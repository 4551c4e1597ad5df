#pragma once
// mixnas-agent's HTTP/1.1 + JSON server (API: docs/agent.md). It measures .mxr packages and
// one-layer graphs with the runtime, one measurement at a time, and writes no files.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "evaluators/agent/budget.h"
#include "evaluators/agent/guard.h"

namespace mixnas::agent {

struct AgentOptions {
  std::string host = "127.0.0.1";  // loopback unless told otherwise
  int port = 8470;                 // 0 = any free port (tests)
  std::string token;               // bearer token required on every call but /v1/health
  int threads = 1;                 // default measurement threads
  size_t max_body_bytes = size_t{64} << 20;
  int max_queue = 8;        // measurements waiting behind the running one; more -> 503
  int read_timeout_s = 10;  // a request head (or a stalled body) may take this long
  int write_timeout_s = 30;
  int max_layers = 4096;          // per /v1/layers request
  int max_connections = 128;      // open connections; the newest past it are closed
  RequestLimits limits;           // memory and work of one request
  std::string tls_cert, tls_key;  // PEM files: serve HTTPS
  bool insecure_http = false;     // allow plain HTTP on a non-loopback address
};

// The connection guard's counters, and the 503 answers, for tests.
struct AgentCounters : GuardCounters {
  int64_t busy_refused = 0;
};

class AgentServer {
 public:
  // Throws mixnas::Error on an empty token or a TLS certificate/key that cannot be loaded.
  explicit AgentServer(AgentOptions options);
  ~AgentServer();
  AgentServer(const AgentServer&) = delete;
  AgentServer& operator=(const AgentServer&) = delete;

  // Binds the socket exclusively; returns the port (the chosen one when options.port == 0).
  // Throws mixnas::Error when the address cannot be bound (naming the reason, e.g. "Address
  // already in use"), or for plain HTTP on a non-loopback address without insecure_http.
  int bind();
  // Serves until stop(). bind() first.
  void serve();
  // bind() + serve() on a background thread; returns the port.
  int start();
  // Stops serving (safe from any thread); a running measurement finishes first.
  void stop();
  int port() const;
  bool tls() const;
  AgentCounters counters() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Compares two secrets in time independent of where they differ.
bool constant_time_equal(const std::string& a, const std::string& b);

// True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost).
bool is_loopback_host(const std::string& host);

}  // namespace mixnas::agent
