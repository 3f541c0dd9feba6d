// hello: the example app relsupd deploys (see relsupd.yaml beside it). A
// small HTTP/1.1 server, standard library and POSIX only: it takes its
// listener from systemd-style socket activation (LISTEN_PID/LISTEN_FDS; the
// fd named "http" in LISTEN_FDNAMES, else the first) or binds 127.0.0.1:$PORT
// (default 8080; 0 picks one), sends READY=1 to $NOTIFY_SOCKET and serves
// `/`, `/version` and `/health` from one poll loop. SIGTERM/SIGINT: stop
// accepting, finish the requests in flight, exit 0. Test knobs:
// HELLO_FAIL_AT_START=1 exits 1 at once; HELLO_NEVER_READY=1 never says READY;
// HELLO_READY_FILE=PATH says READY only once PATH exists (a test decides when).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

namespace {

constexpr size_t kMaxHeaderBytes = 8192;    // request line + headers
constexpr size_t kMaxConnections = 900;     // under the usual 1024 fd limit
constexpr int64_t kIdleTimeoutMs = 30'000;  // a silent client is dropped
constexpr int64_t kDrainTimeoutMs = 4'000;  // under stop_timeout (5s)
constexpr int64_t kFirstRequestGraceMs = 1'000;

volatile sig_atomic_t g_stop = 0;
void OnStopSignal(int) { g_stop = 1; }

void Log(const std::string& line) {
  std::printf("hello: %s\n", line.c_str());
  std::fflush(stdout);  // stdout is a pipe under relsupd: no buffering
}

[[noreturn]] void Die(const std::string& what, int err) {
  std::fprintf(stderr, "hello: %s%s%s\n", what.c_str(), err ? ": " : "",
               err ? std::strerror(err) : "");
  std::exit(1);
}

std::string Env(const char* name, const char* fallback = "") {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}

bool ParseInt(const std::string& s, long* out) {
  const char* end = s.data() + s.size();
  auto [p, ec] = std::from_chars(s.data(), end, *out);
  return !s.empty() && ec == std::errc() && p == end;
}

int64_t NowMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch())
      .count();
}

// The fd passed by socket activation, or -1 when none is meant for us.
int InheritedListener() {
  long pid = 0, count = 0;
  if (!ParseInt(Env("LISTEN_PID"), &pid) || pid != ::getpid()) return -1;
  if (!ParseInt(Env("LISTEN_FDS"), &count) || count < 1 || count > 1000)
    return -1;
  for (int fd = 3; fd < 3 + count; ++fd) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  int chosen = 3;
  std::istringstream names(Env("LISTEN_FDNAMES"));
  std::string name;
  for (int i = 0; i < count && std::getline(names, name, ':'); ++i)
    if (name == "http") chosen = 3 + i;
  int listening = 0;
  socklen_t len = sizeof listening;
  if (::getsockopt(chosen, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) ||
      !listening)
    Die("fd " + std::to_string(chosen) + " is not a listening socket", 0);
  return chosen;
}

int BindLoopback(const std::string& port_text) {
  long port = 0;
  if (!ParseInt(port_text, &port) || port < 0 || port > 65535)
    Die("PORT='" + port_text + "' is not a port number", 0);
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) Die("cannot create a socket", errno);
  // SO_REUSEPORT: the instances of a scale > 1 process type share the port.
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
    Die("cannot bind 127.0.0.1:" + port_text, errno);
  if (::listen(fd, SOMAXCONN) != 0) Die("cannot listen", errno);
  return fd;
}

// "127.0.0.1:8080" for an IPv4 listener, else "fd N".
std::string Describe(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  char host[INET_ADDRSTRLEN];
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0 ||
      a.sin_family != AF_INET ||
      !::inet_ntop(AF_INET, &a.sin_addr, host, sizeof host))
    return "fd " + std::to_string(fd);
  return std::string(host) + ":" + std::to_string(ntohs(a.sin_port));
}

