#include "daemon/config/process_file.h"

#include <csignal>
#include <cstring>
#include <initializer_list>
#include <utility>

#include "daemon/base/byte_size.h"
#include "daemon/base/fd.h"
#include "daemon/base/text_lines.h"
#include "daemon/config/build_spec.h"
#include "daemon/config/yaml_util.h"

namespace relsupd {
namespace {

constexpr size_t kMaxProcessFileBytes = 1 << 20;

Status ValidateProcessName(std::string_view name) {
  bool ok = !name.empty() && name.size() <= 32 &&
            ((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= '0' && name[0] <= '9'));
  for (char c : name)
    ok = ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_');
  if (!ok)
    return InvalidArgument("process type '" + std::string(name) +
                           "' is not valid (use [a-z0-9][a-z0-9_-]{0,31})");
  return Status::Ok();
}

Status ValidateEnvKey(std::string_view key) {
  bool ok = !key.empty() && !(key[0] >= '0' && key[0] <= '9');
  for (char c : key)
    ok = ok && ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                (c >= '0' && c <= '9') || c == '_');
  if (!ok) return InvalidArgument("'" + std::string(key) + "' is not a valid variable name");
  return Status::Ok();
}

// Reads `key` (at `node`) as one of `choices` into `out`; `must` names
// them in the error ("always, on-failure or never").
template <typename E>
void ReadChoice(const std::string& file, const YAML::Node& node,
                const std::string& key,
                std::initializer_list<std::pair<std::string_view, E>> choices,
                const std::string& must, E* out, yaml::Errors* errors,
                const std::string& prefix = "") {
  std::string s;
  if (!errors->Take(yaml::ReadString(file, node, key), &s)) return;
  for (const auto& [text, value] : choices)
    if (s == text) {
      *out = value;
      return;
    }
  errors->Add(yaml::ErrorAt(file, node, prefix + "'" + key + "' must be " + must + ", not '" + s + "'"));
}

// The one check key of `r` (tcp, http or exec) into `check`: `ready:` and
// `health:` read it alike. REQUIRES: `r` has exactly one of them.
void ParseCheckKey(const std::string& file, const YAML::Node& r,
                   ReadyCheck* check, yaml::Errors* errors) {
  if (r["tcp"]) {
    int64_t port = 0;
    if (errors->Take(yaml::ReadInt(file, r["tcp"], "tcp", 1, 65535), &port))
      *check = {ReadyKind::kTcp, static_cast<int>(port), ""};
  } else if (r["http"]) {
    std::string url;
    if (!errors->Take(yaml::ReadString(file, r["http"], "http"), &url)) return;
    if (url.rfind("http://", 0) != 0)
      errors->Add(yaml::ErrorAt(file, r["http"], "'http' must be an http:// URL"));
    else
      *check = {ReadyKind::kHttp, 0, url};
  } else {
    std::string cmd;
    if (errors->Take(yaml::ReadString(file, r["exec"], "exec"), &cmd))
      *check = {ReadyKind::kExec, 0, cmd};
  }
}

// `ready:` as a mapping of one key: {tcp: PORT}, {http: URL} or {exec: CMD}.
void ParseReadyMap(const std::string& file, const YAML::Node& r,
                   ReadyCheck* ready, yaml::Errors* errors) {
  yaml::Errors keys;
  yaml::CheckKeys(file, r, kReadyKeys, &keys);
  if (!keys.empty())
    errors->Add(keys.ToStatus());
  else
    ParseCheckKey(file, r, ready, errors);
}

void ParseReady(const std::string& file, const YAML::Node& r, ReadyCheck* ready,
                yaml::Errors* errors) {
  static const std::string kMust =
      "notify, none, {tcp: PORT}, {http: URL} or {exec: CMD}";
  if (r.IsScalar()) {
    ReadChoice(file, r, "ready",
               {{"notify", ReadyKind::kNotify}, {"none", ReadyKind::kNone}},
               kMust, &ready->kind, errors);
  } else if (r.IsMap() && r.size() == 1) {
    ParseReadyMap(file, r, ready, errors);
  } else {
    errors->Add(yaml::ErrorAt(file, r, "'ready' must be " + kMust));
  }
}

// `health: {http: URL | tcp: PORT | exec: CMD, interval: 10s, timeout: 2s,
// failures: 3}`.
void ParseHealth(const std::string& file, const std::string& name,
                 const YAML::Node& h, HealthCheck* health, yaml::Errors* errors) {
  const std::string where = "process '" + name + "': ";
  if (!h.IsMap()) {
    errors->Add(yaml::ErrorAt(file, h, where + "'health' must be {http: URL | tcp: PORT | "
                                       "exec: CMD, interval: 10s, timeout: 2s, failures: 3}"));
    return;
  }
  yaml::Errors keys;
  yaml::CheckKeys(file, h, kHealthKeys, &keys);
  if (!keys.empty()) return errors->Add(keys.ToStatus());
  const int checks = (h["tcp"] ? 1 : 0) + (h["http"] ? 1 : 0) + (h["exec"] ? 1 : 0);
  if (checks != 1) {
    errors->Add(yaml::ErrorAt(file, h, where + "'health' needs exactly one of tcp, http or exec"));
    return;
  }
  ParseCheckKey(file, h, &health->check, errors);
  if (health->check.kind == ReadyKind::kExec &&
      health->check.target.find_first_not_of(" \t") == std::string::npos)
    errors->Add(yaml::ErrorAt(file, h["exec"], where + "'exec' is empty"));
  if (h["interval"] &&
      errors->Take(yaml::ReadDurationMs(file, h["interval"], "interval"), &health->interval_ms) &&
      health->interval_ms < kMinHealthIntervalMs)
    errors->Add(yaml::ErrorAt(file, h["interval"], where + "'interval' must be at least 100ms"));
  // An exec check costs a process each time, taken from every app's
  // share of the daemon's time: at most one a second per instance.
  if (health->check.kind == ReadyKind::kExec && health->interval_ms < kMinExecHealthIntervalMs)
    errors->Add(yaml::ErrorAt(file, h["interval"] ? h["interval"] : h,
                              where + "an exec health check's 'interval' must be at least 1s"));
  if (h["timeout"] &&
      errors->Take(yaml::ReadDurationMs(file, h["timeout"], "timeout"), &health->timeout_ms) &&
      health->timeout_ms <= 0)
    errors->Add(yaml::ErrorAt(file, h["timeout"], where + "'timeout' must be above 0"));
  if (h["failures"]) {
    int64_t f = 3;
    if (errors->Take(yaml::ReadInt(file, h["failures"], "failures", 1, 1000), &f))
      health->failures = static_cast<int>(f);
  }
}

// `limits: {memory: 512M, pids: 512, nofile: 65536, cpu: 1.5}`.
void ParseLimits(const std::string& file, const std::string& name,
                 const YAML::Node& l, ProcessLimits* limits, yaml::Errors* errors) {
  if (!l.IsMap()) {
    errors->Add(yaml::ErrorAt(file, l, "process '" + name + "': 'limits' must be "
                                       "{memory: 512M, pids: 512, nofile: 65536, cpu: 1.5}"));
    return;
  }
  yaml::CheckKeys(file, l, kLimitsKeys, errors);
  if (l["memory"])
    errors->Take(yaml::ReadParsed(file, l["memory"], "memory", ParseByteSize),
                 &limits->memory_bytes);
  if (l["pids"]) errors->Take(yaml::ReadInt(file, l["pids"], "pids", 1, 4'194'304), &limits->pids);
  if (l["nofile"])
    errors->Take(yaml::ReadInt(file, l["nofile"], "nofile", 16, kMaxNofile), &limits->nofile);
  if (const YAML::Node c = l["cpu"]) {
    double cores = 0;
    bool ok = c.IsScalar();
    if (ok) {
      try {
        cores = c.as<double>();
      } catch (const YAML::Exception&) {
        ok = false;
      }
    }
    if (!ok || !(cores >= 0.01 && cores <= 4096))
      errors->Add(yaml::ErrorAt(file, c, "'cpu' must be a number of cores from 0.01 to 4096 "
                                         "(1.5: one and a half cores)"));
    else
      limits->cpu = cores;
  }
}

void ParseSockets(const std::string& file, const YAML::Node& s,
                  std::vector<std::string>* sockets, yaml::Errors* errors) {
  if (!s.IsSequence()) {
    errors->Add(yaml::ErrorAt(file, s, "'sockets' must be a list of socket names"));
    return;
  }
  for (const auto& item : s) {
    std::string sock;
    if (errors->Take(yaml::ReadString(file, item, "socket name"), &sock))
      sockets->push_back(sock);
  }
}

void ParseEnv(const std::string& file, const YAML::Node& e,
              std::map<std::string, std::string>* env, yaml::Errors* errors) {
  if (!e.IsMap()) {
    errors->Add(yaml::ErrorAt(file, e, "'env' must map NAME: VALUE"));
    return;
  }
  for (const auto& kv : e) {
    std::string key;
    if (!errors->Take(yaml::ReadString(file, kv.first, "env name"), &key)) continue;
    Status ks = ValidateEnvKey(key);
    if (!ks.ok()) {
      errors->Add(yaml::ErrorAt(file, kv.first, ks.message()));
      continue;
    }
    std::string value;
    if (errors->Take(yaml::ReadString(file, kv.second, key), &value)) (*env)[key] = value;
  }
}

// Parses one process type; every error found goes to `errors` (the spec is
// then not used).
ProcessSpec ParseProcess(const std::string& file, const std::string& name,
                         const YAML::Node& n, yaml::Errors* errors) {
  ProcessSpec p;
  p.name = name;
  if (!n.IsMap()) {
    errors->Add(yaml::ErrorAt(file, n, "process '" + name + "' must be a mapping"));
    return p;
  }
  yaml::CheckKeys(file, n, kProcessKeys, errors);
  if (!n["command"]) {
    errors->Add(yaml::ErrorAt(file, n, "process '" + name + "' has no 'command'"));
  } else if (errors->Take(yaml::ReadString(file, n["command"], "command"), &p.command) &&
             p.command.empty()) {
    errors->Add(yaml::ErrorAt(file, n["command"], "'command' is empty"));
  }
  if (n["scale"]) {
    int64_t s = 1;
    if (errors->Take(yaml::ReadInt(file, n["scale"], "scale", 0, kMaxScale), &s))
      p.scale = static_cast<int>(s);
  }
  if (const YAML::Node r = n["restart"])
    ReadChoice(file, r, "restart",
               {{"always", RestartPolicy::kAlways},
                {"on-failure", RestartPolicy::kOnFailure},
                {"never", RestartPolicy::kNever}},
               "always, on-failure or never", &p.restart, errors);
  if (const YAML::Node s = n["stop_signal"])
    errors->Take(yaml::ReadParsed(file, s, "stop_signal", ParseSignal), &p.stop_signal);
  if (n["stop_timeout"])
    errors->Take(yaml::ReadDurationMs(file, n["stop_timeout"], "stop_timeout"),
                 &p.stop_timeout_ms);
  if (const YAML::Node m = n["stop_mode"])
    ReadChoice(file, m, "stop_mode",
               {{"group", StopMode::kGroup}, {"main", StopMode::kMain}},
               "group (the stop signal to the whole process group) or main "
               "(to the main process only, as for gunicorn)",
               &p.stop_mode, errors, "process '" + name + "': ");
  if (n["ready_timeout"])
    errors->Take(yaml::ReadDurationMs(file, n["ready_timeout"], "ready_timeout"),
                 &p.ready_timeout_ms);
  if (const YAML::Node s = n["sockets"]) ParseSockets(file, s, &p.sockets, errors);
  if (const YAML::Node r = n["ready"]) ParseReady(file, r, &p.ready, errors);
  if (const YAML::Node e = n["env"]) ParseEnv(file, e, &p.env, errors);
  if (const YAML::Node h = n["health"]) ParseHealth(file, name, h, &p.health, errors);
  if (n["watchdog"] &&
      errors->Take(yaml::ReadDurationMs(file, n["watchdog"], "watchdog"), &p.watchdog_ms) &&
      p.watchdog_ms < kMinWatchdogMs)
    errors->Add(yaml::ErrorAt(file, n["watchdog"],
                              "process '" + name + "': 'watchdog' must be at least 100ms"));
  if (const YAML::Node l = n["limits"]) ParseLimits(file, name, l, &p.limits, errors);
  return p;
}

}  // namespace

