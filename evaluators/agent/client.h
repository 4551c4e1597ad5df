#pragma once
// The client side of mixnas-agent: one agent (AgentClient), and a device class served by several
// agents (RemoteEvaluator) with requests spread over them in parallel, retries with backoff, and
// failover: an agent that fails is taken out of the rotation and tried again later.
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "evaluators/measure.h"

namespace mixnas::agent {

// What an agent measures and answers with (evaluators/measure.h).
using eval::LayerRow;
using eval::LayerSignature;
using eval::MeasureOptions;
using eval::MeasureResult;

struct AgentAddress {
  std::string host;
  int port = 8470;
  std::string str() const { return host + ":" + std::to_string(port); }
  // "host:port" or "host" (port 8470). Throws mixnas::Error on a malformed address.
  static AgentAddress parse(const std::string& text);
};

// A failed request. `retryable` when another try (or another agent) may succeed: connection
// failures, timeouts, 5xx; not for 4xx (the request itself is wrong).
class AgentError : public Error {
 public:
  AgentError(const std::string& message, int status, bool retryable)
      : Error(message), status_(status), retryable_(retryable) {}
  int status() const { return status_; }
  bool retryable() const { return retryable_; }

 private:
  int status_;
  bool retryable_;
};

// HTTPS to the agents of a device class (docs/agent.md). Empty: plain HTTP. Give one of:
//   ca_file: the agent's certificate chain and host name are verified against this CA (PEM);
//   fingerprint_sha256: exactly the certificate with this SHA-256 is accepted (a self-signed
//     agent certificate pinned; 64 hex digits, colons and an "sha256 Fingerprint=" prefix as
//     `openssl x509 -fingerprint -sha256` prints them are allowed).
struct TlsOptions {
  std::string ca_file;
  std::string fingerprint_sha256;
  bool enabled() const { return !ca_file.empty() || !fingerprint_sha256.empty(); }
  // Throws mixnas::Error when both are given or the fingerprint is not 32 hex bytes.
  void validate() const;
};

// The 32 bytes of a SHA-256 fingerprint written as hex (see TlsOptions); throws mixnas::Error.
std::string parse_sha256_fingerprint(const std::string& text);

class AgentClient {
 public:
  AgentClient(AgentAddress address, std::string token, double timeout_s = 120, TlsOptions tls = {});
  ~AgentClient();

  const AgentAddress& address() const { return address_; }
  nlohmann::json health();
  nlohmann::json info();
  MeasureResult benchmark(const std::string& package, const MeasureOptions& options);
  std::vector<LayerRow> layers(const std::vector<LayerSignature>& layers,
                               const MeasureOptions& options);

 private:
  nlohmann::json request(const std::string& method, const std::string& path,
                         const std::string& body, const std::string& content_type);
  AgentAddress address_;
  std::string token_;
  double timeout_s_;
  TlsOptions tls_;
  std::string pinned_;  // the fingerprint's 32 bytes, when pinning
};

struct RemoteOptions {
  std::vector<AgentAddress> agents;
  std::string token;
  double timeout_s = 120;
  int retries = 3;          // tries per request on one agent before it is taken out
  double backoff_s = 0.2;   // first backoff; doubles per retry
  double retry_down_s = 5;  // an agent taken out is tried again after this long
  int chunk = 4;            // layers per request
  TlsOptions tls;           // HTTPS to every agent of the class
};

class RemoteEvaluator {
 public:
  explicit RemoteEvaluator(RemoteOptions options);
  ~RemoteEvaluator();

  // The device id the agents report (the first agent that answers). Throws when none answers.
  std::string device_id();
  // Measures a package on one agent (the next in rotation that is up), failing over.
  MeasureResult benchmark(const std::string& package, const MeasureOptions& options);
  // Measures every layer once, spreading chunks over the agents in parallel. The rows come back
  // in the order of `layers`; a chunk lost with a failing agent is measured by another.
  std::vector<LayerRow> measure_layers(const std::vector<LayerSignature>& layers,
                                       const MeasureOptions& options);
  // How many requests each agent answered (index as in RemoteOptions::agents), for tests/logs.
  std::vector<int> answered() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace mixnas::agent
