// The example app (examples/hello) as relsupd runs it: the real binary,
// forked and exec'd with a listening socket on fd 3 (LISTEN_PID set in the
// child, as the exec step does) and a NOTIFY_SOCKET bound in a temp dir.
// Loopback only. Every child is killed by pid and reaped on every path.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cctype>
#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tests/support/temp_dir.h"

namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kDeadline = std::chrono::seconds(20);  // generous under ASan

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    reset(std::exchange(o.fd_, -1));
    return *this;
  }
  ~Fd() { reset(); }
  int get() const { return fd_; }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_;
};

using relsupd::support::TempDir;

int PortOf(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
  return ntohs(a.sin_port);
}

Fd ListenLoopback() {
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  REQUIRE(fd.get() >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  REQUIRE(::listen(fd.get(), 128) == 0);
  return fd;
}

// Binds a datagram socket at `path` ('@' = abstract), as relsupd does.
Fd BindNotify(const std::string& path) {
  Fd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  REQUIRE(fd.get() >= 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  REQUIRE(path.size() < sizeof a.sun_path);
  std::memcpy(a.sun_path, path.data(), path.size());
  if (path[0] == '@') a.sun_path[0] = '\0';
  const socklen_t len = offsetof(sockaddr_un, sun_path) + path.size();
  REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), len) == 0);
  return fd;
}

// The next datagram, or nullopt when none comes within `wait`.
std::optional<std::string> ReceiveNotify(int fd,
                                         std::chrono::milliseconds wait) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(wait.count())) != 1) return std::nullopt;
  char buf[4096];
  const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
  if (n < 0) return std::nullopt;
  return std::string(buf, static_cast<size_t>(n));
}

struct Options {
  int listener = -1;  // becomes fd 3 with LISTEN_FDS=1, LISTEN_FDNAMES=http
  bool listen_pid_is_child = true;
  std::vector<std::string> env;
};

// The hello binary running as a child; killed (SIGKILL) and reaped unless
// the test already waited for it (and by PR_SET_PDEATHSIG if the test dies).
class Hello {
 public:
  explicit Hello(const Options& o) {
    int out[2];
    REQUIRE(::pipe2(out, O_CLOEXEC) == 0);
    out_.reset(out[0]);
    Fd write_end(out[1]);
    // Everything the child needs is allocated before fork; it only writes
    // its pid into `listen_pid` (async-signal-safe).
    std::vector<std::string> env = o.env;
    env.push_back("PATH=/usr/bin:/bin");
    std::string listen_pid = "LISTEN_PID=" + std::string(16, '\0');
    if (o.listener >= 0) {
      env.push_back("LISTEN_FDS=1");
      env.push_back("LISTEN_FDNAMES=http");
    }
    std::vector<char*> envp;
    for (std::string& e : env) envp.push_back(e.data());
    if (o.listener >= 0) envp.push_back(listen_pid.data());
    envp.push_back(nullptr);
    char bin[] = HELLO_BIN;
    char* argv[] = {bin, nullptr};
    const pid_t parent = ::getpid();
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      // Should the test die without unwinding (an abort, a sanitizer
      // report), hello dies with it.
      if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || ::getppid() != parent)
        ::_exit(127);
      ::dup2(write_end.get(), 1);
      ::dup2(write_end.get(), 2);
      if (o.listener >= 0) {
        if (o.listener == 3)
          ::fcntl(3, F_SETFD, 0);
        else
          ::dup2(o.listener, 3);  // the copy is not close-on-exec
        char* p = listen_pid.data() + std::strlen("LISTEN_PID=");
        pid_t pid = o.listen_pid_is_child ? ::getpid() : 1;
        char digits[16];
        int n = 0;
        do digits[n++] = static_cast<char>('0' + pid % 10);
        while ((pid /= 10) > 0);
        while (n > 0) *p++ = digits[--n];
        *p = '\0';
      }
      ::execve(bin, argv, envp.data());
      ::_exit(127);
    }
  }
  ~Hello() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  pid_t pid() const { return pid_; }

  // Waits for the exit; returns the wait status, or -1 at the deadline.
  int Wait(std::chrono::milliseconds wait = kDeadline) {
    const auto end = Clock::now() + wait;
    while (Clock::now() < end) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return status;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return -1;
  }

  // Reads the child's stdout+stderr until it contains `text`; returns it all.
  std::string WaitForOutput(const std::string& text) {
    const auto end = Clock::now() + kDeadline;
    while (output_.find(text) == std::string::npos && Clock::now() < end) {
      pollfd p{out_.get(), POLLIN, 0};
      if (::poll(&p, 1, 100) != 1) continue;
      char buf[4096];
      const ssize_t n = ::read(out_.get(), buf, sizeof buf);
      if (n <= 0) break;
      output_.append(buf, static_cast<size_t>(n));
    }
    return output_;
  }

 private:
  pid_t pid_ = -1;
  Fd out_;
  std::string output_;
};

