#include "evaluators/agent/server.h"

#include <httplib.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <functional>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/log.h"
#include "core/version.h"
#include "deploy/runtime/kernels/conv.h"
#include "deploy/runtime/session.h"
#include "evaluators/agent/guard.h"
#include "evaluators/agent/request.h"
#include "evaluators/device_id.h"
#include "evaluators/measure.h"

namespace mixnas::agent {

using eval::device_id;
using eval::device_info;
using eval::LayerSignature;
using eval::measure_layer;
using eval::measure_package;
using eval::MeasureOptions;

bool constant_time_equal(const std::string& a, const std::string& b) {
  // Every byte of the longer string is looked at, whatever the inputs.
  size_t n = std::max(a.size(), b.size());
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < n; ++i) {
    unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

bool is_loopback_host(const std::string& host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

namespace {

using Handled = httplib::Server::HandlerResponse;

// An error answered with its own HTTP status (mixnas::Error answers 400).
class HttpError : public Error {
 public:
  HttpError(int status, const std::string& message) : Error(message), status(status) {}
  int status;
};

// Set while a request is handled when its connection must be closed once the response is
// written (a body left unread must never be parsed as the next request). The logger, which runs
// on the same worker thread after the response, reads it.
thread_local bool t_drop_after_response = false;

void send_json(httplib::Response& res, int status, const nlohmann::json& body) {
  res.status = status;
  res.set_content(body.dump(), "application/json");
}

void send_error(httplib::Response& res, int status, const std::string& message) {
  send_json(res, status, {{"error", message}, {"status", status}});
}

void refuse_and_close(httplib::Response& res, int status, const std::string& message) {
  send_error(res, status, message);
  res.set_header("Connection", "close");
  t_drop_after_response = true;
}

bool is_body_route(const httplib::Request& req) {
  return req.method == "POST" && (req.path == "/v1/benchmark" || req.path == "/v1/layers");
}

bool is_known_route(const std::string& path) {
  return path == "/v1/health" || path == "/v1/info" || path == "/v1/benchmark" ||
         path == "/v1/layers";
}

// Why the request's body is refused before a byte of it is read, or "" when it may be read.
// `status` gets the answer's code.
std::string body_refusal(const httplib::Request& req, size_t max_body, int* status) {
  const bool has_length = req.has_header("Content-Length");
  const std::string length = req.get_header_value("Content-Length");
  const bool has_te = req.has_header("Transfer-Encoding");
  const bool has_body = has_te || (has_length && length != "0");
  *status = 413;
  if (!has_body) return "";
  const std::string route = req.method + " " + req.path;
  if (!is_body_route(req)) {
    if (!is_known_route(req.path)) *status = 404;
    return route + " takes no request body";
  }
  if (has_te && req.get_header_value("Transfer-Encoding") != "chunked") {
    *status = 501;
    return "Transfer-Encoding '" + req.get_header_value("Transfer-Encoding") +
           "' is not supported; send the body with Content-Length or chunked";
  }
  if (has_length) {
    char* end = nullptr;
    errno = 0;
    unsigned long long n = std::strtoull(length.c_str(), &end, 10);
    if (length.empty() || *end != '\0' || errno == ERANGE || length[0] == '-') {
      *status = 400;
      return "Content-Length '" + length.substr(0, 32) + "' is not a byte count";
    }
    if (n > max_body) {
      return "request body of " + std::to_string(n) +
             " bytes is larger than this agent's limit of " + std::to_string(max_body) +
             " bytes (mixnas-agent --max-body-mb)";
    }
  }
  if (req.is_multipart_form_data()) {
    *status = 415;
    return "multipart/form-data bodies are not accepted: send the " +
           std::string(req.path == "/v1/layers" ? "JSON" : ".mxr package") +
           " as the raw request body (any other Content-Type, e.g. curl --data-binary @file "
           "-H 'Content-Type: application/octet-stream')";
  }
  return "";
}

// Reads the whole body through httplib's content reader, which hands over decoded chunks (any
// transfer and content encoding), so the limit holds for chunked and compressed bodies too. The
// body must keep coming: read_timeout_s for the first bytes, then 64 KiB/s on average.
std::string read_body(const httplib::ContentReader& reader, size_t max_body, int read_timeout_s) {
  std::string body;
  bool too_large = false, too_slow = false;
  const auto start = std::chrono::steady_clock::now();
  reader([&](const char* data, size_t n) {
    if (body.size() + n > max_body) {
      too_large = true;
      return false;
    }
    double allowed_s = read_timeout_s + static_cast<double>(body.size()) / 65536.0;
    if (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() >
        allowed_s) {
      too_slow = true;
      return false;
    }
    body.append(data, n);
    return true;
  });
  if (too_large) {
    t_drop_after_response = true;
    throw HttpError(413, "request body larger than this agent's limit of " +
                             std::to_string(max_body) + " bytes (mixnas-agent --max-body-mb)");
  }
  if (too_slow) {
    t_drop_after_response = true;
    throw HttpError(408, "the request body arrives too slowly (under 64 KiB/s after " +
                             std::to_string(read_timeout_s) + " s)");
  }
  return body;
}

// httplib's server with its listening socket reachable: Debian's library was compiled with a
// listen backlog of 5, so a burst of more than five connections has the rest wait for a SYN
// retransmission (a second or more); bind() raises the backlog on that socket.
template <class Base>
class ListeningServer : public Base {
 public:
  using Base::Base;
  int listening_socket() const { return static_cast<int>(this->svr_sock_); }
};

// The address family and numeric address of `host`, for the reason a bind failed.
std::string bind_failure(const std::string& host, int port) {
  addrinfo hints{}, *res = nullptr;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  if (int rc = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res); rc != 0) {
    return std::string("cannot resolve the address: ") + gai_strerror(rc);
  }
  std::string why = "unknown reason";
  int fd = socket(res->ai_family, res->ai_socktype, res->ai_protocol);
  if (fd >= 0) {
    int yes = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    why = ::bind(fd, res->ai_addr, res->ai_addrlen) == 0 ? "the address became free; try again"
                                                         : std::strerror(errno);
    close(fd);
  }
  freeaddrinfo(res);
  return why;
}

}  // namespace

struct AgentServer::Impl {
  AgentOptions options;
  std::unique_ptr<httplib::Server> server;  // an httplib::SSLServer with TLS
  std::function<int()> listening_socket_of;
  ConnectionGuard guard;
  std::mutex measure_mutex;     // one measurement at a time on the device
  std::atomic<int> pending{0};  // running + waiting measurements
  std::atomic<int64_t> busy_refused{0};
  std::thread thread;
  int bound_port = -1;

  explicit Impl(AgentOptions o)
      : options(std::move(o)),
        guard(GuardOptions{static_cast<double>(options.read_timeout_s), options.max_connections}) {
    if (options.token.empty()) throw Error("mixnas-agent needs a non-empty token");
    if (options.tls_cert.empty() != options.tls_key.empty()) {
      throw Error("TLS needs both a certificate and its private key (--tls-cert and --tls-key)");
    }
    if (options.tls_cert.empty()) {
      auto plain = std::make_unique<ListeningServer<httplib::Server>>();
      listening_socket_of = [s = plain.get()] { return s->listening_socket(); };
      server = std::move(plain);
    } else {
      auto ssl = std::make_unique<ListeningServer<httplib::SSLServer>>(options.tls_cert.c_str(),
                                                                       options.tls_key.c_str());
      listening_socket_of = [s = ssl.get()] { return s->listening_socket(); };
      if (!ssl->is_valid()) {
        throw Error("cannot load the TLS certificate " + options.tls_cert + " or its key " +
                    options.tls_key +
                    " (PEM files, the key unencrypted; docs/agent.md shows how "
                    "to make them)");
      }
      server = std::move(ssl);
    }
    configure_transport();
    install_pre_routing();
    install_routes();
    install_error_handlers();
  }

  void configure_transport() {
    httplib::Server& s = *server;
    s.set_payload_max_length(options.max_body_bytes);
    s.set_read_timeout(options.read_timeout_s, 0);
    s.set_write_timeout(options.write_timeout_s, 0);
    s.set_keep_alive_max_count(100);
    s.set_keep_alive_timeout(std::min(options.read_timeout_s, 5));
    // httplib's default sets SO_REUSEPORT, which lets a second agent listen on the same port
    // (requests then alternate between them). SO_REUSEADDR alone still allows a restart while
    // old connections linger in TIME_WAIT, but fails with EADDRINUSE while anyone listens.
    s.set_socket_options([](socket_t sock) {
      int yes = 1;
      setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    });
    // One worker per allowed connection (plus a few for connections the guard is closing), so
    // a queued measurement or a slow client never leaves /v1/health waiting for a thread.
    size_t workers = static_cast<size_t>(options.max_connections) + 8;
    s.new_task_queue = [workers] { return new httplib::ThreadPool(workers); };
    s.set_logger([this](const httplib::Request& req, const httplib::Response&) {
      if (t_drop_after_response)
        guard.drop_now(req.remote_addr, req.remote_port);
      else
        guard.request_done(req.remote_addr, req.remote_port);
      t_drop_after_response = false;
    });
  }

  // Runs once the request head is read and before any of the body: body limits for every
  // route and transfer encoding, then the token.
  void install_pre_routing() {
    server->set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      t_drop_after_response = false;
      guard.request_started(req.remote_addr, req.remote_port);
      int status = 0;
      std::string refusal = body_refusal(req, options.max_body_bytes, &status);
      if (!refusal.empty()) {
        refuse_and_close(res, status, refusal);
        return Handled::Handled;
      }
      if (req.path == "/v1/health") return Handled::Unhandled;
      std::string auth = req.get_header_value("Authorization");
      const std::string prefix = "Bearer ";
      bool ok = auth.size() > prefix.size() && auth.compare(0, prefix.size(), prefix) == 0 &&
                constant_time_equal(auth.substr(prefix.size()), options.token);
      if (!ok) {
        res.set_header("WWW-Authenticate", "Bearer");
        // A body, if any, stays unread: close the connection after the answer.
        refuse_and_close(res, 401, auth.empty() ? "missing bearer token" : "wrong bearer token");
        return Handled::Handled;
      }
      return Handled::Unhandled;
    });
  }

