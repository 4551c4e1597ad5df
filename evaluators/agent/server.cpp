#include "evaluators/agent/server.h"

#include <httplib.h>

#include <atomic>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/log.h"
#include "core/version.h"
#include "deploy/runtime/kernels/conv.h"
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

namespace {

void send_json(httplib::Response& res, int status, const nlohmann::json& body) {
  res.status = status;
  res.set_content(body.dump(), "application/json");
}

void send_error(httplib::Response& res, int status, const std::string& message) {
  send_json(res, status, {{"error", message}, {"status", status}});
}

// Query parameters of /v1/benchmark as MeasureOptions JSON (numbers parsed strictly).
nlohmann::json options_from_params(const httplib::Request& req) {
  nlohmann::json j = nlohmann::json::object();
  for (const char* name : {"runs", "warmup", "threads", "input_seed"}) {
    if (!req.has_param(name)) continue;
    std::string v = req.get_param_value(name);
    size_t used = 0;
    long long x = 0;
    try {
      x = std::stoll(v, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != v.size()) {
      throw Error(std::string("query parameter '") + name + "' must be an integer, got '" + v + "'");
    }
    j[name] = x;
  }
  if (req.has_param("outputs")) {
    std::string v = req.get_param_value("outputs");
    if (v != "0" && v != "1" && v != "true" && v != "false") {
      throw Error("query parameter 'outputs' must be 0 or 1");
    }
    j["outputs"] = (v == "1" || v == "true");
  }
  return j;
}

}  // namespace

struct AgentServer::Impl {
  AgentOptions options;
  httplib::Server server;
  std::mutex measure_mutex;    // one measurement at a time on the device
  std::atomic<int> pending{0}; // running + waiting measurements
  std::thread thread;
  int bound_port = -1;

  explicit Impl(AgentOptions o) : options(std::move(o)) {
    if (options.token.empty()) throw Error("mixnas-agent needs a non-empty token");
    server.set_payload_max_length(options.max_body_bytes);
    server.set_read_timeout(options.read_timeout_s, 0);
    server.set_write_timeout(options.write_timeout_s, 0);
    server.set_keep_alive_max_count(100);

    server.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      if (req.path == "/v1/health") return httplib::Server::HandlerResponse::Unhandled;
      std::string auth = req.get_header_value("Authorization");
      const std::string prefix = "Bearer ";
      bool ok = auth.size() > prefix.size() && auth.compare(0, prefix.size(), prefix) == 0 &&
                constant_time_equal(auth.substr(prefix.size()), options.token);
      if (!ok) {
        res.set_header("WWW-Authenticate", "Bearer");
        send_error(res, 401, auth.empty() ? "missing bearer token" : "wrong bearer token");
        return httplib::Server::HandlerResponse::Handled;
      }
      return httplib::Server::HandlerResponse::Unhandled;
    });

    server.Get("/v1/health", [](const httplib::Request&, httplib::Response& res) {
      send_json(res, 200, {{"status", "ok"}, {"version", MIXNAS_VERSION}});
    });
    server.Get("/v1/info", [this](const httplib::Request&, httplib::Response& res) {
      nlohmann::json info = device_info(options.threads);
      info["kernels"] = rt::conv_kernel_names_for();
      info["max_body_bytes"] = options.max_body_bytes;
      info["max_queue"] = options.max_queue;
      send_json(res, 200, info);
    });
    server.Post("/v1/benchmark", [this](const httplib::Request& req, httplib::Response& res) {
      nlohmann::json opts = options_from_params(req);
      if (!opts.contains("threads")) opts["threads"] = options.threads;
      MeasureOptions mo = MeasureOptions::from_json(opts);
      if (req.body.empty()) throw Error("the request body must be an .mxr package");
      run_measurement(res, [&] { return measure_package(req.body, mo).to_json(); });
    });
    server.Post("/v1/layers", [this](const httplib::Request& req, httplib::Response& res) {
      nlohmann::json body = nlohmann::json::parse(req.body, nullptr, /*allow_exceptions=*/false);
      if (body.is_discarded() || !body.is_object()) {
        throw Error("the request body must be a JSON object {\"layers\": [...], \"options\": {...}}");
      }
      auto layers_it = body.find("layers");
      if (layers_it == body.end() || !layers_it->is_array()) {
        throw Error("field 'layers' must be an array of layer signatures");
      }
      if (static_cast<int>(layers_it->size()) > options.max_layers) {
        throw Error("too many layers in one request (" + std::to_string(layers_it->size()) +
                    " > " + std::to_string(options.max_layers) + "); split the batch");
      }
      nlohmann::json opts = body.value("options", nlohmann::json::object());
      if (!opts.is_object()) throw Error("field 'options' must be an object");
      if (!opts.contains("threads")) opts["threads"] = options.threads;
      MeasureOptions mo = MeasureOptions::from_json(opts);
      std::vector<LayerSignature> sigs;
      for (size_t i = 0; i < layers_it->size(); ++i) {
        try {
          sigs.push_back(LayerSignature::from_json((*layers_it)[i]));
        } catch (const Error& e) {
          throw Error("layers[" + std::to_string(i) + "]: " + e.what());
        }
      }
      run_measurement(res, [&] {
        nlohmann::json rows = nlohmann::json::array();
        for (const auto& s : sigs) rows.push_back(measure_layer(s, mo).to_json());
        return nlohmann::json{{"device_id", device_id()}, {"rows", rows}};
      });
    });

    server.set_exception_handler(
        [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
          try {
            std::rethrow_exception(ep);
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
    server.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
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

  // One measurement at a time: later requests wait in a bounded queue.
  template <typename Fn>
  void run_measurement(httplib::Response& res, Fn&& fn) {
    int before = pending.fetch_add(1);
    struct Leave {
      std::atomic<int>& p;
      ~Leave() { p.fetch_sub(1); }
    } leave{pending};
    if (before > options.max_queue) {
      send_error(res, 503, "busy: " + std::to_string(before) + " measurements queued; retry later");
      return;
    }
    std::lock_guard<std::mutex> lock(measure_mutex);
    send_json(res, 200, fn());
  }
};

AgentServer::AgentServer(AgentOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}

AgentServer::~AgentServer() {
  stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

int AgentServer::bind() {
  auto& o = impl_->options;
  int port = o.port;
  if (port == 0) {
    port = impl_->server.bind_to_any_port(o.host);
    if (port < 0) throw Error("cannot bind " + o.host + " to a free port");
  } else if (!impl_->server.bind_to_port(o.host, port)) {
    throw Error("cannot bind " + o.host + ":" + std::to_string(port) +
                " (in use, or not an address of this machine)");
  }
  impl_->bound_port = port;
  return port;
}

void AgentServer::serve() { impl_->server.listen_after_bind(); }

int AgentServer::start() {
  int port = bind();
  impl_->thread = std::thread([this] { serve(); });
  // listen_after_bind sets is_running before accepting; wait for it so callers can connect.
  for (int i = 0; i < 2000 && !impl_->server.is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return port;
}

void AgentServer::stop() {
  if (impl_->server.is_running()) impl_->server.stop();
}

int AgentServer::port() const { return impl_->bound_port; }

}  // namespace mixnas::agent
