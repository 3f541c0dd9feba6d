#include "daemon/base/socket_address.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <cstring>

namespace relsupd {
namespace {

constexpr size_t kSunPathSize = sizeof(sockaddr_un{}.sun_path);

Result<SocketAddress> ParseUnix(const std::string& a) {
  auto bad = [&](const std::string& why) {
    return InvalidArgument("socket address '" + a + "' " + why);
  };
  SocketAddress out;
  out.kind = SocketAddress::Kind::kUnix;
  out.path = a.substr(5);
  if (out.path.empty() || out.path[0] != '/')
    return bad("needs an absolute path");
  if (out.path.find('\0') != std::string::npos) return bad("has a NUL byte in its path");
  // Plain paths only: the daemon walks them a component at a time (and
  // makes what is missing), and compares them as written.
  for (size_t start = 1; start <= out.path.size();) {
    size_t end = out.path.find('/', start);
    if (end == std::string::npos) end = out.path.size();
    const std::string_view part(out.path.data() + start, end - start);
    if (part == "." || part == "..")
      return bad("has a '" + std::string(part) + "' component in its path");
    start = end + 1;
  }
  if (out.path.back() == '/') return bad("names a directory, not a socket file");
  if (out.path.size() >= kSunPathSize)
    return bad("has a path longer than " + std::to_string(kSunPathSize - 1) +
               " bytes");
  return out;
}

Result<SocketAddress> ParseTcp(const std::string& a) {
  auto bad = [&](const std::string& why) {
    return InvalidArgument("socket address '" + a + "' " + why);
  };
  const std::string rest = a.substr(6);
  const size_t colon = rest.rfind(':');
  if (colon == std::string::npos) return bad("has no port");
  const std::string host = rest.substr(0, colon);
  const std::string port = rest.substr(colon + 1);
  if (port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(port) < 1 || std::stoi(port) > 65535)
    return bad("has port '" + port + "', not a number from 1 to 65535");
  SocketAddress out;
  out.kind = SocketAddress::Kind::kTcp;
  out.port = static_cast<uint16_t>(std::stoi(port));
  unsigned char buf[sizeof(in6_addr)];
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    out.family = AF_INET6;
    out.host = host.substr(1, host.size() - 2);
    if (inet_pton(AF_INET6, out.host.c_str(), buf) != 1)
      return bad("has host '" + host + "', not an IPv6 address");
  } else {
    out.family = AF_INET;
    out.host = host;
    if (inet_pton(AF_INET, host.c_str(), buf) != 1)
      return bad("has host '" + host +
                 "', not an IPv4 address or a bracketed IPv6 address");
  }
  return out;
}

}  // namespace

Result<SocketAddress> ParseSocketAddress(std::string_view address) {
  const std::string a(address);
  if (a.rfind("unix:", 0) == 0) return ParseUnix(a);
  if (a.rfind("tcp://", 0) == 0) return ParseTcp(a);
  return InvalidArgument("socket address '" + a +
                         "' must be tcp://HOST:PORT or unix:/PATH");
}

std::string SocketAddress::ToString() const {
  if (kind == Kind::kUnix) return "unix:" + path;
  if (family == AF_INET6) return "tcp://[" + host + "]:" + std::to_string(port);
  return "tcp://" + host + ":" + std::to_string(port);
}

socklen_t SocketAddress::ToSockaddr(sockaddr_storage* ss) const {
  *ss = sockaddr_storage{};
  if (kind == Kind::kUnix) {
    auto* un = reinterpret_cast<sockaddr_un*>(ss);
    un->sun_family = AF_UNIX;
    std::memcpy(un->sun_path, path.c_str(), path.size() + 1);
    return sizeof(sockaddr_un);
  }
  if (family == AF_INET6) {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(ss);
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(port);
    inet_pton(AF_INET6, host.c_str(), &in6->sin6_addr);
    return sizeof(sockaddr_in6);
  }
  auto* in4 = reinterpret_cast<sockaddr_in*>(ss);
  in4->sin_family = AF_INET;
  in4->sin_port = htons(port);
  inet_pton(AF_INET, host.c_str(), &in4->sin_addr);
  return sizeof(sockaddr_in);
}

}  // namespace relsupd
