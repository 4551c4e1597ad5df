#include "evaluators/agent/client.h"

#include <httplib.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "core/log.h"

namespace mixnas::agent {

void TlsOptions::validate() const {
  if (!ca_file.empty() && !fingerprint_sha256.empty()) {
    throw Error("TLS: give tls_ca_file or tls_fingerprint_sha256, not both");
  }
  if (!fingerprint_sha256.empty()) parse_sha256_fingerprint(fingerprint_sha256);
}

std::string parse_sha256_fingerprint(const std::string& text) {
  std::string hex;
  size_t start = text.find('=') == std::string::npos ? 0 : text.find('=') + 1;
  for (size_t i = start; i < text.size(); ++i) {
    char c = text[i];
    if (c == ':' || c == ' ') continue;
    if (!std::isxdigit(static_cast<unsigned char>(c))) {
      hex.clear();  // not a fingerprint: reported below
      break;
    }
    hex.push_back(c);
  }
  if (hex.size() != 64) {
    throw Error("TLS fingerprint '" + text.substr(0, 120) +
                "' is not a SHA-256 (64 hex digits); "
                "print it with: openssl x509 -noout -fingerprint -sha256 -in agent.crt");
  }
  std::string bytes;
  for (size_t i = 0; i < 64; i += 2) {
    bytes.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return bytes;
}

namespace {

// What the pinning callback expects and what it saw, for the error message.
struct PinCheck {
  std::string expected;  // 32 bytes
  bool mismatch = false;
  std::string seen;  // the agent's fingerprint, hex with colons
};

std::string to_hex(const unsigned char* data, size_t n) {
  static const char* digits = "0123456789ABCDEF";
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    if (i) out.push_back(':');
    out.push_back(digits[data[i] >> 4]);
    out.push_back(digits[data[i] & 15]);
  }
  return out;
}

// OpenSSL calls this for every certificate of the agent's chain during the handshake; the
// pinned leaf (depth 0) decides alone, so a self-signed certificate is accepted exactly when its
// SHA-256 is the pinned one.
int verify_pinned(int /*preverified*/, X509_STORE_CTX* store) {
  if (X509_STORE_CTX_get_error_depth(store) != 0) return 1;
  auto* ssl =
      static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
  auto* pin = static_cast<PinCheck*>(SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)));
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  X509* cert = X509_STORE_CTX_get_current_cert(store);
  if (!pin || !cert || X509_digest(cert, EVP_sha256(), md, &n) != 1) return 0;
  if (std::string(reinterpret_cast<const char*>(md), n) == pin->expected) return 1;
  pin->mismatch = true;
  pin->seen = to_hex(md, n);
  return 0;
}

// A client for one request: plain, verifying against a CA file, or pinning a certificate.
std::unique_ptr<httplib::ClientImpl> make_http_client(const AgentAddress& address,
                                                      const TlsOptions& tls, PinCheck* pin) {
  if (!tls.enabled()) return std::make_unique<httplib::ClientImpl>(address.host, address.port);
  auto cli = std::make_unique<httplib::SSLClient>(address.host, address.port);
  if (!tls.ca_file.empty()) {
    cli->set_ca_cert_path(tls.ca_file.c_str());
    cli->enable_server_certificate_verification(true);
  } else {
    // httplib's own check wants a CA chain and the host name; a pinned certificate needs neither.
    cli->enable_server_certificate_verification(false);
    SSL_CTX_set_app_data(cli->ssl_context(), pin);
    SSL_CTX_set_verify(cli->ssl_context(), SSL_VERIFY_PEER, verify_pinned);
  }
  return cli;
}

}  // namespace

