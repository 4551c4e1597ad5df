#include "evaluators/agent/guard.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <linux/tcp.h>  // TCP_INFO with tcpi_bytes_received (glibc's netinet/tcp.h lacks it)
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <vector>

namespace mixnas::agent {
namespace {

using Clock = std::chrono::steady_clock;

struct Accepted {
  int fd;
  std::string peer;
  uint64_t bytes_received;
};

// "ip:port" of a socket address, or "" for other families.
std::string address_string(const sockaddr_storage& a, int* port) {
  char ip[INET6_ADDRSTRLEN] = {0};
  if (a.ss_family == AF_INET) {
    const auto& v4 = reinterpret_cast<const sockaddr_in&>(a);
    inet_ntop(AF_INET, &v4.sin_addr, ip, sizeof ip);
    *port = ntohs(v4.sin_port);
  } else if (a.ss_family == AF_INET6) {
    const auto& v6 = reinterpret_cast<const sockaddr_in6&>(a);
    inet_ntop(AF_INET6, &v6.sin6_addr, ip, sizeof ip);
    *port = ntohs(v6.sin6_port);
  } else {
    return "";
  }
  return std::string(ip) + ":" + std::to_string(*port);
}

std::string peer_key(const std::string& ip, int port) {
  return ip + ":" + std::to_string(port);
}

// The peer of `fd` when it is a connection accepted on `port`, else "".
std::string accepted_peer(int fd, int port) {
  sockaddr_storage local{}, peer{};
  socklen_t len = sizeof local;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) != 0) return "";
  int local_port = -1, peer_port = -1;
  if (address_string(local, &local_port).empty() || local_port != port) return "";
  len = sizeof peer;
  // The listening socket has no peer (ENOTCONN), so it is never taken for a connection.
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) != 0) return "";
  return address_string(peer, &peer_port);
}

uint64_t bytes_received(int fd) {
  tcp_info info{};
  socklen_t len = sizeof info;
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0) return 0;
  return info.tcpi_bytes_received;
}

// Every connection accepted on `port` that this process holds.
std::vector<Accepted> accepted_connections(int port) {
  std::vector<Accepted> out;
  DIR* dir = opendir("/proc/self/fd");
  if (!dir) return out;
  int own = dirfd(dir);
  while (dirent* e = readdir(dir)) {
    char* end = nullptr;
    long fd = std::strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end != '\0' || fd == own) continue;
    std::string peer = accepted_peer(static_cast<int>(fd), port);
    if (!peer.empty())
      out.push_back({static_cast<int>(fd), peer, bytes_received(static_cast<int>(fd))});
  }
  closedir(dir);
  return out;
}

// Shuts the connection down if `fd` still is the one from `peer` (the number may be reused).
bool shut(int fd, const std::string& peer, int port) {
  if (fd < 0 || accepted_peer(fd, port) != peer) return false;
  return shutdown(fd, SHUT_RDWR) == 0;
}

}  // namespace

ConnectionGuard::ConnectionGuard(GuardOptions options) : options_(options) {}

ConnectionGuard::~ConnectionGuard() {
  stop();
}

void ConnectionGuard::start(int port) {
  port_ = port;
  stopping_ = false;
  thread_ = std::thread([this] { run(); });
}

void ConnectionGuard::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ConnectionGuard::run() {
  auto interval = std::chrono::duration<double>(options_.scan_interval_s);
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stopping_) {
    lock.unlock();
    scan_once();
    lock.lock();
    wake_.wait_for(lock, interval, [this] { return stopping_; });
  }
}

ConnectionGuard::Conn& ConnectionGuard::conn_locked(const std::string& peer) {
  auto [it, fresh] = conns_.try_emplace(peer);
  if (fresh) {
    it->second.since = Clock::now();
    it->second.scan = scan_count_;
  }
  return it->second;
}

void ConnectionGuard::scan_once() {
  std::vector<Accepted> live = accepted_connections(port_);
  const auto now = Clock::now();
  const auto timeout = std::chrono::duration<double>(options_.header_timeout_s);
  std::lock_guard<std::mutex> lock(mutex_);
  const uint64_t scan = ++scan_count_;
  for (const Accepted& a : live) {
    auto [it, fresh] = conns_.try_emplace(a.peer);
    Conn& c = it->second;
    if (!fresh && c.fd >= 0 && c.fd != a.fd) c = Conn{};  // the peer's earlier connection is gone
    if (fresh || c.fd < 0) {
      if (!c.busy) c.since = now;  // a request_started entry keeps its state
      c.bytes_at_boundary = 0;
    }
    c.fd = a.fd;
    c.scan = scan;
    if (c.busy || c.dropped) continue;
    if (now - c.since > timeout) {
      c.dropped = shut(c.fd, a.peer, port_);
      counters_.slow_dropped += c.dropped;
    } else if (static_cast<int64_t>(a.bytes_received - c.bytes_at_boundary) >
               options_.max_header_bytes) {
      c.dropped = shut(c.fd, a.peer, port_);
      counters_.flood_dropped += c.dropped;
    }
  }
  // Past the connection limit: the newest idle connections go first.
  std::vector<std::pair<std::string, Conn*>> open;
  for (auto& [peer, c] : conns_) {
    if (c.scan == scan && !c.dropped) open.emplace_back(peer, &c);
  }
  int excess = static_cast<int>(open.size()) - options_.max_connections;
  if (excess > 0) {
    std::sort(open.begin(), open.end(),
              [](const auto& a, const auto& b) { return a.second->since > b.second->since; });
    for (auto& [peer, c] : open) {
      if (excess <= 0) break;
      if (c->busy) continue;
      c->dropped = shut(c->fd, peer, port_);
      counters_.excess_dropped += c->dropped;
      excess -= c->dropped;
    }
  }
  // Forget connections that are gone (entries made by request_started wait for one scan).
  for (auto it = conns_.begin(); it != conns_.end();) {
    bool gone = it->second.scan + 1 < scan || (it->second.fd >= 0 && it->second.scan != scan);
    it = gone ? conns_.erase(it) : std::next(it);
  }
}

void ConnectionGuard::request_started(const std::string& ip, int port) {
  std::lock_guard<std::mutex> lock(mutex_);
  conn_locked(peer_key(ip, port)).busy = true;
}

void ConnectionGuard::request_done(const std::string& ip, int port) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = conns_.find(peer_key(ip, port));
  if (it == conns_.end()) return;
  Conn& c = it->second;
  c.busy = false;
  c.since = Clock::now();
  // The next request head is counted from here (body bytes are the body reader's business).
  c.bytes_at_boundary = c.fd >= 0 ? bytes_received(c.fd) : 0;
}

void ConnectionGuard::drop_now(const std::string& ip, int port) {
  const std::string peer = peer_key(ip, port);
  int fd = -1;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = conns_.find(peer);
    if (it != conns_.end()) fd = it->second.fd;
  }
  if (fd < 0) {
    for (const Accepted& a : accepted_connections(port_)) {
      if (a.peer == peer) fd = a.fd;
    }
  }
  bool dropped = shut(fd, peer, port_);
  std::lock_guard<std::mutex> lock(mutex_);
  Conn& c = conn_locked(peer);
  c.dropped = c.dropped || dropped;
  counters_.refused_dropped += dropped;
}

GuardCounters ConnectionGuard::counters() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return counters_;
}

}  // namespace mixnas::agent
