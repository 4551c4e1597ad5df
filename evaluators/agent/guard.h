#pragma once
// Connection guard of mixnas-agent: what cpp-httplib 0.11 (Debian's) does not bound by itself.
// Its read timeout restarts with every byte, so a client sending one header byte per second holds
// a worker thread forever; it accepts any number of connections into an unbounded queue; and it
// offers no way to close a connection from a handler. The guard watches the server's accepted
// sockets from a thread of its own (they are found through /proc/self/fd, since httplib does not
// hand them out) and shuts down:
//   - a connection whose request head has not arrived `header_timeout_s` after it was accepted or
//     after its previous response (slow or idle clients),
//   - one that sends more than `max_header_bytes` before its request head is complete,
//   - the newest connections past `max_connections`,
//   - a connection the server refused a request on (drop_after_response), so that a body left
//     unread is never parsed as the next request.
// shutdown(2) wakes the worker blocked on the socket; httplib then closes it as usual.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>

namespace mixnas::agent {

struct GuardOptions {
  double header_timeout_s = 10;
  int max_connections = 128;
  int64_t max_header_bytes = 1 << 20;
  double scan_interval_s = 0.05;
};

struct GuardCounters {
  int64_t slow_dropped = 0;     // header deadline passed
  int64_t excess_dropped = 0;   // past max_connections
  int64_t flood_dropped = 0;    // too many bytes before the request head was complete
  int64_t refused_dropped = 0;  // closed after a refusal
};

class ConnectionGuard {
 public:
  explicit ConnectionGuard(GuardOptions options);
  ~ConnectionGuard();
  ConnectionGuard(const ConnectionGuard&) = delete;
  ConnectionGuard& operator=(const ConnectionGuard&) = delete;

  // Watches the connections accepted on `port` (the server's bound port) until stop().
  void start(int port);
  void stop();

  // The request head of the connection from peer ip:port is complete: no header deadline while
  // the request is handled (the body reader keeps its own deadline).
  void request_started(const std::string& ip, int port);
  // Its response is written: the next request head's deadline starts now.
  void request_done(const std::string& ip, int port);
  // Shuts the connection from ip:port down now (its response already written).
  void drop_now(const std::string& ip, int port);
  GuardCounters counters() const;

 private:
  struct Conn {
    int fd = -1;
    bool busy = false;
    bool dropped = false;
    std::chrono::steady_clock::time_point since;  // accepted, or last response written
    uint64_t bytes_at_boundary = 0;               // bytes received up to `since`
    uint64_t scan = 0;                            // last scan that saw it
  };
  void run();
  void scan_once();
  Conn& conn_locked(const std::string& peer);

  GuardOptions options_;
  int port_ = -1;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
  std::map<std::string, Conn> conns_;  // by peer "ip:port"
  uint64_t scan_count_ = 0;
  GuardCounters counters_;
};

}  // namespace mixnas::agent