Result<int> ParseSignal(const std::string& text) {
  std::string name = text.rfind("SIG", 0) == 0 ? text.substr(3) : text;
  if (!name.empty() && name.find_first_not_of("0123456789") == std::string::npos) {
    int n = std::stoi(name.substr(0, 3));
    if (n >= 1 && n < NSIG) return n;
  }
  for (int s = 1; s < NSIG; ++s) {
    const char* abbrev = sigabbrev_np(s);
    if (abbrev && name == abbrev) return s;
  }
  return InvalidArgument("'" + text + "' is not a signal (use e.g. TERM, INT, QUIT)");
}

namespace {

// `release: CMD` or `release: {command: CMD, timeout: 10m}`.
Result<ReleaseCommand> ParseReleaseCommand(const std::string& file,
                                           const YAML::Node& n) {
  ReleaseCommand rc;
  if (n.IsScalar()) {
    ASSIGN_OR_RETURN(rc.command, yaml::ReadString(file, n, "release"));
  } else if (n.IsMap()) {
    RETURN_IF_ERROR(yaml::CheckKeys(file, n, kReleaseKeys));
    if (!n["command"])
      return yaml::ErrorAt(file, n, "'release' has no 'command'");
    ASSIGN_OR_RETURN(rc.command,
                     yaml::ReadString(file, n["command"], "command"));
    if (n["timeout"]) {
      ASSIGN_OR_RETURN(rc.timeout_ms,
                       yaml::ReadDurationMs(file, n["timeout"], "timeout"));
      if (rc.timeout_ms <= 0)
        return yaml::ErrorAt(file, n["timeout"], "'timeout' must be above 0");
    }
  } else {
    return yaml::ErrorAt(
        file, n, "'release' must be a command or {command: CMD, timeout: 10m}");
  }
  if (rc.command.find_first_not_of(" \t") == std::string::npos)
    return yaml::ErrorAt(file, n, "'release' has an empty command");
  return rc;
}

}  // namespace