// sd_notify: one datagram to $NOTIFY_SOCKET ('@' = abstract namespace).
// Failures are logged and ignored: readiness is the supervisor's business.
void Notify(const std::string& path, const std::string& message) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof a.sun_path) return;
  std::memcpy(a.sun_path, path.data(), path.size());
  if (path[0] == '@') a.sun_path[0] = '\0';
  const socklen_t len = offsetof(sockaddr_un, sun_path) + path.size();
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || ::sendto(fd, message.data(), message.size(), MSG_NOSIGNAL,
                         reinterpret_cast<sockaddr*>(&a), len) < 0)
    Log("cannot notify " + path + ": " + std::strerror(errno) + ", ignoring");
  if (fd >= 0) ::close(fd);
}

struct Conn {
  explicit Conn(int f) : fd(f), last_active(NowMs()) {}
  int fd;
  std::string in, out;
  bool close_after = false;  // close once `out` is sent; read no more
  bool eof = false;          // the peer is done sending
  bool dead = false;
  int requests = 0;  // answered on this connection
  int64_t last_active;
};

struct Page {
  std::string app, release, process;
};

std::string Lower(std::string s) {
  for (char& ch : s)
    ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

// No control characters but tab (so no stray CR or LF either).
bool Clean(const std::string& s) {
  return std::none_of(s.begin(), s.end(), [](unsigned char ch) {
    return (ch < 0x20 && ch != '\t') || ch == 0x7f;
  });
}

void Respond(Conn& c, int code, const char* reason, const std::string& body,
             bool head_only, bool keep_alive, const char* extra = "") {
  c.out += "HTTP/1.1 " + std::to_string(code) + " " + reason +
           "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\nCache-Control: no-store\r\n" +
           extra + (keep_alive ? "" : "Connection: close\r\n") + "\r\n";
  if (!head_only) c.out += body;
  if (!keep_alive) c.close_after = true;
}

void BadRequest(Conn& c, const std::string& why) {
  Respond(c, 400, "Bad Request", "bad request: " + why + "\n", false, false);
}

// One request head (request line and headers, without the blank line).
void HandleRequest(Conn& c, const std::string& head, const Page& page,
                   bool draining) {
  const size_t eol = head.find("\r\n");
  const std::string line = head.substr(0, eol);
  const size_t sp1 = line.find(' '), sp2 = line.find(' ', sp1 + 1);
  if (!Clean(line) || sp2 == std::string::npos ||
      line.find(' ', sp2 + 1) != std::string::npos)
    return BadRequest(c, "malformed request line");
  const std::string method = line.substr(0, sp1),
                    target = line.substr(sp1 + 1, sp2 - sp1 - 1),
                    version = line.substr(sp2 + 1);
  if (method.empty() || target.empty() || target[0] != '/' ||
      method.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ") !=
          std::string::npos)
    return BadRequest(c, "malformed method or target");
  if (version != "HTTP/1.1" && version != "HTTP/1.0")
    return BadRequest(c, "unsupported version");
  bool keep_alive = version == "HTTP/1.1", has_host = false;
  for (size_t pos = eol; pos != std::string::npos;) {
    const size_t next = head.find("\r\n", pos + 2);
    const std::string h = head.substr(pos + 2, next - pos - 2);  // npos: all
    pos = next;
    const size_t colon = h.find(':');
    if (!Clean(h) || colon == 0 || colon == std::string::npos ||
        h.find_first_of(" \t") < colon)
      return BadRequest(c, "malformed header line");
    const std::string name = Lower(h.substr(0, colon));
    std::string value = Lower(h.substr(colon + 1));
    value.erase(0, value.find_first_not_of(" \t"));
    value.erase(value.find_last_not_of(" \t") + 1);
    has_host = has_host || name == "host";
    if (name == "transfer-encoding")
      return BadRequest(c, "transfer-encoding is not supported");
    if (name == "connection" && value.find("keep-alive") != std::string::npos)
      keep_alive = true;
    if (name == "connection" && value.find("close") != std::string::npos)
      keep_alive = false;
    if (name == "content-length") {
      long n = 0;
      if (!ParseInt(value, &n) || n < 0)
        return BadRequest(c, "bad content-length");
      // Bodies are not read: answer, then close rather than parse one.
      if (n > 0) keep_alive = false;
    }
  }
  if (version == "HTTP/1.1" && !has_host)
    return BadRequest(c, "missing Host header");
  keep_alive = keep_alive && !draining;
  const bool head_only = method == "HEAD";
  if (method != "GET" && !head_only)
    return Respond(c, 405, "Method Not Allowed", "method not allowed\n", false,
                   keep_alive, "Allow: GET, HEAD\r\n");
  const std::string path = target.substr(0, target.find('?'));
  std::string body;  // every page has one
  if (path == "/")
    body = "Hello from " + page.app + "!\nrelease: " + page.release +
           "\nprocess: " + page.process +
           "\npid: " + std::to_string(::getpid()) + "\n";
  if (path == "/version") body = page.release + "\n";
  if (path == "/health") body = "ok\n";
  if (body.empty())
    return Respond(c, 404, "Not Found", "not found\n", head_only, keep_alive);
  Respond(c, 200, "OK", body, head_only, keep_alive);
}

// Answers every complete request in `c.in` (pipelining works).
void Process(Conn& c, const Page& page, bool draining) {
  while (!c.close_after) {
    const size_t end = c.in.find("\r\n\r\n");
    if (end == std::string::npos && c.in.size() <= kMaxHeaderBytes) return;
    if (end == std::string::npos || end + 4 > kMaxHeaderBytes)
      return BadRequest(c, "request head too large");
    const std::string head = c.in.substr(0, end);
    c.in.erase(0, end + 4);
    ++c.requests;
    HandleRequest(c, head, page, draining);
  }
}

void ReadFrom(Conn& c) {
  char buf[16384];
  while (c.in.size() <= kMaxHeaderBytes) {  // else the parser catches up first
    const ssize_t n = ::recv(c.fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) c.in.append(buf, static_cast<size_t>(n));
    if (n == 0) c.eof = true;  // still answer what came
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) c.dead = true;
    if (n <= 0) return;
  }
}