AgentAddress AgentAddress::parse(const std::string& text) {
  AgentAddress a;
  auto colon = text.rfind(':');
  a.host = colon == std::string::npos ? text : text.substr(0, colon);
  if (colon != std::string::npos) {
    std::string port = text.substr(colon + 1);
    size_t used = 0;
    int p = 0;
    try {
      p = std::stoi(port, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != port.size() || p < 1 || p > 65535) {
      throw Error("agent address '" + text + "': the port must be a number in 1..65535");
    }
    a.port = p;
  }
  if (a.host.empty()) throw Error("agent address '" + text + "': no host");
  return a;
}

AgentClient::AgentClient(AgentAddress address, std::string token, double timeout_s, TlsOptions tls)
    : address_(std::move(address)),
      token_(std::move(token)),
      timeout_s_(timeout_s),
      tls_(std::move(tls)) {
  tls_.validate();
  if (!tls_.fingerprint_sha256.empty()) pinned_ = parse_sha256_fingerprint(tls_.fingerprint_sha256);
}

AgentClient::~AgentClient() = default;

nlohmann::json AgentClient::request(const std::string& method, const std::string& path,
                                    const std::string& body, const std::string& content_type) {
  PinCheck pin{pinned_, false, ""};
  std::unique_ptr<httplib::ClientImpl> client = make_http_client(address_, tls_, &pin);
  httplib::ClientImpl& cli = *client;
  auto secs = static_cast<time_t>(timeout_s_);
  auto usecs = static_cast<time_t>((timeout_s_ - static_cast<double>(secs)) * 1e6);
  cli.set_connection_timeout(5, 0);
  cli.set_read_timeout(secs, usecs);
  cli.set_write_timeout(secs, usecs);
  cli.set_bearer_token_auth(token_.c_str());
  httplib::Result res =
      method == "GET" ? cli.Get(path.c_str()) : cli.Post(path.c_str(), body, content_type.c_str());
  std::string where = "agent " + address_.str() + " " + method + " " + path;
  if (!res) {
    if (pin.mismatch) {
      // Another certificate than the pinned one: a wrong pin or someone in between. Retrying or
      // another agent will not change it.
      throw AgentError(where + ": the agent's certificate has SHA-256 " + pin.seen +
                           ", not the tls_fingerprint_sha256 of the device config; re-pin it if "
                           "the agent's certificate was replaced (docs/agent.md)",
                       0, /*retryable=*/false);
    }
    std::string why = httplib::to_string(res.error());
    if (res.error() == httplib::Error::SSLServerVerification) {
      why += " (the agent's certificate is not signed by tls_ca_file " + tls_.ca_file +
             " or does not name " + address_.host + ")";
    }
    throw AgentError(where + ": " + why, 0, /*retryable=*/true);
  }
  nlohmann::json j = nlohmann::json::parse(res->body, nullptr, false);
  if (res->status != 200) {
    std::string why = (!j.is_discarded() && j.contains("error")) ? j["error"].get<std::string>()
                                                                 : res->body.substr(0, 200);
    bool retryable = res->status >= 500 || res->status == 429;
    throw AgentError(where + ": HTTP " + std::to_string(res->status) + ": " + why, res->status,
                     retryable);
  }
  if (j.is_discarded()) throw AgentError(where + ": the answer is not JSON", 200, true);
  return j;
}

nlohmann::json AgentClient::health() {
  return request("GET", "/v1/health", "", "");
}
nlohmann::json AgentClient::info() {
  return request("GET", "/v1/info", "", "");
}

MeasureResult AgentClient::benchmark(const std::string& package, const MeasureOptions& options) {
  std::string path = "/v1/benchmark?runs=" + std::to_string(options.runs) +
                     "&warmup=" + std::to_string(options.warmup) +
                     "&threads=" + std::to_string(options.threads) +
                     "&outputs=" + (options.outputs ? "1" : "0") +
                     "&input_seed=" + std::to_string(options.input_seed);
  return MeasureResult::from_json(request("POST", path, package, "application/octet-stream"));
}

std::vector<LayerRow> AgentClient::layers(const std::vector<LayerSignature>& layers,
                                          const MeasureOptions& options) {
  nlohmann::json body = {{"layers", nlohmann::json::array()}, {"options", options.to_json()}};
  for (const auto& l : layers) body["layers"].push_back(l.to_json());
  nlohmann::json j = request("POST", "/v1/layers", body.dump(), "application/json");
  std::vector<LayerRow> rows;
  for (const auto& r : j.at("rows")) rows.push_back(LayerRow::from_json(r));
  if (rows.size() != layers.size()) {
    throw AgentError("agent " + address_.str() + " answered " + std::to_string(rows.size()) +
                         " rows for " + std::to_string(layers.size()) + " layers",
                     200, true);
  }
  return rows;
}

// ------------------------------------------------------------------ RemoteEvaluator

struct RemoteEvaluator::State {
  using Clock = std::chrono::steady_clock;
  RemoteOptions options;
  std::vector<std::unique_ptr<AgentClient>> clients;
  std::vector<Clock::time_point> down_until;
  std::vector<int> answered;
  size_t next = 0;
  mutable std::mutex mutex;

  bool is_up(size_t i) const {
    std::lock_guard<std::mutex> lock(mutex);
    return Clock::now() >= down_until[i];
  }
  void take_out(size_t i, const std::string& why) {
    std::lock_guard<std::mutex> lock(mutex);
    down_until[i] =
        Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(options.retry_down_s * 1000));
    log::warn("agent ", clients[i]->address().str(), " taken out of rotation for ",
              options.retry_down_s, " s: ", why);
  }

  // Runs fn on agent i with retries and backoff. Throws the last error.
  template <typename Fn>
  auto with_retries(size_t i, Fn&& fn) -> decltype(fn(*clients[i])) {
    double backoff = options.backoff_s;
    for (int attempt = 1;; ++attempt) {
      try {
        auto result = fn(*clients[i]);
        std::lock_guard<std::mutex> lock(mutex);
        answered[i]++;
        return result;
      } catch (const AgentError& e) {
        if (!e.retryable() || attempt >= options.retries) throw;
        log::debug("retrying ", clients[i]->address().str(), " in ", backoff, " s: ", e.what());
        std::this_thread::sleep_for(
            std::chrono::milliseconds(static_cast<int64_t>(backoff * 1000)));
        backoff *= 2;
      }
    }
  }

  // Tries fn on each agent in rotation until one succeeds.
  template <typename Fn>
  auto on_any(Fn&& fn) -> decltype(fn(*clients[0])) {
    std::string errors;
    size_t n = clients.size();
    for (int pass = 0; pass < 2; ++pass) {
      for (size_t k = 0; k < n; ++k) {
        size_t i;
        {
          std::lock_guard<std::mutex> lock(mutex);
          i = next++ % n;
        }
        if (pass == 0 && !is_up(i)) continue;  // second pass: also the ones taken out
        try {
          return with_retries(i, fn);
        } catch (const AgentError& e) {
          if (!e.retryable()) throw;
          take_out(i, e.what());
          errors += std::string("\n  ") + e.what();
        }
      }
    }
    throw Error("no agent of the device class could answer:" + errors);
  }
};