Result<ProcessFile> ParseProcessYaml(const std::string& text, const std::string& file) {
  ASSIGN_OR_RETURN(YAML::Node root, yaml::LoadMap(text, file));
  yaml::Errors errors;
  ProcessFile pf;
  pf.source = file;
  // yaml-cpp may throw on odd documents (e.g. complex keys); keep that inside.
  try {
    yaml::CheckKeys(file, root, kAppFileKeys, &errors);
    // `build:` is read by the build stage; checked here too, so that a
    // release is never made from a file `relsupd build` would refuse.
    if (const YAML::Node b = root["build"]; b && !b.IsNull())
      ParseBuildSection(file, b, &errors);
    if (const YAML::Node r = root["release"]; r && !r.IsNull())
      errors.Take(ParseReleaseCommand(file, r), &pf.release);
    const YAML::Node procs = root["processes"];
    if (procs && !procs.IsNull()) {
      if (!procs.IsMap()) {
        errors.Add(yaml::ErrorAt(file, procs, "'processes' must map NAME: {command: ...}"));
      } else {
        for (const auto& kv : procs) {
          std::string name;
          if (!errors.Take(yaml::ReadString(file, kv.first, "process name"), &name)) continue;
          Status ns = ValidateProcessName(name);
          if (!ns.ok()) {
            errors.Add(yaml::ErrorAt(file, kv.first, ns.message()));
            continue;
          }
          if (name == kReleaseType) {
            errors.Add(yaml::ErrorAt(
                file, kv.first,
                "'release' is the release phase, not a process type: "
                "declare it as a top-level 'release:' key"));
            continue;
          }
          if (pf.processes.count(name)) {
            errors.Add(yaml::ErrorAt(file, kv.first, "process '" + name + "' is declared twice"));
            continue;
          }
          pf.processes.emplace(name, ParseProcess(file, name, kv.second, &errors));
        }
      }
    }
  } catch (const YAML::Exception& e) {
    errors.Add(InvalidArgument(file + ":" + std::to_string(e.mark.line + 1) + ":" +
                               std::to_string(e.mark.column + 1) + ": " + e.msg));
  }
  if (!errors.empty()) return errors.ToStatus();
  RETURN_IF_ERROR(CheckFormationSize(pf, file));
  return pf;
}