void WriteTo(Conn& c) {
  while (!c.out.empty()) {
    const ssize_t n =
        ::send(c.fd, c.out.data(), c.out.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) c.dead = true;
    if (n < 0) return;
    c.out.erase(0, static_cast<size_t>(n));
  }
  if (c.close_after) c.dead = true;
}

// Reads what came, answers what is complete, sends what it can.
void Service(Conn& c, const Page& page, bool draining) {
  ReadFrom(c);
  if (!c.dead) Process(c, page, draining);
  if (c.eof) c.close_after = true;
  if (!c.dead) WriteTo(c);
}

void Serve(int listener, const Page& page, const std::string& notify,
           const sigset_t& wait_mask) {
  std::vector<Conn> conns;
  std::vector<pollfd> pfds;
  bool draining = false;
  int64_t drain_start = 0, drain_deadline = 0, accept_after = 0;  // EMFILE below
  for (;;) {
    const int64_t now = NowMs();
    if (g_stop && !draining) {
      draining = true;
      drain_start = now;
      drain_deadline = now + kDrainTimeoutMs;
      ::close(listener);
      listener = -1;
      Notify(notify, "STOPPING=1\nSTATUS=stopping");
      Log("stopping, " + std::to_string(conns.size()) + " connections open");
      // Bytes that came before the signal are a request in flight, not idle.
      for (Conn& c : conns) Service(c, page, draining);
    }
    for (Conn& c : conns) {
      // Draining: idle keep-alive connections close now; half-received
      // requests stay, and so does a connection accepted just before the
      // signal whose first request has not arrived yet (for a while): the
      // client sent nothing wrong and must get an answer.
      if (draining && c.in.empty() &&
          (c.requests > 0 || now - drain_start >= kFirstRequestGraceMs))
        c.close_after = true;
      if (c.close_after && c.out.empty()) c.dead = true;
      if (now - c.last_active > kIdleTimeoutMs) c.dead = true;
      if (c.dead) ::close(c.fd);
    }
    conns.erase(std::remove_if(conns.begin(), conns.end(),
                               [](const Conn& c) { return c.dead; }),
                conns.end());
    if (draining && (conns.empty() || now >= drain_deadline)) {
      for (Conn& c : conns) ::close(c.fd);
      Log("stopped");  // past the deadline, what is left is cut
      return;
    }
    pfds.clear();
    for (const Conn& c : conns)
      pfds.push_back({c.fd,
                      static_cast<short>((c.close_after ? 0 : POLLIN) |
                                         (c.out.empty() ? 0 : POLLOUT)),
                      0});
    const bool accepting =
        listener >= 0 && conns.size() < kMaxConnections && now >= accept_after;
    if (accepting) pfds.push_back({listener, POLLIN, 0});
    const timespec tick = {1, 0};  // idle sweep and drain deadline
    if (::ppoll(pfds.data(), pfds.size(), &tick, &wait_mask) < 0) {
      if (errno == EINTR) continue;
      Die("poll failed", errno);
    }
    for (size_t i = 0; i < conns.size(); ++i) {
      Conn& c = conns[i];
      if (pfds[i].revents == 0) continue;
      c.last_active = NowMs();
      Service(c, page, draining);
    }
    if (accepting && (pfds.back().revents & POLLIN)) {
      while (conns.size() < kMaxConnections) {
        int fd =
            ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0 && (errno == EINTR || errno == ECONNABORTED)) continue;
        // Out of fds: the listener stays readable, so pause, not spin.
        if (fd < 0 && (errno == EMFILE || errno == ENFILE))
          accept_after = NowMs() + 200;
        if (fd < 0) break;
        conns.emplace_back(fd);
      }
    }
  }
}

}  // namespace

