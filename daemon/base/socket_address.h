#pragma once
// SocketAddress: a listening address as written in an app's spec,
// "tcp://HOST:PORT" (HOST an IPv4 or bracketed IPv6 literal, PORT 1-65535)
// or "unix:/absolute/path" (shorter than sun_path), parsed in this one place
// for validation (config/), binding (activate/app_sockets) and the ready
// check's listener comparison (config/ready_sockets). Value type; any
// thread.

#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "daemon/base/status.h"

namespace relsupd {

struct SocketAddress {
  enum class Kind { kTcp, kUnix };
  Kind kind = Kind::kTcp;
  // kTcp: the address family (AF_INET or AF_INET6), the host literal
  // without brackets, and the port.
  int family = 0;
  std::string host;
  uint16_t port = 0;
  // kUnix: the absolute path of the socket file.
  std::string path;

  // The address as written: "tcp://1.2.3.4:80", "tcp://[::1]:80",
  // "unix:/run/x.sock".
  std::string ToString() const;
  // Fills `ss` for bind/connect and returns its length.
  socklen_t ToSockaddr(sockaddr_storage* ss) const;

  bool operator==(const SocketAddress&) const = default;
};

// Parses "tcp://HOST:PORT" or "unix:/PATH". Errors read
// "socket address 'ADDRESS' WHY", e.g. "... has no port".
Result<SocketAddress> ParseSocketAddress(std::string_view address);

}  // namespace relsupd
