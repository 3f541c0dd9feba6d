#include "daemon/config/ready_sockets.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>

#include "daemon/base/socket_address.h"
#include "daemon/base/suggest.h"

namespace relsupd {
namespace {

// An IP address in one form per destination: IPv4 as AF_INET (also when
// written IPv4-mapped), IPv6 otherwise.
struct IpAddress {
  int family = 0;
  std::array<unsigned char, 16> bytes{};
  size_t size() const { return family == AF_INET ? 4 : 16; }
  bool Unspecified() const {
    return std::all_of(bytes.begin(), bytes.begin() + static_cast<long>(size()),
                       [](unsigned char b) { return b == 0; });
  }
  bool operator==(const IpAddress&) const = default;
};

std::string Unbracket(const std::string& host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    return host.substr(1, host.size() - 2);
  return host;
}

std::optional<IpAddress> ParseIp(const std::string& text) {
  std::string host = Unbracket(text);
  if (host == "localhost") host = "127.0.0.1";  // as the probe resolves it
  IpAddress a;
  in_addr v4{};
  in6_addr v6{};
  if (::inet_pton(AF_INET, host.c_str(), &v4) == 1) {
    a.family = AF_INET;
    std::memcpy(a.bytes.data(), &v4, 4);
  } else if (::inet_pton(AF_INET6, host.c_str(), &v6) == 1) {
    if (IN6_IS_ADDR_V4MAPPED(&v6)) {
      a.family = AF_INET;
      std::memcpy(a.bytes.data(), v6.s6_addr + 12, 4);
    } else {
      a.family = AF_INET6;
      std::memcpy(a.bytes.data(), v6.s6_addr, 16);
    }
  } else {
    return std::nullopt;
  }
  return a;
}

// "123" -> 123 when it is a port number.
std::optional<int> ParsePort(const std::string& text) {
  if (text.empty()) return std::nullopt;
  char* end = nullptr;
  long p = std::strtol(text.c_str(), &end, 10);
  if (*end != '\0' || p < 1 || p > 65535) return std::nullopt;
  return static_cast<int>(p);
}

std::string Describe(const ReadyCheck& check, const ReadyAddress& at) {
  if (check.kind == ReadyKind::kTcp)
    return "tcp " + at.host + ":" + std::to_string(at.port);
  return "http " + check.target;
}

}  // namespace

Result<ProbeTarget> ParseHttpUrl(const std::string& url) {
  constexpr std::string_view kScheme = "http://";
  if (url.compare(0, kScheme.size(), kScheme) != 0)
    return InvalidArgument("ready check URL '" + url +
                           "' must start with http://");
  std::string rest = url.substr(kScheme.size());
  ProbeTarget t;
  t.port = 80;
  size_t slash = rest.find('/');
  if (slash != std::string::npos) {
    t.path = rest.substr(slash);
    rest = rest.substr(0, slash);
  }
  std::string port_text;
  if (!rest.empty() && rest[0] == '[') {
    size_t close = rest.find(']');
    if (close == std::string::npos)
      return InvalidArgument("ready check URL '" + url + "': unclosed '['");
    t.host = rest.substr(1, close - 1);
    if (close + 1 < rest.size()) {
      if (rest[close + 1] != ':')
        return InvalidArgument("ready check URL '" + url + "': bad port");
      port_text = rest.substr(close + 2);
    }
  } else {
    size_t colon = rest.find(':');
    t.host = rest.substr(0, colon);
    if (colon != std::string::npos) port_text = rest.substr(colon + 1);
  }
  if (!port_text.empty()) {
    auto p = ParsePort(port_text);
    if (!p)
      return InvalidArgument("ready check URL '" + url + "': bad port '" +
                             port_text + "'");
    t.port = *p;
  }
  if (t.host.empty())
    return InvalidArgument("ready check URL '" + url + "' has no host");
  return t;
}

std::optional<ReadyAddress> ReadyCheckAddress(const ReadyCheck& check) {
  if (check.kind == ReadyKind::kTcp) return ReadyAddress{"127.0.0.1", check.port};
  if (check.kind != ReadyKind::kHttp) return std::nullopt;
  auto url = ParseHttpUrl(check.target);
  if (!url.ok() || !ParseIp(url->host)) return std::nullopt;
  return ReadyAddress{url->host, url->port};
}

bool ReachesListener(const ReadyAddress& target, const std::string& listen) {
  auto addr = ParseSocketAddress(listen);
  if (!addr.ok() || addr->kind != SocketAddress::Kind::kTcp) return false;
  if (addr->port != target.port) return false;
  const std::string& host = addr->host;
  auto bound = ParseIp(host);
  auto dest = ParseIp(target.host);
  if (!bound || !dest) return false;
  if (bound->Unspecified()) return true;  // a wildcard listener takes every host
  // A connect to the unspecified address goes to the loopback one.
  if (dest->Unspecified()) {
    if (dest->family == AF_INET) {
      dest->bytes[0] = 127;
      dest->bytes[3] = 1;
    } else {
      dest->bytes[15] = 1;
    }
  }
  return *bound == *dest;
}

Status CheckReadyAgainstSockets(const ProcessFile& processes,
                                const std::vector<SocketSpec>& sockets) {
  for (const auto& [type, p] : processes.processes) {
    // The ready check, then the health check: both measure one instance.
    for (const ReadyCheck* check : {&p.ready, &p.health.check}) {
      const bool health = check == &p.health.check;
      auto at = ReadyCheckAddress(*check);
      if (!at) continue;
      for (const SocketSpec& s : sockets) {
        if (!ReachesListener(*at, s.address)) continue;
        return FailedPrecondition(
            "process '" + type + "': " + (health ? "health" : "ready") + " check " +
            Describe(*check, *at) + " would reach the daemon-held socket '" + s.name + "' (" +
            s.address + "), which always accepts; " +
            (health ? "check a port of the instance's own (e.g. an admin port), or "
                      "use 'health: {exec: ...}' or 'watchdog:'"
                    : "use 'ready: notify'"));
      }
    }
  }
  return Status::Ok();
}

Status CheckProcessSockets(const ProcessFile& processes,
                           const std::vector<SocketSpec>& sockets,
                           const std::string& app) {
  std::vector<std::string> names;
  for (const SocketSpec& s : sockets) names.push_back(s.name);
  std::string text;
  for (const auto& [type, p] : processes.processes) {
    for (const std::string& name : p.sockets) {
      if (std::find(names.begin(), names.end(), name) != names.end()) continue;
      if (!text.empty()) text += '\n';
      text += "process '" + type + "' uses socket '" + name + "', which app '" + app +
              "' does not have (its sockets: " + QuotedList(names) + ")";
      if (auto close = ClosestMatch(name, names)) text += "; did you mean '" + *close + "'?";
      text += names.empty() ? "; add the socket with 'ctl app apply', or remove it from "
                              "'sockets:' in " + processes.source
                            : "; fix 'sockets:' in " + processes.source +
                                  " or add the socket with 'ctl app apply'";
    }
  }
  if (text.empty()) return Status::Ok();
  return FailedPrecondition(text);
}

}  // namespace relsupd
