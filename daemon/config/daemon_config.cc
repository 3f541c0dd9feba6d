#include "daemon/config/daemon_config.h"

#include "daemon/base/duration.h"

#include "daemon/base/fd.h"
#include "daemon/base/socket_address.h"
#include "daemon/config/yaml_util.h"

namespace relsupd {
namespace {

constexpr size_t kMaxConfigBytes = 1 << 20;

Result<mode_t> ReadMode(const std::string& file, const YAML::Node& n) {
  // Modes are written in octal, quoted ("0660") or not (0660); YAML 1.2 reads
  // an unquoted 0660 as decimal digits, so the scalar text is parsed here.
  if (!n.IsScalar())
    return yaml::ErrorAt(file, n, "'socket_mode' must be an octal mode");
  const std::string& s = n.Scalar();
  std::string digits = s.rfind("0o", 0) == 0 ? s.substr(2) : s;
  if (digits.empty() || digits.size() > 4 ||
      digits.find_first_not_of("01234567") != std::string::npos)
    return yaml::ErrorAt(file, n,
                         "'socket_mode' must be an octal mode like 0660, not '" +
                             s + "'");
  return static_cast<mode_t>(std::stoul(digits, nullptr, 8));
}

}  // namespace

Result<std::pair<uid_t, uid_t>> ParseUidRange(const std::string& text) {
  auto bad = [&](const std::string& why) {
    return InvalidArgument("'app_uid_range' must be MIN-MAX, " + why + ", not '" +
                           text + "'");
  };
  size_t dash = text.find('-');
  if (dash == std::string::npos) return bad("two uids joined by '-'");
  auto number = [](std::string_view s) -> int64_t {
    if (s.empty() || s.size() > 10 ||
        s.find_first_not_of("0123456789") != std::string_view::npos)
      return -1;
    return std::stoll(std::string(s));
  };
  const int64_t lo = number(std::string_view(text).substr(0, dash));
  const int64_t hi = number(std::string_view(text).substr(dash + 1));
  if (lo < 0 || hi < 0) return bad("two uids joined by '-'");
  if (lo < 1000 || hi > 2147483647 || lo > hi)
    return bad("with 1000 <= MIN <= MAX <= 2147483647");
  // systemd's DynamicUser= range, nobody and the 16-bit (uid_t)-1.
  if (lo <= 65535 && hi >= 61184)
    return bad("clear of 61184-65535 (systemd's dynamic users, nobody, "
               "16-bit -1)");
  return std::make_pair(static_cast<uid_t>(lo), static_cast<uid_t>(hi));
}

namespace {

// Reads the keys of one daemon config file into `c`, each group in the
// order the file's keys are checked (the first bad key is the one named).
class ConfigReader {
 public:
  ConfigReader(const std::string& file, const YAML::Node& root, DaemonConfig* c)
      : file_(file), root_(root), c_(*c) {}

  Status ReadSocketKeys() {
    RETURN_IF_ERROR(PathKey("state_dir", &c_.state_dir));
    RETURN_IF_ERROR(PathKey("socket", &c_.socket));
    if (root_["socket_mode"]) {
      ASSIGN_OR_RETURN(c_.socket_mode, ReadMode(file_, root_["socket_mode"]));
    }
    if (root_["socket_group"]) {
      ASSIGN_OR_RETURN(c_.socket_group,
                       yaml::ReadString(file_, root_["socket_group"], "socket_group"));
    }
    if (root_["admin_group"]) {
      ASSIGN_OR_RETURN(c_.admin_group,
                       yaml::ReadString(file_, root_["admin_group"], "admin_group"));
    }
    if (root_["log_level"]) {
      ASSIGN_OR_RETURN(c_.log_level,
                       yaml::ReadString(file_, root_["log_level"], "log_level"));
      const std::string& l = c_.log_level;
      if (l != "trace" && l != "debug" && l != "info" && l != "warn" &&
          l != "error")
        return yaml::ErrorAt(
            file_, root_["log_level"],
            "'log_level' must be one of trace, debug, info, warn, error, not '" +
                l + "'");
    }
    return Status::Ok();
  }

  Status ReadLimitKeys() {
    if (root_["max_request_bytes"]) {
      ASSIGN_OR_RETURN(int64_t v, yaml::ReadInt(file_, root_["max_request_bytes"],
                                                "max_request_bytes", 1024,
                                                int64_t{1} << 30));
      c_.max_request_bytes = static_cast<uint64_t>(v);
    }
    RETURN_IF_ERROR(Cap("max_artifact_bytes", 1024, int64_t{1} << 40, &c_.max_artifact_bytes));
    RETURN_IF_ERROR(Cap("max_unpacked_bytes", 1024, int64_t{1} << 42, &c_.max_unpacked_bytes));
    RETURN_IF_ERROR(Cap("max_entries", 1, 10'000'000, &c_.max_entries));
    RETURN_IF_ERROR(Cap("max_compression_ratio", 2, 1'000'000, &c_.max_compression_ratio));
    if (root_["cgroup"]) {
      ASSIGN_OR_RETURN(c_.cgroup, yaml::ReadString(file_, root_["cgroup"], "cgroup"));
      if (c_.cgroup != "auto" && c_.cgroup != "off" &&
          (c_.cgroup.empty() || c_.cgroup[0] != '/'))
        return yaml::ErrorAt(file_, root_["cgroup"],
                             "'cgroup' must be auto, off or an absolute path, not '" +
                                 c_.cgroup + "'");
    }
    return Status::Ok();
  }