  void install_routes() {
    server->Get("/v1/health", [](const httplib::Request&, httplib::Response& res) {
      send_json(res, 200, {{"status", "ok"}, {"version", MIXNAS_VERSION}});
    });
    server->Get("/v1/info", [this](const httplib::Request&, httplib::Response& res) {
      nlohmann::json info = device_info(options.threads);
      info["kernels"] = rt::conv_kernel_names_for();
      info["max_body_bytes"] = options.max_body_bytes;
      info["max_queue"] = options.max_queue;
      info["max_connections"] = options.max_connections;
      info["max_memory_bytes"] = options.limits.max_memory_bytes;
      info["max_work_gmac"] = options.limits.max_work_gmac;
      info["tls"] = !options.tls_cert.empty();
      send_json(res, 200, info);
    });
    server->Post("/v1/benchmark", [this](const httplib::Request& req, httplib::Response& res,
                                         const httplib::ContentReader& reader) {
      measurement(res, reader, [&](const std::string& body) {
        MeasureOptions mo = benchmark_options(req.params, options.threads);
        if (body.empty()) throw Error("the request body must be an .mxr package");
        auto model = rt::Model::from_bytes(body.data(), body.size(), "<request body>");
        check_package_request(*model, mo, options.limits);
        return [model, mo] { return measure_model(model, mo).to_json(); };
      });
    });
    server->Post("/v1/layers", [this](const httplib::Request&, httplib::Response& res,
                                      const httplib::ContentReader& reader) {
      measurement(res, reader, [&](const std::string& body) {
        auto parsed = std::make_shared<LayersRequest>(
            parse_layers_request(body, options.max_layers, options.threads, options.limits));
        return [parsed] {
          nlohmann::json rows = nlohmann::json::array();
          for (const auto& s : parsed->layers)
            rows.push_back(measure_layer(s, parsed->options).to_json());
          return nlohmann::json{{"device_id", device_id()}, {"rows", rows}};
        };
      });
    });
  }