Fd Connect(int port) {
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  REQUIRE(fd.get() >= 0);
  timeval tv{10, 0};  // no read may hang the test
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  return fd;
}

void SendAll(int fd, const std::string& data) {
  for (size_t done = 0; done < data.size();) {
    const ssize_t n =
        ::send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    REQUIRE(n > 0);
    done += static_cast<size_t>(n);
  }
}

struct Response {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
};

// One client connection with its read buffer (responses may arrive together).
class Client {
 public:
  explicit Client(int port) : fd_(Connect(port)) {}
  int fd() const { return fd_.get(); }
  void Send(const std::string& data) { SendAll(fd_.get(), data); }

  // Reads one response (to HEAD: no body); nullopt if the connection ends
  // first.
  std::optional<Response> Read(bool head_request = false) {
    size_t end;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos)
      if (!Fill()) return std::nullopt;
    Response r;
    const std::string head = buf_.substr(0, end);
    buf_.erase(0, end + 4);
    r.status = std::atoi(head.substr(9, 3).c_str());
    for (size_t pos = head.find("\r\n"); pos != std::string::npos;) {
      const size_t next = head.find("\r\n", pos + 2);
      const std::string h = head.substr(pos + 2, next - pos - 2);
      const size_t colon = h.find(':');
      std::string name = h.substr(0, colon);
      for (char& ch : name)
        ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      r.headers[name] = h.substr(h.find_first_not_of(' ', colon + 1));
      pos = next;
    }
    const size_t length =
        head_request ? 0 : std::stoul(r.headers.at("content-length"));
    while (buf_.size() < length)
      if (!Fill()) return std::nullopt;
    r.body = buf_.substr(0, length);
    buf_.erase(0, length);
    return r;
  }

  Response Get(const std::string& path) {
    Send("GET " + path + " HTTP/1.1\r\nHost: test\r\n\r\n");
    std::optional<Response> r = Read();
    REQUIRE(r.has_value());
    return *r;
  }

  // True when the server closed the connection (nothing more to read).
  bool Closed() { return buf_.empty() && !Fill(); }

 private:
  bool Fill() {
    char tmp[4096];
    const ssize_t n = ::recv(fd_.get(), tmp, sizeof tmp, 0);
    if (n <= 0) return false;
    buf_.append(tmp, static_cast<size_t>(n));
    return true;
  }
  Fd fd_;
  std::string buf_;
};

const std::vector<std::string> kReleaseEnv = {
    "RELSUPD_APP=hello", "RELSUPD_RELEASE=v42", "RELSUPD_PROCESS=web.1"};

// hello on an inherited listener, READY=1 received. The test's own copy of
// the listener is closed once hello has it, so that hello's close refuses
// new connections.
struct Running {
  TempDir dir;
  Fd notify = BindNotify(dir.path() + "/notify");
  int port = 0;
  std::optional<Hello> hello;

  explicit Running(std::vector<std::string> env = kReleaseEnv) {
    Fd listener = ListenLoopback();
    port = PortOf(listener.get());
    env.push_back("NOTIFY_SOCKET=" + dir.path() + "/notify");
    hello.emplace(Options{listener.get(), true, env});
    listener.reset();
    std::optional<std::string> ready = ReceiveNotify(notify.get(), kDeadline);
    REQUIRE(ready.has_value());
    INFO(*ready);
    CHECK(ready->find("READY=1") != std::string::npos);
    CHECK(ready->find("STATUS=") != std::string::npos);
  }
};