int main() {
  if (Env("HELLO_FAIL_AT_START") == "1")
    Die("failing at start (HELLO_FAIL_AT_START=1)", 0);
  const Page page{Env("RELSUPD_APP", "hello"),
                  Env("RELSUPD_RELEASE", "unknown"),
                  Env("RELSUPD_PROCESS", "hello")};
  const std::string notify = Env("NOTIFY_SOCKET");

  // SIGTERM/SIGINT stay blocked except inside ppoll, so a stop request can
  // never slip in between the flag check and the wait.
  sigset_t stop_signals, wait_mask;
  sigemptyset(&stop_signals);
  struct sigaction sa {};
  sa.sa_handler = OnStopSignal;
  for (int sig : {SIGTERM, SIGINT}) {
    sigaddset(&stop_signals, sig);
    sigaction(sig, &sa, nullptr);
  }
  sigprocmask(SIG_BLOCK, &stop_signals, &wait_mask);
  for (int sig : {SIGTERM, SIGINT}) sigdelset(&wait_mask, sig);
  signal(SIGPIPE, SIG_IGN);

  int listener = InheritedListener();
  const bool inherited = listener >= 0;
  if (!inherited) listener = BindLoopback(Env("PORT", "8080"));
  if (::fcntl(listener, F_SETFL, ::fcntl(listener, F_GETFL) | O_NONBLOCK) != 0)
    Die("cannot make the listener non-blocking", errno);
  // Whatever we might start must not think these are meant for it.
  for (const char* name :
       {"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "NOTIFY_SOCKET"})
    ::unsetenv(name);

  const std::string where = Describe(listener);
  Log("app " + page.app + " release " + page.release + " process " +
      page.process + " pid " + std::to_string(::getpid()) + " serving on " +
      where + (inherited ? " (socket from LISTEN_FDS)" : " (bound from PORT)"));
  // A test knob: ready only once the test made the file (looked at every
  // 10 ms; a stop request meanwhile ends the process as usual).
  for (const std::string gate = Env("HELLO_READY_FILE");
       !gate.empty() && ::access(gate.c_str(), F_OK) != 0;) {
    const timespec tick{0, 10'000'000};
    ::ppoll(nullptr, 0, &tick, &wait_mask);
    if (g_stop) return 0;
  }
  if (Env("HELLO_NEVER_READY") != "1")  // a test knob
    Notify(notify, "READY=1\nSTATUS=serving on " + where);
  Serve(listener, page, notify, wait_mask);
  return 0;
}