  // A measurement request: a place in the queue first (503 past it, before the body is read,
  // so that waiting requests hold at most max_queue + 1 bodies), then the body, `prepare` (parse
  // and check it against the limits), and the measurement once the device is free.
  template <typename Prepare>
  void measurement(httplib::Response& res, const httplib::ContentReader& reader,
                   Prepare&& prepare) {
    int before = pending.fetch_add(1);
    struct Leave {
      std::atomic<int>& p;
      ~Leave() { p.fetch_sub(1); }
    } leave{pending};
    if (before > options.max_queue) {
      busy_refused++;
      res.set_header("Retry-After", "1");
      refuse_and_close(res, 503,
                       "busy: " + std::to_string(before) +
                           " measurements running or "
                           "queued (mixnas-agent --queue " +
                           std::to_string(options.max_queue) + "); retry later");
      return;
    }
    std::string body = read_body(reader, options.max_body_bytes, options.read_timeout_s);
    auto run = prepare(body);
    body = std::string();  // the parsed request holds what the measurement needs
    std::lock_guard<std::mutex> lock(measure_mutex);
    send_json(res, 200, run());
  }

  void install_error_handlers() {
    server->set_exception_handler(
        [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
          try {
            std::rethrow_exception(ep);
          } catch (const HttpError& e) {
            send_error(res, e.status, e.what());
          } catch (const Error& e) {
            send_error(res, 400, e.what());
          } catch (const nlohmann::json::exception& e) {
            send_error(res, 400, std::string("malformed JSON: ") + e.what());
          } catch (const std::bad_alloc&) {
            send_error(res, 507, "out of memory");
          } catch (const std::exception& e) {
            send_error(res, 500, std::string("internal error: ") + e.what());
          } catch (...) {
            send_error(res, 500, "internal error");
          }
        });
    server->set_error_handler([](const httplib::Request& req, httplib::Response& res) {
      if (!res.body.empty()) return;  // a handler already said why
      if (res.status == 404) {
        send_error(res, 404, "no endpoint " + req.method + " " + req.path + " (see docs/agent.md)");
      } else if (res.status == 413) {
        send_error(res, 413, "request body too large");
      } else {
        send_error(res, res.status, "request failed");
      }
    });
  }
};

