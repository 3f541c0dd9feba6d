#pragma once
// MetricsHttpServer: `GET /metrics` over HTTP on the daemon config's
// `metrics_listen` (off by default), for a Prometheus server to scrape.
//
// A deliberately small HTTP/1.x responder on the loop: it reads one
// request (at most kMaxRequestBytes, within kTimeoutMs), answers it and
// closes the connection. GET or HEAD of /metrics gets the text of
// `render` (metrics.h); another path 404, another method 405, a request
// too big or malformed 400. At most kMaxConnections at once; a connection
// over that is closed at accept. Nothing a client sends can block the loop
// or grow without a limit. Loop thread only.

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>

#include "daemon/base/status.h"
#include "daemon/base/uv_handle.h"

namespace relsupd {

class MetricsHttpServer {
 public:
  // `address`: "tcp://HOST:PORT", as DaemonConfig::metrics_listen holds it
  // (the config reads HOST:PORT and checks it).
  static Result<std::unique_ptr<MetricsHttpServer>> Start(uv_loop_t* loop,
                                                          const std::string& address,
                                                          std::function<std::string()> render);
  // Closes the listener and every connection.
  ~MetricsHttpServer();
  MetricsHttpServer(const MetricsHttpServer&) = delete;
  MetricsHttpServer& operator=(const MetricsHttpServer&) = delete;

  // The port bound (for an address with port 0).
  int port() const { return port_; }

  static constexpr size_t kMaxConnections = 16;
  static constexpr size_t kMaxRequestBytes = 8192;
  static constexpr int64_t kTimeoutMs = 5'000;

  class Connection;

 private:
  MetricsHttpServer(uv_loop_t* loop, std::function<std::string()> render)
      : loop_(loop), render_(std::move(render)) {}
  static void OnConnection(uv_stream_t* server, int status);

  uv_loop_t* loop_;
  std::function<std::string()> render_;
  UvHandle<uv_tcp_t> listener_;
  int port_ = 0;
  std::set<Connection*> connections_;
  friend class Connection;
};

}  // namespace relsupd