int64_t TotalInstances(const ProcessFile& pf, const std::map<std::string, int>& scales) {
  int64_t total = 0;
  for (const auto& [type, p] : pf.processes) {
    auto n = scales.find(type);
    total += n != scales.end() ? n->second : p.scale;
  }
  return total;
}

Status CheckFormationSize(const ProcessFile& pf, const std::string& file) {
  if (pf.processes.size() > kMaxProcessTypes)
    return InvalidArgument(file + ": " + std::to_string(pf.processes.size()) +
                           " process types, more than the " + std::to_string(kMaxProcessTypes) +
                           " allowed");
  const int64_t total = TotalInstances(pf);
  if (total > kMaxInstances)
    return InvalidArgument(file + ": the scales add up to " + std::to_string(total) +
                           " instances, more than the " + std::to_string(kMaxInstances) +
                           " an app may run");
  return Status::Ok();
}

Result<ProcessFile> ParseProcfile(const std::string& text, const std::string& file) {
  ProcessFile pf;
  pf.source = file;
  yaml::Errors errors;
  ContentLines lines(text);
  ContentLine content;
  while (lines.Next(&content)) {
    const std::string line(content.text);
    const size_t first = content.indent;
    const std::string where = file + ":" + std::to_string(content.number) + ":";
    size_t colon = line.find(':');
    if (colon == std::string::npos) {
      errors.Add(InvalidArgument(where + "1: expected 'name: command'"));
      continue;
    }
    std::string name = line.substr(first, colon - first);
    while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) name.pop_back();
    Status ns = ValidateProcessName(name);
    if (!ns.ok()) {
      errors.Add(InvalidArgument(where + std::to_string(first + 1) + ": " + ns.message()));
      continue;
    }
    size_t cmd_start = line.find_first_not_of(" \t", colon + 1);
    if (cmd_start == std::string::npos) {
      errors.Add(InvalidArgument(where + std::to_string(colon + 2) + ": process '" + name +
                                 "' has no command"));
      continue;
    }
    if (pf.processes.count(name) ||
        (name == kReleaseType && !pf.release.command.empty())) {
      errors.Add(InvalidArgument(where + std::to_string(first + 1) + ": process '" + name +
                                 "' is declared twice"));
      continue;
    }
    if (name == kReleaseType) {  // the release phase, run once; not a type
      pf.release.command = line.substr(cmd_start);
      continue;
    }
    ProcessSpec p;
    p.name = name;
    p.command = line.substr(cmd_start);
    pf.processes.emplace(name, std::move(p));
  }
  if (!errors.empty()) return errors.ToStatus();
  RETURN_IF_ERROR(CheckFormationSize(pf, file));
  return pf;
}