AgentServer::AgentServer(AgentOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

AgentServer::~AgentServer() {
  stop();
  if (impl_->thread.joinable()) impl_->thread.join();
  impl_->guard.stop();
}

int AgentServer::bind() {
  auto& o = impl_->options;
  if (o.tls_cert.empty() && !o.insecure_http && !is_loopback_host(o.host)) {
    throw Error("refusing plain HTTP on " + o.host +
                ": the token would cross the network in "
                "clear. Serve HTTPS (--tls-cert/--tls-key, docs/agent.md), bind 127.0.0.1, or "
                "pass --insecure-http on a network you trust");
  }
  int port = o.port;
  if (port == 0) {
    port = impl_->server->bind_to_any_port(o.host);
    if (port < 0)
      throw Error("cannot bind " + o.host + " to a free port: " + bind_failure(o.host, 0));
  } else if (!impl_->server->bind_to_port(o.host, port)) {
    throw Error("cannot bind " + o.host + ":" + std::to_string(port) + ": " +
                bind_failure(o.host, port) + " (another agent on this port? choose --port)");
  }
  impl_->bound_port = port;
  // Room for every allowed connection arriving at once (the kernel caps it at somaxconn).
  ::listen(impl_->listening_socket_of(), o.max_connections + 64);
  impl_->guard.start(port);
  return port;
}

void AgentServer::serve() {
  impl_->server->listen_after_bind();
}

int AgentServer::start() {
  int port = bind();
  impl_->thread = std::thread([this] { serve(); });
  // listen_after_bind sets is_running before accepting; wait for it so callers can connect.
  for (int i = 0; i < 2000 && !impl_->server->is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return port;
}

void AgentServer::stop() {
  if (impl_->server->is_running()) impl_->server->stop();
}

int AgentServer::port() const {
  return impl_->bound_port;
}

bool AgentServer::tls() const {
  return !impl_->options.tls_cert.empty();
}

AgentCounters AgentServer::counters() const {
  AgentCounters c;
  static_cast<GuardCounters&>(c) = impl_->guard.counters();
  c.busy_refused = impl_->busy_refused.load();
  return c;
}

}  // namespace mixnas::agent
