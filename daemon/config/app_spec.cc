#include "daemon/config/app_spec.h"

#include <algorithm>
#include <set>

#include "daemon/base/duration.h"
#include "daemon/base/socket_address.h"
#include "daemon/base/suggest.h"
#include "daemon/config/yaml_util.h"

namespace relsupd {
namespace {

bool IsLowerAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

// Users and groups: what useradd accepts, conservatively.
Status ValidateAccountName(std::string_view what, std::string_view name) {
  bool ok = !name.empty() && name.size() <= 32 && name[0] != '-';
  for (char c : name)
    ok = ok && (IsLowerAlnum(c) || (c >= 'A' && c <= 'Z') || c == '_' ||
                c == '-' || c == '.');
  if (!ok)
    return InvalidArgument(std::string(what) + " '" + std::string(name) +
                           "' is not a valid name");
  return Status::Ok();
}

}  // namespace

std::string_view StrategyName(Strategy s) {
  return s == Strategy::kStartFirst ? "start-first" : "stop-first";
}

Result<Strategy> ParseStrategy(std::string_view text) {
  if (text == "start-first") return Strategy::kStartFirst;
  if (text == "stop-first") return Strategy::kStopFirst;
  return InvalidArgument("strategy '" + std::string(text) +
                         "' is not start-first or stop-first");
}

Status ValidateAppName(std::string_view name) {
  bool ok = !name.empty() && name.size() <= 63 && IsLowerAlnum(name[0]);
  for (char c : name) ok = ok && (IsLowerAlnum(c) || c == '-');
  if (!ok)
    return InvalidArgument("app name '" + Excerpt(name) +
                           "' is not valid (use [a-z0-9][a-z0-9-]{0,62})");
  return Status::Ok();
}

Status ValidateSocketName(std::string_view name) {
  bool ok = !name.empty() && name.size() <= 32 && IsLowerAlnum(name[0]);
  for (char c : name) ok = ok && (IsLowerAlnum(c) || c == '-' || c == '_');
  if (!ok)
    return InvalidArgument("socket name '" + Excerpt(name) +
                           "' is not valid (use [a-z0-9][a-z0-9_-]{0,31})");
  return Status::Ok();
}

Status ValidateSocketAddress(std::string_view address) {
  return ParseSocketAddress(address).status();
}

Result<SocketSpec> ParseSocketArg(std::string_view arg) {
  size_t eq = arg.find('=');
  if (eq == std::string_view::npos)
    return InvalidArgument("socket '" + std::string(arg) +
                           "' must be NAME=tcp://HOST:PORT or NAME=unix:/PATH");
  SocketSpec s{std::string(arg.substr(0, eq)), std::string(arg.substr(eq + 1))};
  RETURN_IF_ERROR(ValidateSocketName(s.name));
  RETURN_IF_ERROR(ValidateSocketAddress(s.address));
  return s;
}

Status ValidateAppSpec(AppSpec* spec) {
  RETURN_IF_ERROR(ValidateAppName(spec->name));
  if (!spec->user.empty()) RETURN_IF_ERROR(ValidateAccountName("user", spec->user));
  if (!spec->group.empty())
    RETURN_IF_ERROR(ValidateAccountName("group", spec->group));
  if (spec->keep_releases < 1 || spec->keep_releases > kMaxKeepReleases)
    return InvalidArgument("keep_releases must be between 1 and " +
                           std::to_string(kMaxKeepReleases) + ", not " +
                           std::to_string(spec->keep_releases));
  if (spec->activation_deadline_ms < 1000 ||
      spec->activation_deadline_ms > 24 * 3'600'000)
    return InvalidArgument("activation_deadline must be between 1s and 24h, not " +
                           FormatDurationMs(spec->activation_deadline_ms));
  if (spec->sockets.size() > kMaxSockets)
    return InvalidArgument("an app may hold at most " +
                           std::to_string(kMaxSockets) + " sockets");
  std::sort(spec->sockets.begin(), spec->sockets.end(),
            [](const SocketSpec& a, const SocketSpec& b) { return a.name < b.name; });
  for (size_t i = 0; i < spec->sockets.size(); ++i) {
    RETURN_IF_ERROR(ValidateSocketName(spec->sockets[i].name));
    RETURN_IF_ERROR(ValidateSocketAddress(spec->sockets[i].address));
    if (i > 0 && spec->sockets[i].name == spec->sockets[i - 1].name)
      return InvalidArgument("socket '" + spec->sockets[i].name +
                             "' is named twice");
  }
  return Status::Ok();
}

nlohmann::json AppSpecToJson(const AppSpec& spec) {
  nlohmann::json sockets = nlohmann::json::object();
  for (const auto& s : spec.sockets) sockets[s.name] = s.address;
  return {{"name", spec.name},
          {"user", spec.user},
          {"group", spec.group},
          {"keep_releases", spec.keep_releases},
          {"sockets", sockets},
          {"strategy", StrategyName(spec.strategy)},
          {"activation_deadline_ms", spec.activation_deadline_ms},
          {"auto_rollback", spec.auto_rollback},
          {"uid", spec.uid},
          {"gid", spec.gid},
          {"dynamic_user", spec.dynamic_user}};
}

nlohmann::json AppSpecChanges(const AppSpec& before, const AppSpec& after) {
  const nlohmann::json old = AppSpecToJson(before), now = AppSpecToJson(after);
  nlohmann::json changes = nlohmann::json::object();
  for (const auto& [k, v] : now.items())
    if (old[k] != v) changes[k] = {old[k], v};
  return changes;
}

Result<AppSpec> AppSpecFromJson(const nlohmann::json& j) {
  if (!j.is_object()) return InvalidArgument("app spec must be an object");
  AppSpec spec;
  // Not a structured binding: clang 14 (the fuzz tree) cannot capture one
  // in a lambda.
  for (const auto& item : j.items()) {
    const std::string& key = item.key();
    const nlohmann::json& v = item.value();
    auto want = [&](bool ok, const char* type) -> Status {
      if (ok) return Status::Ok();
      return InvalidArgument("'" + key + "' must be " + type);
    };
    if (key == "name") {
      RETURN_IF_ERROR(want(v.is_string(), "a string"));
      spec.name = v.get<std::string>();
    } else if (key == "user") {
      RETURN_IF_ERROR(want(v.is_string(), "a string"));
      spec.user = v.get<std::string>();
    } else if (key == "group") {
      RETURN_IF_ERROR(want(v.is_string(), "a string"));
      spec.group = v.get<std::string>();
    } else if (key == "keep_releases") {
      RETURN_IF_ERROR(want(v.is_number_integer(), "an integer"));
      spec.keep_releases = v.get<int64_t>();
    } else if (key == "strategy") {
      RETURN_IF_ERROR(want(v.is_string(), "a string"));
      ASSIGN_OR_RETURN(spec.strategy, ParseStrategy(v.get<std::string>()));
    } else if (key == "activation_deadline_ms") {
      RETURN_IF_ERROR(want(v.is_number_integer(), "an integer"));
      spec.activation_deadline_ms = v.get<int64_t>();
    } else if (key == "auto_rollback") {
      RETURN_IF_ERROR(want(v.is_boolean(), "true or false"));
      spec.auto_rollback = v.get<bool>();
    } else if (key == "uid" || key == "gid") {
      // What `app show --json` printed; the daemon resolves them again.
      RETURN_IF_ERROR(want(v.is_number_integer(), "an integer"));
      (key == "uid" ? spec.uid : spec.gid) = v.get<int64_t>();
    } else if (key == "dynamic_user") {
      RETURN_IF_ERROR(want(v.is_boolean(), "true or false"));
      spec.dynamic_user = v.get<bool>();
    } else if (key == "sockets") {
      RETURN_IF_ERROR(want(v.is_object(), "an object of NAME: ADDRESS"));
      for (const auto& [name, addr] : v.items()) {
        if (!addr.is_string())
          return InvalidArgument("socket '" + name + "' must be a string address");
        spec.sockets.push_back({name, addr.get<std::string>()});
      }
    } else {
      return InvalidArgument("unknown field '" + key + "' in app spec");
    }
  }
  RETURN_IF_ERROR(ValidateAppSpec(&spec));
  return spec;
}

Result<AppSpec> ParseAppSpecYaml(const std::string& text,
                                 const std::string& file) {
  ASSIGN_OR_RETURN(YAML::Node root, yaml::LoadMap(text, file));
  RETURN_IF_ERROR(yaml::CheckKeys(
      file, root,
      {"name", "user", "group", "keep_releases", "sockets", "strategy",
       "activation_deadline", "auto_rollback"}));
  AppSpec spec;
  // Each field is validated where it is read, so the error points at it.
  auto check = [&](const YAML::Node& n, Status s) -> Status {
    if (s.ok()) return s;
    return yaml::ErrorAt(file, n, s.message());
  };
  if (!root["name"]) return yaml::ErrorAt(file, root, "missing key 'name'");
  ASSIGN_OR_RETURN(spec.name, yaml::ReadString(file, root["name"], "name"));
  RETURN_IF_ERROR(check(root["name"], ValidateAppName(spec.name)));
  if (root["user"]) {
    ASSIGN_OR_RETURN(spec.user, yaml::ReadString(file, root["user"], "user"));
  }
  if (root["group"]) {
    ASSIGN_OR_RETURN(spec.group, yaml::ReadString(file, root["group"], "group"));
  }
  if (root["keep_releases"]) {
    ASSIGN_OR_RETURN(spec.keep_releases,
                     yaml::ReadInt(file, root["keep_releases"], "keep_releases",
                                   1, kMaxKeepReleases));
  }
  if (const YAML::Node n = root["strategy"]) {
    ASSIGN_OR_RETURN(spec.strategy,
                     yaml::ReadParsed(file, n, "strategy", ParseStrategy));
  }
  if (root["activation_deadline"]) {
    ASSIGN_OR_RETURN(spec.activation_deadline_ms,
                     yaml::ReadDurationMs(file, root["activation_deadline"],
                                          "activation_deadline"));
  }
  if (root["auto_rollback"]) {
    ASSIGN_OR_RETURN(spec.auto_rollback,
                     yaml::ReadBool(file, root["auto_rollback"], "auto_rollback"));
  }
  if (const YAML::Node n = root["sockets"]) {
    if (!n.IsMap() && !n.IsNull())
      return yaml::ErrorAt(file, n, "'sockets' must map NAME: ADDRESS");
    std::set<std::string> seen;
    for (const auto& kv : n) {
      ASSIGN_OR_RETURN(std::string name, yaml::ReadString(file, kv.first, "socket name"));
      ASSIGN_OR_RETURN(std::string addr, yaml::ReadString(file, kv.second, name));
      RETURN_IF_ERROR(check(kv.first, ValidateSocketName(name)));
      RETURN_IF_ERROR(check(kv.second, ValidateSocketAddress(addr)));
      if (!seen.insert(name).second)
        return yaml::ErrorAt(file, kv.first, "socket '" + name + "' is named twice");
      spec.sockets.push_back({name, addr});
    }
  }
  Status s = ValidateAppSpec(&spec);
  if (!s.ok()) return InvalidArgument(file + ": " + s.message());
  return spec;
}

}  // namespace relsupd
