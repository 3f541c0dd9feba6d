#pragma once
// An app's settings (AppSpec): validation, JSON form and the YAML spec file
// read by `relsupd ctl app apply`. Value types; any thread.

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "daemon/base/status.h"

namespace relsupd {

enum class Strategy { kStartFirst, kStopFirst };
std::string_view StrategyName(Strategy s);
Result<Strategy> ParseStrategy(std::string_view text);

// A listener the daemon holds for an app: "tcp://HOST:PORT" or "unix:/PATH".
struct SocketSpec {
  std::string name;
  std::string address;
  bool operator==(const SocketSpec&) const = default;
};

struct AppSpec {
  std::string name;
  std::string user;   // empty: filled with the default by the daemon
  std::string group;  // empty: the user's primary group
  // Set by the daemon at create/apply (never taken from a client) and
  // recorded in the ledger: the ids the app runs as. dynamic_user: `user`
  // is empty and uid/gid come from the daemon's app_uid_range, owned by this
  // app alone and kept for its lifetime. -1: not resolved (a ledger row from
  // before schema 4; the name is looked up at each start).
  int64_t uid = -1;
  int64_t gid = -1;
  bool dynamic_user = false;
  int64_t keep_releases = 10;
  std::vector<SocketSpec> sockets;  // sorted by name, names unique
  Strategy strategy = Strategy::kStartFirst;
  int64_t activation_deadline_ms = 60'000;
  bool auto_rollback = true;

  bool operator==(const AppSpec&) const = default;
};

inline constexpr int64_t kMaxKeepReleases = 1000;
inline constexpr size_t kMaxSockets = 64;

// Names: [a-z0-9][a-z0-9-]{0,62}.
Status ValidateAppName(std::string_view name);
// Socket names: [a-z0-9][a-z0-9_-]{0,31}.
Status ValidateSocketName(std::string_view name);
// "tcp://HOST:PORT" (HOST an IPv4 or [IPv6] literal, PORT 1-65535) or
// "unix:/absolute/path" (shorter than sun_path).
Status ValidateSocketAddress(std::string_view address);
// Parses "NAME=ADDRESS" as given on the command line.
Result<SocketSpec> ParseSocketArg(std::string_view arg);
// Checks every field; sorts sockets and refuses duplicate names.
Status ValidateAppSpec(AppSpec* spec);

nlohmann::json AppSpecToJson(const AppSpec& spec);
// The fields (of AppSpecToJson) that differ from `before` to `after`, as
// {"field": [old, new]}; empty when none does.
nlohmann::json AppSpecChanges(const AppSpec& before, const AppSpec& after);
// Reads the fields present in `j` over the defaults; unknown fields and
// wrong types are errors naming the field. Validates the result.
Result<AppSpec> AppSpecFromJson(const nlohmann::json& j);

// Parses an app spec file (YAML). Errors name file, line and column.
//   name: shop
//   user: shop
//   group: shop
//   keep_releases: 10
//   sockets: {http: "tcp://0.0.0.0:8080"}
//   strategy: start-first
//   activation_deadline: 60s
//   auto_rollback: true
Result<AppSpec> ParseAppSpecYaml(const std::string& text,
                                 const std::string& filename);

}  // namespace relsupd