RemoteEvaluator::RemoteEvaluator(RemoteOptions options) : state_(std::make_unique<State>()) {
  if (options.agents.empty()) throw Error("a device class needs at least one agent");
  if (options.retries < 1) options.retries = 1;
  if (options.chunk < 1) options.chunk = 1;
  state_->options = options;
  for (const auto& a : options.agents) {
    state_->clients.push_back(
        std::make_unique<AgentClient>(a, options.token, options.timeout_s, options.tls));
  }
  state_->down_until.assign(options.agents.size(), State::Clock::time_point{});
  state_->answered.assign(options.agents.size(), 0);
}

RemoteEvaluator::~RemoteEvaluator() = default;

std::string RemoteEvaluator::device_id() {
  return state_->on_any([](AgentClient& c) { return c.info().at("device_id").get<std::string>(); });
}

MeasureResult RemoteEvaluator::benchmark(const std::string& package,
                                         const MeasureOptions& options) {
  return state_->on_any([&](AgentClient& c) { return c.benchmark(package, options); });
}

std::vector<LayerRow> RemoteEvaluator::measure_layers(const std::vector<LayerSignature>& layers,
                                                      const MeasureOptions& options) {
  State& s = *state_;
  size_t chunk = static_cast<size_t>(s.options.chunk);
  std::deque<std::pair<size_t, size_t>> queue;  // [begin, end) of `layers`
  for (size_t b = 0; b < layers.size(); b += chunk)
    queue.emplace_back(b, std::min(b + chunk, layers.size()));
  std::vector<LayerRow> rows(layers.size());
  std::vector<char> filled(layers.size(), 0);
  size_t remaining = queue.size();
  std::mutex m;
  std::condition_variable cv;
  std::string fatal;
  size_t agents = s.clients.size();
  std::vector<char> alive(agents, 1);

  auto worker = [&](size_t i) {
    while (true) {
      std::pair<size_t, size_t> job;
      {
        std::unique_lock<std::mutex> lock(m);
        cv.wait(lock, [&] { return !queue.empty() || remaining == 0 || !fatal.empty(); });
        if (remaining == 0 || !fatal.empty()) return;
        job = queue.front();
        queue.pop_front();
      }
      if (!s.is_up(i)) {
        // Taken out: give the chunk back, wait until this agent may be tried again.
        {
          std::lock_guard<std::mutex> lock(m);
          queue.push_back(job);
        }
        cv.notify_all();
        std::unique_lock<std::mutex> lock(m);
        State::Clock::time_point until;
        {
          std::lock_guard<std::mutex> state_lock(s.mutex);
          until = s.down_until[i];
        }
        cv.wait_until(lock, until, [&] { return remaining == 0 || !fatal.empty(); });
        continue;
      }
      std::vector<LayerSignature> part(layers.begin() + job.first, layers.begin() + job.second);
      try {
        std::vector<LayerRow> got =
            s.with_retries(i, [&](AgentClient& c) { return c.layers(part, options); });
        std::lock_guard<std::mutex> lock(m);
        for (size_t k = 0; k < got.size(); ++k) {
          if (!filled[job.first + k]) {
            rows[job.first + k] = std::move(got[k]);
            filled[job.first + k] = 1;
          }
        }
        alive[i] = 1;
        --remaining;
      } catch (const AgentError& e) {
        std::lock_guard<std::mutex> lock(m);
        queue.push_back(job);
        if (!e.retryable()) {
          fatal = e.what();
        } else {
          alive[i] = 0;
          // When every agent is out, the chunk cannot be measured now: stop with the reason.
          if (std::none_of(alive.begin(), alive.end(), [](char a) { return a != 0; })) {
            fatal = std::string("every agent failed; last error: ") + e.what();
          }
        }
        if (e.retryable()) s.take_out(i, e.what());
      } catch (const std::exception& e) {
        std::lock_guard<std::mutex> lock(m);
        fatal = e.what();
      }
      cv.notify_all();
    }
  };
  std::vector<std::thread> threads;
  for (size_t i = 0; i < agents; ++i) threads.emplace_back(worker, i);
  for (auto& t : threads) t.join();
  if (!fatal.empty()) throw Error("measuring layers on the device class failed: " + fatal);
  return rows;
}

std::vector<int> RemoteEvaluator::answered() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  return state_->answered;
}

}  // namespace mixnas::agent