  Status ReadRestartKeys() {
    RETURN_IF_ERROR(Duration("restart_initial_delay", 0, 3'600'000,
                             &c_.restart_initial_delay_ms));
    RETURN_IF_ERROR(Duration("restart_max_delay", 0, 86'400'000, &c_.restart_max_delay_ms));
    RETURN_IF_ERROR(Duration("restart_reset_after", 0, 86'400'000,
                             &c_.restart_reset_after_ms));
    RETURN_IF_ERROR(Duration("crash_window", 1, 86'400'000, &c_.crash_window_ms));
    if (root_["crash_limit"]) {
      ASSIGN_OR_RETURN(c_.crash_limit, yaml::ReadInt(file_, root_["crash_limit"],
                                                     "crash_limit", 1, 1'000'000));
    }
    return Status::Ok();
  }

  Status ReadLogAndUserKeys() {
    if (root_["log_max_files"]) {
      ASSIGN_OR_RETURN(c_.log_max_files, yaml::ReadInt(file_, root_["log_max_files"],
                                                       "log_max_files", 1, 1000));
    }
    RETURN_IF_ERROR(Cap("log_max_file_bytes", 4096, int64_t{1} << 40, &c_.log_max_file_bytes));
    RETURN_IF_ERROR(Cap("log_rate_limit", 1024, int64_t{1} << 40, &c_.log_rate_limit));
    if (root_["app_uid_range"]) {
      ASSIGN_OR_RETURN(std::string range, yaml::ReadString(file_, root_["app_uid_range"],
                                                           "app_uid_range"));
      auto parsed = ParseUidRange(range);
      if (!parsed.ok())
        return yaml::ErrorAt(file_, root_["app_uid_range"], parsed.status().message());
      c_.app_uid_min = parsed->first;
      c_.app_uid_max = parsed->second;
    }
    if (root_["allow_root_apps"]) {
      ASSIGN_OR_RETURN(c_.allow_root_apps, yaml::ReadBool(file_, root_["allow_root_apps"],
                                                          "allow_root_apps"));
    }
    if (const YAML::Node m = root_["metrics_listen"]; m && !m.IsNull()) {
      ASSIGN_OR_RETURN(std::string text, yaml::ReadString(file_, m, "metrics_listen"));
      if (text.empty()) return Status::Ok();  // off
      std::string address = text.starts_with("tcp://") ? text : "tcp://" + text;
      auto parsed = ParseSocketAddress(address);
      if (!parsed.ok() || parsed->kind != SocketAddress::Kind::kTcp)
        return yaml::ErrorAt(file_, m,
                             "'metrics_listen' must be HOST:PORT (e.g. 127.0.0.1:9100)" +
                                 (parsed.ok() ? std::string() : ": " + parsed.status().message()));
      c_.metrics_listen = address;
    }
    return Status::Ok();
  }

 private:
  Status PathKey(const char* key, std::string* out) {
    if (!root_[key]) return Status::Ok();
    ASSIGN_OR_RETURN(*out, yaml::ReadString(file_, root_[key], key));
    if (out->empty() || (*out)[0] != '/')
      return yaml::ErrorAt(file_, root_[key],
                           std::string("'") + key +
                               "' must be an absolute path, not '" + *out + "'");
    return Status::Ok();
  }

  Status Cap(const char* key, int64_t min, int64_t max, uint64_t* out) {
    if (!root_[key]) return Status::Ok();
    ASSIGN_OR_RETURN(int64_t v, yaml::ReadInt(file_, root_[key], key, min, max));
    *out = static_cast<uint64_t>(v);
    return Status::Ok();
  }

  Status Duration(const char* key, int64_t min, int64_t max, int64_t* out) {
    if (!root_[key]) return Status::Ok();
    ASSIGN_OR_RETURN(int64_t v, yaml::ReadDurationMs(file_, root_[key], key));
    if (v < min || v > max)
      return yaml::ErrorAt(file_, root_[key],
                           std::string("'") + key + "' must be between " +
                               FormatDurationMs(min) + " and " + FormatDurationMs(max));
    *out = v;
    return Status::Ok();
  }

  const std::string& file_;
  const YAML::Node& root_;
  DaemonConfig& c_;
};

}  // namespace

Result<DaemonConfig> ParseDaemonConfig(const std::string& text,
                                       const std::string& file) {
  ASSIGN_OR_RETURN(YAML::Node root, yaml::LoadMap(text, file));
  RETURN_IF_ERROR(yaml::CheckKeys(
      file, root,
      {"state_dir", "socket", "socket_mode", "socket_group", "admin_group",
       "log_level", "max_request_bytes", "max_artifact_bytes",
       "max_unpacked_bytes", "max_entries", "max_compression_ratio", "cgroup",
       "restart_initial_delay", "restart_max_delay", "restart_reset_after",
       "crash_limit", "crash_window", "log_max_file_bytes", "log_max_files",
       "log_rate_limit", "app_uid_range", "allow_root_apps", "metrics_listen"}));
  DaemonConfig c;
  ConfigReader reader(file, root, &c);
  RETURN_IF_ERROR(reader.ReadSocketKeys());
  RETURN_IF_ERROR(reader.ReadLimitKeys());
  RETURN_IF_ERROR(reader.ReadRestartKeys());
  RETURN_IF_ERROR(reader.ReadLogAndUserKeys());
  return c;
}

Result<DaemonConfig> LoadDaemonConfig(const std::string& path) {
  auto text = ReadFile(path, kMaxConfigBytes);
  if (!text.ok())
    return Status(text.status().code(),
                  "cannot read config: " + text.status().message());
  return ParseDaemonConfig(*text, path);
}

}  // namespace relsupd
