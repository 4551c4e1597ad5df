#pragma once
// mixnas-agent's HTTP/1.1 + JSON server (API: docs/agent.md). It measures .mxr packages and
// one-layer graphs with the runtime, one measurement at a time, and writes no files.
#include <cstddef>
#include <memory>
#include <string>

namespace mixnas::agent {

struct AgentOptions {
  std::string host = "127.0.0.1";  // loopback unless told otherwise
  int port = 8470;                 // 0 = any free port (tests)
  std::string token;               // bearer token required on every call but /v1/health
  int threads = 1;                 // default measurement threads
  size_t max_body_bytes = size_t{64} << 20;
  int max_queue = 8;               // measurements waiting behind the running one; more -> 503
  int read_timeout_s = 10;         // a client that stalls longer is dropped
  int write_timeout_s = 30;
  int max_layers = 4096;           // per /v1/layers request
};

class AgentServer {
 public:
  explicit AgentServer(AgentOptions options);
  ~AgentServer();
  AgentServer(const AgentServer&) = delete;
  AgentServer& operator=(const AgentServer&) = delete;

  // Binds the socket; returns the port (the chosen one when options.port == 0). Throws
  // mixnas::Error when the address cannot be bound.
  int bind();
  // Serves until stop(). bind() first.
  void serve();
  // bind() + serve() on a background thread; returns the port.
  int start();
  // Stops serving (safe from any thread); a running measurement finishes first.
  void stop();
  int port() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Compares two secrets in time independent of where they differ.
bool constant_time_equal(const std::string& a, const std::string& b);

}  // namespace mixnas::agent
