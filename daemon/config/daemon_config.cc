#include "daemon/config/daemon_config.h"

#include "daemon/base/duration.h"

#include "daemon/base/fd.h"
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
       "log_rate_limit"}));
  DaemonConfig c;
  auto path_key = [&](const char* key, std::string* out) -> Status {
    if (!root[key]) return Status::Ok();
    ASSIGN_OR_RETURN(*out, yaml::ReadString(file, root[key], key));
    if (out->empty() || (*out)[0] != '/')
      return yaml::ErrorAt(file, root[key],
                           std::string("'") + key +
                               "' must be an absolute path, not '" + *out + "'");
    return Status::Ok();
  };
  RETURN_IF_ERROR(path_key("state_dir", &c.state_dir));
  RETURN_IF_ERROR(path_key("socket", &c.socket));
  if (root["socket_mode"]) {
    ASSIGN_OR_RETURN(c.socket_mode, ReadMode(file, root["socket_mode"]));
  }
  if (root["socket_group"]) {
    ASSIGN_OR_RETURN(c.socket_group,
                     yaml::ReadString(file, root["socket_group"], "socket_group"));
  }
  if (root["admin_group"]) {
    ASSIGN_OR_RETURN(c.admin_group,
                     yaml::ReadString(file, root["admin_group"], "admin_group"));
  }
  if (root["log_level"]) {
    ASSIGN_OR_RETURN(c.log_level,
                     yaml::ReadString(file, root["log_level"], "log_level"));
    const std::string& l = c.log_level;
    if (l != "trace" && l != "debug" && l != "info" && l != "warn" &&
        l != "error")
      return yaml::ErrorAt(
          file, root["log_level"],
          "'log_level' must be one of trace, debug, info, warn, error, not '" +
              l + "'");
  }
  if (root["max_request_bytes"]) {
    ASSIGN_OR_RETURN(int64_t v, yaml::ReadInt(file, root["max_request_bytes"],
                                              "max_request_bytes", 1024,
                                              int64_t{1} << 30));
    c.max_request_bytes = static_cast<uint64_t>(v);
  }
  auto cap = [&](const char* key, int64_t min, int64_t max, uint64_t* out) -> Status {
    if (!root[key]) return Status::Ok();
    ASSIGN_OR_RETURN(int64_t v, yaml::ReadInt(file, root[key], key, min, max));
    *out = static_cast<uint64_t>(v);
    return Status::Ok();
  };
  RETURN_IF_ERROR(cap("max_artifact_bytes", 1024, int64_t{1} << 40, &c.max_artifact_bytes));
  RETURN_IF_ERROR(cap("max_unpacked_bytes", 1024, int64_t{1} << 42, &c.max_unpacked_bytes));
  RETURN_IF_ERROR(cap("max_entries", 1, 10'000'000, &c.max_entries));
  RETURN_IF_ERROR(cap("max_compression_ratio", 2, 1'000'000, &c.max_compression_ratio));
  if (root["cgroup"]) {
    ASSIGN_OR_RETURN(c.cgroup, yaml::ReadString(file, root["cgroup"], "cgroup"));
    if (c.cgroup != "auto" && c.cgroup != "off" &&
        (c.cgroup.empty() || c.cgroup[0] != '/'))
      return yaml::ErrorAt(file, root["cgroup"],
                           "'cgroup' must be auto, off or an absolute path, not '" +
                               c.cgroup + "'");
  }
  auto duration = [&](const char* key, int64_t min, int64_t max, int64_t* out) -> Status {
    if (!root[key]) return Status::Ok();
    ASSIGN_OR_RETURN(int64_t v, yaml::ReadDurationMs(file, root[key], key));
    if (v < min || v > max)
      return yaml::ErrorAt(file, root[key],
                           std::string("'") + key + "' must be between " +
                               FormatDurationMs(min) + " and " + FormatDurationMs(max));
    *out = v;
    return Status::Ok();
  };
  RETURN_IF_ERROR(duration("restart_initial_delay", 0, 3'600'000, &c.restart_initial_delay_ms));
  RETURN_IF_ERROR(duration("restart_max_delay", 0, 86'400'000, &c.restart_max_delay_ms));
  RETURN_IF_ERROR(duration("restart_reset_after", 0, 86'400'000, &c.restart_reset_after_ms));
  RETURN_IF_ERROR(duration("crash_window", 1, 86'400'000, &c.crash_window_ms));
  if (root["crash_limit"]) {
    ASSIGN_OR_RETURN(c.crash_limit,
                     yaml::ReadInt(file, root["crash_limit"], "crash_limit", 1, 1'000'000));
  }
  if (root["log_max_files"]) {
    ASSIGN_OR_RETURN(c.log_max_files,
                     yaml::ReadInt(file, root["log_max_files"], "log_max_files", 1, 1000));
  }
  RETURN_IF_ERROR(cap("log_max_file_bytes", 4096, int64_t{1} << 40, &c.log_max_file_bytes));
  RETURN_IF_ERROR(cap("log_rate_limit", 1024, int64_t{1} << 40, &c.log_rate_limit));
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