TEST_CASE("hello serves its pages on the socket it is given") {
  Running r;
  CHECK(r.hello->WaitForOutput("serving on").find("socket from LISTEN_FDS") !=
        std::string::npos);
  Client c(r.port);
  Response v = c.Get("/version");
  CHECK(v.status == 200);
  CHECK(v.body == "v42\n");
  Response home = c.Get("/");
  CHECK(home.status == 200);
  CHECK(home.body.find("web.1") != std::string::npos);
  CHECK(home.body.find("v42") != std::string::npos);
  CHECK(home.body.find("hello") != std::string::npos);
  Response h = c.Get("/health?probe=1");
  CHECK(h.status == 200);
  CHECK(h.body == "ok\n");
  CHECK(c.Get("/nope").status == 404);
  c.Send(
      "HEAD /version HTTP/1.1\r\nHost: t\r\n\r\nGET /version HTTP/1.1\r\nHost: "
      "t\r\n\r\n");
  std::optional<Response> head = c.Read(/*head_request=*/true);
  REQUIRE(head.has_value());
  CHECK(head->headers.at("content-length") == "4");  // GET's, with no body
  std::optional<Response> after = c.Read();
  REQUIRE(after.has_value());
  CHECK(after->body == "v42\n");
  c.Send("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
  std::optional<Response> post = c.Read();
  REQUIRE(post.has_value());
  CHECK(post->status == 405);
  CHECK(c.Get("/version").body == "v42\n");  // still kept alive
}

TEST_CASE("hello answers a malformed request with 400 and closes") {
  using namespace std::string_literals;
  Running r;
  const std::vector<std::string> bad = {
      "GARBAGE\r\n\r\n",
      "GET / HTTP/1.1\r\n\r\n",  // HTTP/1.1 without Host
      "GET  / HTTP/1.1\r\nHost: t\r\n\r\n",
      "get / HTTP/1.1\r\nHost: t\r\n\r\n",
      "GET / HTTP/2.0\r\nHost: t\r\n\r\n",
      "GET nope HTTP/1.1\r\nHost: t\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: t\r\nno colon\r\n\r\n",
      "GET / HTTP/1.1\r\nHost : t\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: t\0x\r\n\r\n"s,
      "GET / HTTP/1.1\nHost: t\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n",
      "GET /" + std::string(9000, 'a') + " HTTP/1.1\r\nHost: t\r\n\r\n",
      std::string(9000, 'x'),  // no end of head in sight
  };
  for (const std::string& request : bad) {
    INFO(request.substr(0, 60));
    Client c(r.port);
    c.Send(request);
    std::optional<Response> resp = c.Read();
    REQUIRE(resp.has_value());
    CHECK(resp->status == 400);
    CHECK(resp->headers["connection"] == "close");
    CHECK(c.Closed());
  }
  // Random bytes: an answer or a close, never a crash.
  std::mt19937 rng(42);
  for (int i = 0; i < 200; ++i) {
    std::string junk(rng() % 300, '\0');
    for (char& ch : junk) ch = static_cast<char>(rng() % 256);
    Client c(r.port);
    c.Send(junk + "\r\n\r\n");
    ::shutdown(c.fd(), SHUT_WR);
    while (c.Read().has_value()) {
    }
  }
  Client c(r.port);
  CHECK(c.Get("/health").status == 200);
  ::kill(r.hello->pid(), SIGTERM);
  CHECK(r.hello->Wait() == 0);  // exit status 0, no signal
}

TEST_CASE("hello keeps a connection alive for 200 sequential requests") {
  Running r;
  Client c(r.port);
  for (int i = 0; i < 200; ++i) {
    Response resp = c.Get(i % 2 ? "/version" : "/health");
    REQUIRE(resp.status == 200);
    REQUIRE(resp.headers.count("connection") == 0);
  }
  // Pipelined: ten requests in one write, ten answers in order.
  std::string ten;
  for (int i = 0; i < 10; ++i)
    ten += "GET /version HTTP/1.1\r\nHost: t\r\n\r\n";
  c.Send(ten);
  for (int i = 0; i < 10; ++i) {
    std::optional<Response> resp = c.Read();
    REQUIRE(resp.has_value());
    CHECK(resp->body == "v42\n");
  }
}

TEST_CASE("hello serves 50 concurrent connections") {
  Running r;
  std::vector<Client> clients;
  for (int i = 0; i < 50; ++i) clients.emplace_back(r.port);
  // Every connection holds a half-sent request: none may block the others.
  for (Client& c : clients) c.Send("GET /version HTTP/1.1\r\n");
  for (Client& c : clients) c.Send("Host: t\r\n\r\n");
  for (Client& c : clients) {
    std::optional<Response> resp = c.Read();
    REQUIRE(resp.has_value());
    CHECK(resp->body == "v42\n");
  }
  // And from 50 threads at once, keep-alive, 20 requests each.
  std::vector<std::thread> threads;
  std::vector<int> ok(50, 0);
  for (int t = 0; t < 50; ++t)
    threads.emplace_back([&, t] {
      // No Catch2 assertion off the main thread: count, check after join.
      Client& c = clients[static_cast<size_t>(t)];
      const std::string get = "GET /health HTTP/1.1\r\nHost: t\r\n\r\n";
      try {
        for (int i = 0; i < 20; ++i) {
          if (::send(c.fd(), get.data(), get.size(), MSG_NOSIGNAL) !=
              static_cast<ssize_t>(get.size()))
            return;
          std::optional<Response> resp = c.Read();
          if (resp && resp->status == 200) ++ok[static_cast<size_t>(t)];
        }
      } catch (...) {
      }
    });
  for (std::thread& t : threads) t.join();
  for (int n : ok) CHECK(n == 20);
}

TEST_CASE("on SIGTERM hello finishes the request in flight and exits 0") {
  Running r;
  Client idle(r.port);
  CHECK(idle.Get("/health").status == 200);
  Client busy(r.port);
  CHECK(busy.Get("/health").status == 200);           // accepted for sure
  busy.Send("GET /version HTTP/1.1\r\nHost: t\r\n");  // half a request
  // Connected, but its first request comes only after the signal.
  Client late(r.port);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // accepted
  ::kill(r.hello->pid(), SIGTERM);
  r.hello->WaitForOutput("stopping");
  std::optional<std::string> stopping =
      ReceiveNotify(r.notify.get(), std::chrono::seconds(5));
  REQUIRE(stopping.has_value());
  CHECK(stopping->find("STOPPING=1") != std::string::npos);
  CHECK(idle.Closed());  // idle keep-alive connections are closed
  // No new connections: hello closed the listener (ours is closed too).
  Fd fresh(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(r.port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  CHECK(::connect(fresh.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0);
  CHECK(errno == ECONNREFUSED);
  CHECK(r.hello->Wait(std::chrono::milliseconds(300)) == -1);  // still draining
  std::optional<Response> late_resp = late.Get("/version");
  REQUIRE(late_resp.has_value());
  CHECK(late_resp->status == 200);
  busy.Send("\r\n");
  std::optional<Response> resp = busy.Read();
  REQUIRE(resp.has_value());
  CHECK(resp->status == 200);
  CHECK(resp->body == "v42\n");
  CHECK(resp->headers["connection"] == "close");
  CHECK(busy.Closed());
  const int status = r.hello->Wait();
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(r.hello->WaitForOutput("stopped").find("stopped") != std::string::npos);
}

TEST_CASE("without LISTEN_FDS for its pid hello binds $PORT itself") {
  Fd notify = BindNotify("@relsupd-test-hello-" + std::to_string(::getpid()));
  std::vector<std::string> env = kReleaseEnv;
  env.push_back("PORT=0");  // any free port; hello logs the one it got
  env.push_back("NOTIFY_SOCKET=@relsupd-test-hello-" +
                std::to_string(::getpid()));
  Options o{-1, true, env};
  Fd not_ours;
  SECTION("no LISTEN_FDS at all") {}
  SECTION("LISTEN_FDS meant for another pid") {
    not_ours = ListenLoopback();
    o.listener = not_ours.get();
    o.listen_pid_is_child = false;
  }
  Hello hello(o);
  REQUIRE(ReceiveNotify(notify.get(), kDeadline).value_or("").find("READY=1") !=
          std::string::npos);
  const std::string out = hello.WaitForOutput("(bound from PORT)");
  INFO(out);
  const size_t at = out.find("serving on 127.0.0.1:");
  REQUIRE(at != std::string::npos);
  const int port =
      std::atoi(out.c_str() + at + std::strlen("serving on 127.0.0.1:"));
  REQUIRE(port > 0);
  CHECK(port != (not_ours.get() >= 0 ? PortOf(not_ours.get()) : -1));
  Client c(port);
  CHECK(c.Get("/version").body == "v42\n");
}

TEST_CASE("HELLO_FAIL_AT_START exits 1 without READY=1") {
  TempDir dir;
  Fd notify = BindNotify(dir.path() + "/notify");
  Fd listener = ListenLoopback();
  std::vector<std::string> env = kReleaseEnv;
  env.push_back("HELLO_FAIL_AT_START=1");
  env.push_back("NOTIFY_SOCKET=" + dir.path() + "/notify");
  Hello hello(Options{listener.get(), true, env});
  const int status = hello.Wait();
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 1);
  // Anything it sent was queued before it exited.
  CHECK_FALSE(ReceiveNotify(notify.get(), std::chrono::milliseconds(0)));
}

TEST_CASE("HELLO_NEVER_READY serves but never says READY=1") {
  TempDir dir;
  Fd notify = BindNotify(dir.path() + "/notify");
  Fd listener = ListenLoopback();
  const int port = PortOf(listener.get());
  std::vector<std::string> env = kReleaseEnv;
  env.push_back("HELLO_NEVER_READY=1");
  env.push_back("NOTIFY_SOCKET=" + dir.path() + "/notify");
  Hello hello(Options{listener.get(), true, env});
  Client c(port);
  CHECK(c.Get("/health").status == 200);  // serving, so READY=1 was skipped
  CHECK_FALSE(ReceiveNotify(notify.get(), std::chrono::milliseconds(0)));
}

}  // namespace
