#include "daemon/control/metrics_http.h"

#include <spdlog/spdlog.h>

#include <string_view>

#include "daemon/base/socket_address.h"
#include "daemon/control/metrics.h"

namespace relsupd {

// One client connection. It owns its tcp handle and timer and frees itself
// once both are closed.
class MetricsHttpServer::Connection {
 public:
  explicit Connection(MetricsHttpServer* server) : server_(server) {
    uv_tcp_init(server->loop_, &tcp_);
    uv_timer_init(server->loop_, &timer_);
    tcp_.data = this;
    timer_.data = this;
    write_.data = this;
  }
  uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(&tcp_); }

  void Begin() {
    uv_timer_start(&timer_, [](uv_timer_t* t) { static_cast<Connection*>(t->data)->Close(); },
                   static_cast<uint64_t>(kTimeoutMs), 0);
    if (uv_read_start(stream(), &OnAlloc, &OnRead) != 0) Close();
  }

  // Closes the connection (once); the server forgets it.
  void Close() {
    if (closing_) return;
    closing_ = true;
    if (server_ != nullptr) server_->connections_.erase(this);
    server_ = nullptr;
    auto on_close = [](uv_handle_t* h) {
      auto* self = static_cast<Connection*>(h->data);
      if (--self->open_handles_ == 0) delete self;
    };
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), on_close);
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), on_close);
  }
  // The server goes away first: the connection only closes.
  void Detach() {
    server_ = nullptr;
    Close();
  }

 private:
  static void OnAlloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
    auto* self = static_cast<Connection*>(h->data);
    buf->base = self->buf_;
    buf->len = sizeof(self->buf_);
  }
  static void OnRead(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
    auto* self = static_cast<Connection*>(s->data);
    if (self->closing_ || self->answered_) return;
    if (n < 0) return self->Close();
    self->request_.append(buf->base, static_cast<size_t>(n));
    const size_t end = self->request_.find("\r\n\r\n");
    if (end == std::string::npos) {
      if (self->request_.size() > kMaxRequestBytes) self->Answer(400, "request too large\n");
      return;
    }
    self->Handle(std::string_view(self->request_).substr(0, end));
  }

  void Handle(std::string_view head) {
    // "GET /metrics HTTP/1.1"
    const std::string_view line = head.substr(0, head.find("\r\n"));
    const size_t sp1 = line.find(' ');
    const size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos || !line.substr(sp2 + 1).starts_with("HTTP/1."))
      return Answer(400, "bad request\n");
    const std::string_view method = line.substr(0, sp1);
    std::string_view path = line.substr(sp1 + 1, sp2 - sp1 - 1);
    path = path.substr(0, path.find('?'));
    if (path != "/metrics") return Answer(404, "not found: try /metrics\n");
    if (method != "GET" && method != "HEAD") return Answer(405, "use GET\n");
    head_only_ = method == "HEAD";
    Answer(200, server_ != nullptr ? server_->render_() : std::string());
  }

  void Answer(int code, std::string body) {
    answered_ = true;
    uv_read_stop(stream());
    const char* reason = code == 200   ? "OK"
                         : code == 404 ? "Not Found"
                         : code == 405 ? "Method Not Allowed"
                                       : "Bad Request";
    response_ = "HTTP/1.1 " + std::to_string(code) + " " + reason + "\r\nContent-Type: " +
                (code == 200 ? std::string(kMetricsContentType) : "text/plain; charset=utf-8") +
                "\r\nContent-Length: " + std::to_string(body.size()) +
                (code == 405 ? "\r\nAllow: GET, HEAD" : "") + "\r\nConnection: close\r\n\r\n";
    if (!head_only_) response_ += body;
    uv_buf_t b = uv_buf_init(response_.data(), static_cast<unsigned>(response_.size()));
    // The timeout still runs: a client that does not read is cut off.
    if (uv_write(&write_, stream(), &b, 1,
                 [](uv_write_t* w, int) { static_cast<Connection*>(w->data)->Close(); }) != 0)
      Close();
  }

  MetricsHttpServer* server_;
  uv_tcp_t tcp_;
  uv_timer_t timer_;
  uv_write_t write_;
  int open_handles_ = 2;
  bool closing_ = false;
  bool answered_ = false;
  bool head_only_ = false;
  char buf_[2048];
  std::string request_;
  std::string response_;
};

Result<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::Start(
    uv_loop_t* loop, const std::string& address, std::function<std::string()> render) {
  ASSIGN_OR_RETURN(SocketAddress a, ParseSocketAddress(address));
  if (a.kind != SocketAddress::Kind::kTcp)
    return InvalidArgument("metrics_listen '" + address + "' is not a tcp address");
  sockaddr_storage ss{};
  if (uv_ip4_addr(a.host.c_str(), a.port, reinterpret_cast<sockaddr_in*>(&ss)) != 0 &&
      uv_ip6_addr(a.host.c_str(), a.port, reinterpret_cast<sockaddr_in6*>(&ss)) != 0)
    return InvalidArgument("metrics_listen '" + address + "': '" + a.host +
                           "' is not an IP address");
  std::unique_ptr<MetricsHttpServer> s(new MetricsHttpServer(loop, std::move(render)));
  uv_tcp_init(loop, s->listener_.get());
  s->listener_->data = s.get();
  int rc = uv_tcp_bind(s->listener_.get(), reinterpret_cast<const sockaddr*>(&ss), 0);
  if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(s->listener_.get()), 64, &OnConnection);
  if (rc != 0)
    return Status(StatusCode::kIoError,
                  "cannot listen for metrics on " + address + ": " + uv_strerror(rc));
  sockaddr_storage bound{};
  int len = sizeof(bound);
  if (uv_tcp_getsockname(s->listener_.get(), reinterpret_cast<sockaddr*>(&bound), &len) == 0)
    s->port_ = ntohs(bound.ss_family == AF_INET6
                         ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                         : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  return s;
}

MetricsHttpServer::~MetricsHttpServer() {
  listener_->data = nullptr;
  for (Connection* c : std::set<Connection*>(connections_)) c->Detach();
}

void MetricsHttpServer::OnConnection(uv_stream_t* listener, int status) {
  auto* self = static_cast<MetricsHttpServer*>(listener->data);
  if (self == nullptr || status != 0) return;
  auto* c = new Connection(self);
  if (uv_accept(listener, c->stream()) != 0) {
    c->Detach();
    return;
  }
  if (self->connections_.size() >= kMaxConnections) {
    spdlog::debug("metrics: {} connections already, closing a new one", kMaxConnections);
    c->Detach();
    return;
  }
  self->connections_.insert(c);
  c->Begin();
}

}  // namespace relsupd