namespace {

// A process file's text; its errors name it as the artifact does (`shown`),
// never by the staging path it is read from. Missing: kNotFound.
Result<std::string> ReadProcessFile(const std::string& path, const std::string& shown) {
  auto text = ReadFile(path, kMaxProcessFileBytes);
  if (text.ok() || text.status().code() == StatusCode::kNotFound) return text;
  const int err = text.status().error_number();
  if (err == 0)  // the size check
    return InvalidArgument(shown + " is larger than " + std::to_string(kMaxProcessFileBytes) +
                           " bytes, the most a process file may have");
  return Status(text.status().code(), "cannot read " + shown + ": " + std::strerror(err), err);
}

}  // namespace

Result<ProcessFile> LoadProcessFile(const std::string& dir) {
  auto yaml_text = ReadProcessFile(dir + "/relsupd.yaml", "relsupd.yaml");
  // relsupd.yaml's `release:` holds beside a Procfile's processes too.
  ReleaseCommand yaml_release;
  if (yaml_text.ok()) {
    ASSIGN_OR_RETURN(ProcessFile pf, ParseProcessYaml(*yaml_text, "relsupd.yaml"));
    if (!pf.processes.empty()) return pf;
    yaml_release = pf.release;
  } else if (yaml_text.status().code() != StatusCode::kNotFound) {
    return yaml_text.status();
  }
  auto procfile = ReadProcessFile(dir + "/Procfile", "Procfile");
  if (procfile.ok()) {
    ASSIGN_OR_RETURN(ProcessFile pf, ParseProcfile(*procfile, "Procfile"));
    if (!yaml_release.command.empty()) pf.release = yaml_release;
    if (!pf.processes.empty()) return pf;
    return InvalidArgument("Procfile declares no process");
  }
  if (procfile.status().code() != StatusCode::kNotFound) return procfile.status();
  return InvalidArgument(
      "no process file: the artifact has neither a relsupd.yaml with "
      "'processes:' nor a Procfile");
}

Status CheckProcessFiles(const std::string& dir, const std::string& shown) {
  auto yaml_text = ReadProcessFile(dir + "/relsupd.yaml", shown + "/relsupd.yaml");
  if (yaml_text.ok()) {
    ASSIGN_OR_RETURN(ProcessFile pf, ParseProcessYaml(*yaml_text, shown + "/relsupd.yaml"));
    if (!pf.processes.empty()) return Status::Ok();
  } else if (yaml_text.status().code() != StatusCode::kNotFound) {
    return yaml_text.status();
  }
  auto procfile = ReadProcessFile(dir + "/Procfile", shown + "/Procfile");
  if (procfile.ok()) return ParseProcfile(*procfile, shown + "/Procfile").status();
  if (procfile.status().code() != StatusCode::kNotFound) return procfile.status();
  return Status::Ok();
}

}  // namespace relsupd
