#include "cli/client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "daemon/base/fd_passing.h"

namespace relsupd {
namespace {
constexpr size_t kMaxResponseBytes = 256 << 20;
}

std::string DefaultSocketPath() {
  const char* env = std::getenv("RELSUPD_SOCKET");
  return env && *env ? env : "/run/relsupd/relsupd.sock";
}

Status SendWithFds(int socket, std::string_view data, const std::vector<int>& fds) {
  // One byte: a stream socket sends it whole, so the count needs no check.
  Result<size_t> first =
      SendFds(socket, data.substr(0, 1), fds, MSG_NOSIGNAL, "to relsupd");
  if (!first.ok()) return first.status();
  // The rest as plain data; MSG_NOSIGNAL: a peer gone is an error, never
  // a SIGPIPE.
  data.remove_prefix(1);
  while (!data.empty()) {
    ssize_t n = ::send(socket, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno("cannot write request", errno);
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Status::Ok();
}

Result<Client> Client::Connect(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path)
    return InvalidArgument("socket path '" + path + "' is too long");
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return Status::FromErrno("cannot create socket", errno);
  int rc;
  do {
    rc = ::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    const int err = errno;
    const char* hint = (err == EACCES || err == EPERM)
                           ? " (not in the socket's group?)"
                           : " (is the daemon running?)";
    return Status(StatusCode::kUnavailable,
                  "cannot reach relsupd at '" + path + "': " + std::strerror(err) + hint,
                  err);
  }
  return Client(std::move(fd), path);
}

Result<std::string> Client::ReadLine(const std::function<void()>& tick) {
  for (;;) {
    size_t nl = buf_.find('\n');
    if (nl != std::string::npos) {
      std::string line = buf_.substr(0, nl);
      buf_.erase(0, nl + 1);
      return line;
    }
    if (buf_.size() > kMaxResponseBytes)
      return Status(StatusCode::kUnavailable, "response from relsupd is too large");
    if (tick) {
      pollfd p{fd_.get(), POLLIN, 0};
      int ready = ::poll(&p, 1, 100);
      if (ready == 0 || (ready < 0 && errno == EINTR)) {
        tick();
        continue;
      }
    }
    char chunk[65536];
    ssize_t n = ::read(fd_.get(), chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      return Status(StatusCode::kUnavailable,
                    "relsupd at '" + path_ + "' closed the connection" +
                        (n < 0 ? std::string(": ") + std::strerror(errno) : ""));
    buf_.append(chunk, static_cast<size_t>(n));
  }
}

Status Client::WriteFailed(const Status& write) const {
  // The daemon may have refused the connection with a line saying why
  // (too many connections) and closed it before the request was written.
  char chunk[4096];
  const ssize_t n = ::recv(fd_.get(), chunk, sizeof chunk, MSG_DONTWAIT);
  if (n > 0) {
    std::string_view got(chunk, static_cast<size_t>(n));
    rpc::Json r = rpc::Json::parse(got.substr(0, got.find('\n')), nullptr, false);
    if (r.is_object() && r.contains("error") && r["error"].is_object())
      return rpc::StatusFromError(r["error"]);
  }
  return Status(StatusCode::kUnavailable, write.message());
}

Result<std::string> Client::RoundTrip(std::string_view line) {
  std::string out(line);
  if (out.empty() || out.back() != '\n') out += '\n';
  Status w = WriteAll(fd_.get(), out, "request");
  if (!w.ok()) return WriteFailed(w);
  return ReadLine();
}

Result<rpc::Json> Client::Call(std::string_view method, rpc::Json params) {
  const int64_t id = next_id_++;
  ASSIGN_OR_RETURN(std::string line,
                   RoundTrip(rpc::Frame(rpc::MakeRequest(id, method, std::move(params)))));
  return ParseResponse(line, id);
}

Result<std::string> Client::CallForLine(std::string_view method, rpc::Json params,
                                        int64_t* id) {
  *id = next_id_++;
  return RoundTrip(rpc::Frame(rpc::MakeRequest(*id, method, std::move(params))));
}

Result<rpc::Json> Client::CallWithTick(std::string_view method, rpc::Json params,
                                       const std::function<void()>& tick) {
  const int64_t id = next_id_++;
  std::string out = rpc::Frame(rpc::MakeRequest(id, method, std::move(params)));
  Status w = WriteAll(fd_.get(), out, "request");
  if (!w.ok()) return WriteFailed(w);
  ASSIGN_OR_RETURN(std::string line, ReadLine(tick));
  return ParseResponse(line, id);
}

Result<rpc::Json> Client::CallWithFd(std::string_view method, rpc::Json params,
                                     int fd, const std::function<void()>& tick) {
  const int64_t id = next_id_++;
  std::string out = rpc::Frame(rpc::MakeRequest(id, method, std::move(params)));
  // The fd rides on the first byte; the rest of the line follows as usual.
  Status sent = SendWithFds(fd_.get(), out, {fd});
  if (!sent.ok()) return WriteFailed(sent);
  ASSIGN_OR_RETURN(std::string line, ReadLine(tick));
  return ParseResponse(line, id);
}

Result<rpc::Json> Client::ParseResponse(const std::string& line, int64_t id) {
  rpc::Json response = rpc::Json::parse(line, nullptr, false);
  if (!response.is_object())
    return Status(StatusCode::kUnavailable, "malformed response from relsupd");
  if (auto e = response.find("error"); e != response.end())
    return rpc::StatusFromError(*e);
  if (response.value("id", rpc::Json()) != id)
    return Status(StatusCode::kUnavailable, "response id does not match the request");
  // Moved, not copied: a `ps` of 100 instances is a tree of ~1,500 values.
  return std::move(response["result"]);
}

}  // namespace relsupd
