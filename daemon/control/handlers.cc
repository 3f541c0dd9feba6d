#include "daemon/control/handlers.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "daemon/activate/app_sockets.h"
#include "daemon/base/paths.h"
#include "daemon/base/socket_address.h"
#include "daemon/base/users.h"
#include "daemon/base/uv_work.h"
#include "daemon/base/version.h"
#include "daemon/control/long_poll.h"
#include "daemon/control/paging.h"
#include "daemon/control/params.h"
#include "daemon/control/read_jobs.h"
#include "daemon/logs/log_store.h"
#include "daemon/run/run_service.h"
#include "daemon/store/release_service.h"
#include "daemon/protocol/methods.h"
#include "daemon/store/layout.h"

namespace relsupd {
namespace {

using rpc::Json;
namespace method = rpc::method;

constexpr int64_t kDefaultHistoryLimit = 50;
constexpr int64_t kMaxHistoryLimit = 100'000;
constexpr size_t kMaxSpecBytes = 256 * 1024;

using params::ActorOf;
constexpr auto StringParam = &params::String;

// An event's detail as JSON when it is (the daemon writes it so), else as
// its text. Depth-checked like any message: the ledger file is not trusted.
Json DetailJson(const std::string& detail) {
  auto parsed = rpc::ParseMessage(detail);
  return parsed.ok() ? std::move(parsed).value() : Json(detail);
}

Json EventToJson(const Event& e) {
  return {{"id", e.id},
          {"time", FormatTimeUtc(e.time_ms)},
          {"app", e.app},
          {"kind", e.kind},
          {"release", e.release},
          {"actor_uid", e.actor_uid},
          {"actor", e.actor_name},
          {"detail", DetailJson(e.detail)},
          {"hash", e.hash}};
}

// The running binary; " (deleted)" once a package upgrade replaced it.
std::string OwnExe() {
  std::error_code ec;
  return std::filesystem::read_symlink("/proc/self/exe", ec).string();
}

Result<Json> DaemonInfo(const DaemonContext& ctx) {
  return Json{{"version", kVersion},
              {"pid", static_cast<int64_t>(getpid())},
              {"uptime_ms", ctx.clock->MonotonicMs() - ctx.started_ms},
              {"image_uptime_ms", ctx.clock->MonotonicMs() - ctx.image_started_ms},
              {"reexecs", ctx.reexecs},
              {"exe", OwnExe()},
              {"state_dir", ctx.state_dir},
              {"socket", ctx.socket},
              {"schema_version", ctx.ledger->schema_version()}};
}

Result<Json> AppCreate(DaemonContext& ctx, const Json& params, const Peer& peer) {
  ASSIGN_OR_RETURN(AppSpec spec, AppSpecFromJson(params));
  RETURN_IF_ERROR(FillAppDefaults(ctx, &spec));
  RETURN_IF_ERROR(ctx.ledger->CreateApp(spec, ActorOf(peer)));
  RETURN_IF_ERROR(SecureAppDir(ctx.state_dir, spec.name,
                               static_cast<gid_t>(spec.gid)));
  return AppSpecToJson(spec);
}

Result<Json> AppApply(DaemonContext& ctx, const Json& params, const Peer& peer) {
  // Refused, not ignored: a param this daemon does not know (a `check` sent
  // to an older one) must not turn into a real apply.
  RETURN_IF_ERROR(params::CheckKnown(params, {"yaml", "file", "spec", "check"}));
  AppSpec spec;
  if (params.contains("yaml")) {
    ASSIGN_OR_RETURN(std::string text, StringParam(params, "yaml"));
    if (text.size() > kMaxSpecBytes)
      return InvalidArgument("app spec is larger than " +
                             std::to_string(kMaxSpecBytes) + " bytes");
    std::string file = "app spec";
    if (params.contains("file")) {
      ASSIGN_OR_RETURN(file, StringParam(params, "file"));
    }
    ASSIGN_OR_RETURN(spec, ParseAppSpecYaml(text, file));
  } else if (params.contains("spec")) {
    ASSIGN_OR_RETURN(spec, AppSpecFromJson(params["spec"]));
  } else {
    return InvalidArgument("app.apply needs param 'yaml' or 'spec'");
  }
  bool check = false;
  if (auto it = params.find("check"); it != params.end()) {
    if (!it->is_boolean()) return InvalidArgument("param 'check' must be a boolean");
    check = it->get<bool>();
  }
  RETURN_IF_ERROR(FillAppDefaults(ctx, &spec));
  if (check) {
    // What apply would change, changing nothing: {"field": [old, new]};
    // every field, old null, for an app that does not exist yet.
    auto existing = ctx.ledger->GetApp(spec.name);
    if (!existing.ok() && existing.status().code() != StatusCode::kNotFound)
      return existing.status();
    Json diff = Json::object();
    if (existing.ok()) {
      diff = AppSpecChanges(*existing, spec);
    } else {
      const Json fields = AppSpecToJson(spec);
      for (const auto& [k, v] : fields.items()) diff[k] = {nullptr, v};
    }
    const bool changed = !existing.ok() || !diff.empty();
    return Json{{"name", spec.name}, {"changed", changed}, {"check", true},
                {"exists", existing.ok()}, {"diff", diff}, {"app", AppSpecToJson(spec)}};
  }
  ASSIGN_OR_RETURN(bool changed, ctx.ledger->ApplyApp(spec, ActorOf(peer)));
  RETURN_IF_ERROR(SecureAppDir(ctx.state_dir, spec.name,
                               static_cast<gid_t>(spec.gid)));
  return Json{{"name", spec.name}, {"changed", changed}, {"app", AppSpecToJson(spec)}};
}

// app.delete: {name, stop?, check?}. The reply comes once the app's files
// are gone: {name, deleted, stopped (instances), objects_removed}. With
// check, nothing is done: the refusal it would get, or {name, check,
// deleted: false, would_stop}.
void AppDelete(DaemonContext& ctx, const Request& r, Reply reply) {
  if (Status s = params::CheckKnown(r.params, {"name", "stop", "check"}); !s.ok())
    return reply(s);
  auto name = StringParam(r.params, "name");
  if (!name.ok()) return reply(name.status());
  if (Status s = ValidateAppName(*name); !s.ok()) return reply(s);
  bool stop = false;
  if (auto it = r.params.find("stop"); it != r.params.end()) {
    if (!it->is_boolean()) return reply(InvalidArgument("param 'stop' must be a boolean"));
    stop = it->get<bool>();
  }
  const auto mode = stop ? RunService::DeleteStop::kStop : RunService::DeleteStop::kRefuse;
  if (auto it = r.params.find("check"); it != r.params.end()) {
    if (!it->is_boolean()) return reply(InvalidArgument("param 'check' must be a boolean"));
    if (it->get<bool>()) {
      Result<int> would = ctx.runs->CheckDelete(*name, mode);
      if (!would.ok()) return reply(would.status());
      return reply(Json{{"name", *name}, {"check", true}, {"deleted", false},
                        {"would_stop", *would}});
    }
  }
  DaemonContext* c = &ctx;
  c->runs->Delete(
      *name, mode,
      ActorOf(r.peer), [c, reply, app = *name](Result<int> stopped) {
        if (!stopped.ok()) return reply(stopped.status());
        c->logs->Forget(app);
        // A `logs -f APP` parked on it ends now, not at its timeout.
        if (c->polls != nullptr) c->polls->Poke("logs:" + app);
        c->releases->RemoveApp(app, [reply, app, n = *stopped](Result<uint64_t> removed) {
          if (!removed.ok())
            return reply(removed.status().WithContext(
                "app '" + app + "' is deleted, but its files are not all removed (the next "
                "start of the daemon removes them)"));
          reply(Json{{"name", app}, {"deleted", true}, {"stopped", n},
                     {"objects_removed", *removed}});
        });
      });
}

Result<Json> AppShow(DaemonContext& ctx, const Json& params) {
  ASSIGN_OR_RETURN(std::string name, StringParam(params, "name"));
  RETURN_IF_ERROR(ValidateAppName(name));
  ASSIGN_OR_RETURN(AppSpec spec, ctx.ledger->GetApp(name));
  return AppSpecToJson(spec);
}

Result<Json> AppList(DaemonContext& ctx) {
  ASSIGN_OR_RETURN(std::vector<AppSpec> apps, ctx.ledger->ListApps());
  Json out = Json::array();
  for (const AppSpec& a : apps) out.push_back(AppSpecToJson(a));
  return out;
}

// The newest `limit` events (oldest first), or with `after` the oldest
// `limit` events after that id; either way at most one page
// (paging::kPageItems events, paging::kPageBytes of them). The client asks
// for the rest with `after` set to the last id it got, until a page comes
// back empty or it has all it wanted.
Result<Json> History(DaemonContext& ctx, const Json& params) {
  std::optional<std::string> app;
  int64_t limit = kDefaultHistoryLimit;
  std::optional<int64_t> after;
  for (const auto& [key, v] : params.items()) {
    if (key == "app") {
      if (!v.is_string()) return InvalidArgument("param 'app' must be a string");
      app = v.get<std::string>();
      RETURN_IF_ERROR(ValidateAppName(*app));
      // A deleted app's history reads on.
      if (Status s = ctx.ledger->GetApp(*app).status(); !s.ok()) {
        auto deleted = ctx.ledger->IsDeletedApp(*app);
        if (!deleted.ok()) return deleted.status();
        if (!*deleted) return s;
      }
    } else if (key == "limit") {
      if (!v.is_number_integer() || v.get<int64_t>() < 1 ||
          v.get<int64_t>() > kMaxHistoryLimit)
        return InvalidArgument("param 'limit' must be an integer from 1 to " +
                               std::to_string(kMaxHistoryLimit));
      limit = v.get<int64_t>();
    } else if (key == "after") {
      if (!v.is_number_integer() || v.get<int64_t>() < 0)
        return InvalidArgument("param 'after' must be an event id (an integer from 0)");
      after = v.get<int64_t>();
    } else {
      return InvalidArgument("unknown param '" + key + "'");
    }
  }
  int64_t cursor;
  if (after) {
    cursor = *after;
  } else {
    ASSIGN_OR_RETURN(cursor, ctx.ledger->CursorBeforeNewest(app, limit));
  }
  const int64_t page = std::min<int64_t>(limit, paging::kPageItems);
  ASSIGN_OR_RETURN(std::vector<Event> events, ctx.ledger->EventsAfter(app, cursor, page));
  Json out = Json::array();
  size_t bytes = 0;
  for (const Event& e : events) {
    Json j = EventToJson(e);
    bytes += paging::SerialisedSize(j) + 1;
    // At least one event a page, so paging always moves on.
    if (!out.empty() && bytes > paging::kPageBytes) break;
    out.push_back(std::move(j));
  }
  return out;
}

// The walk grows with the history (a million events is seconds), so it runs
// on the pool, on a connection of its own, within the read-only work budget
// (read_jobs.h); concurrent calls share one walk.
void HistoryVerify(DaemonContext& ctx, const Request& r, Reply reply) {
  ctx.read_jobs->Submit(
      r.peer.uid, "history.verify",
      [loop = ctx.loop, path = ctx.ledger->path()](Reply done) {
        RunOffLoop<Result<Json>>(
            loop,
            [path]() -> Result<Json> {
              ASSIGN_OR_RETURN(VerifyReport report, Ledger::VerifyHistoryOf(path));
              return Json{{"ok", report.ok()},
                          {"checked", report.checked},
                          {"problems", report.problems},
                          {"more_problems", report.more_problems}};
            },
            done);
      },
      reply);
}

}  // namespace

Result<uint32_t> AllocateAppUid(const std::vector<AppSpec>& apps,
                                const std::set<int64_t>& retired, uint32_t lo, uint32_t hi) {
  std::set<int64_t> taken;
  for (const AppSpec& a : apps) {
    taken.insert(a.uid);
    taken.insert(a.gid);
  }
  for (bool reuse : {false, true}) {
    for (uint64_t id = lo; id <= hi; ++id) {
      if (taken.count(static_cast<int64_t>(id)) != 0) continue;
      if (retired.count(static_cast<int64_t>(id)) != (reuse ? 1u : 0u)) continue;
      const auto uid = static_cast<uid_t>(id);
      // An id some user or group of this host already has is not ours to give.
      auto user = LookupUid(uid);
      if (user.ok() || user.status().code() != StatusCode::kNotFound) continue;
      if (GroupExists(static_cast<gid_t>(id))) continue;
      if (reuse && UidHasProcesses(uid)) continue;
      return static_cast<uint32_t>(id);
    }
  }
  return FailedPrecondition("no free uid left in app_uid_range " +
                            std::to_string(lo) + "-" + std::to_string(hi) +
                            " (daemon config): give the app a --user or widen "
                            "the range");
}

namespace {

// Whether two listening addresses cannot both be bound: the same unix
// path, or the same tcp port on the same host or where either is a
// wildcard.
bool Overlap(const SocketAddress& a, const SocketAddress& b) {
  if (a.kind != b.kind) return false;
  if (a.kind == SocketAddress::Kind::kUnix)
    return std::filesystem::path(a.path).lexically_normal() ==
           std::filesystem::path(b.path).lexically_normal();
  auto wildcard = [](const SocketAddress& x) { return x.host == "0.0.0.0" || x.host == "::"; };
  return a.port == b.port && (a.host == b.host || wildcard(a) || wildcard(b));
}

// One address is one app's: a second app on it could never bind it, and
// its deploy would fail with a misleading cause.
Status CheckSocketsFree(const AppSpec& spec, const std::vector<AppSpec>& apps) {
  for (const SocketSpec& mine : spec.sockets) {
    auto a = ParseSocketAddress(mine.address);
    if (!a.ok()) continue;  // the spec's own validation names it
    for (const AppSpec& other : apps) {
      if (other.name == spec.name) continue;
      for (const SocketSpec& theirs : other.sockets) {
        auto b = ParseSocketAddress(theirs.address);
        if (b.ok() && Overlap(*a, *b))
          return AlreadyExists("app '" + spec.name + "': socket '" + mine.name + "' (" +
                               mine.address + ") is taken by app '" + other.name +
                               "' (its socket '" + theirs.name + "', " + theirs.address + ")");
      }
    }
  }
  return Status::Ok();
}

// An app's unix socket is not one of the daemon's own, nor in its state
// directory (said early here by path; the bind checks again by the
// directory it finds, links and all: AppSockets).
Status CheckSocketsNotDaemons(const AppSpec& spec, const DaemonContext& ctx) {
  namespace fs = std::filesystem;
  const fs::path control = fs::path(ctx.socket).lexically_normal();
  const fs::path notify = fs::path(NotifySocketPath(control.string()));
  const fs::path state = fs::path(ctx.state_dir).lexically_normal();
  for (const SocketSpec& mine : spec.sockets) {
    auto a = ParseSocketAddress(mine.address);
    if (!a.ok() || a->kind != SocketAddress::Kind::kUnix) continue;
    const fs::path p = fs::path(a->path).lexically_normal();
    const std::string what = "app '" + spec.name + "': socket '" + mine.name + "' (" +
                             mine.address + ")";
    if (!ctx.socket.empty() && (p == control || p == notify))
      return InvalidArgument(what + " is the daemon's own socket");
    if (!ctx.state_dir.empty()) {
      const fs::path rel = p.lexically_relative(state);
      if (!rel.empty() && *rel.begin() != "..")
        return InvalidArgument(what + " is inside the daemon's state directory '" +
                               ctx.state_dir + "'");
    }
    // The same by the directory itself, links and all, where it exists.
    const UnixSocketGuard guard{ctx.state_dir, {control.string(), notify.string()}};
    if (Status s = CheckUnixSocketPath(mine.address, guard); !s.ok())
      return Status(s.code(), "app '" + spec.name + "': socket '" + mine.name + "': " +
                                  s.message(), s.error_number());
  }
  return Status::Ok();
}

}  // namespace

Status FillAppDefaults(const DaemonContext& ctx, AppSpec* spec) {
  const std::string what = "app '" + spec->name + "'";
  // uid, gid and dynamic_user are the daemon's to set, never a client's.
  spec->uid = spec->gid = -1;
  spec->dynamic_user = false;
  ASSIGN_OR_RETURN(std::vector<AppSpec> apps, ctx.ledger->ListApps());
  RETURN_IF_ERROR(CheckSocketsFree(*spec, apps));
  RETURN_IF_ERROR(CheckSocketsNotDaemons(*spec, ctx));
  const AppSpec* existing = nullptr;
  for (const AppSpec& a : apps)
    if (a.name == spec->name) existing = &a;
  const bool root_daemon = ::geteuid() == 0;

  if (spec->user.empty() && !root_daemon) {
    // A daemon that is not root can run apps only as itself.
    spec->user = UserName(::geteuid());
  }
  if (spec->user.empty()) {
    // A uid of the app's own, for its lifetime (docs/architecture.md).
    spec->dynamic_user = true;
    if (existing != nullptr && existing->dynamic_user && existing->uid > 0) {
      spec->uid = existing->uid;
      spec->gid = existing->gid;
    } else {
      std::vector<AppSpec> others;
      for (const AppSpec& a : apps)
        if (a.name != spec->name) others.push_back(a);
      ASSIGN_OR_RETURN(std::set<int64_t> retired, ctx.ledger->RetiredUids());
      ASSIGN_OR_RETURN(uint32_t id, AllocateAppUid(others, retired, ctx.app_uid_min,
                                                   ctx.app_uid_max));
      spec->uid = spec->gid = id;
    }
    if (!spec->group.empty()) {
      auto gid = LookupGroupOrId(spec->group);
      if (!gid.ok()) return InvalidArgument(what + ": " + gid.status().message());
      spec->gid = *gid;
    }
  } else {
    auto user = LookupUserOrId(spec->user);
    if (!user.ok()) return InvalidArgument(what + ": " + user.status().message());
    spec->uid = user->uid;
    spec->gid = user->gid;
    if (spec->group.empty()) spec->group = GroupName(user->gid);
    auto gid = LookupGroupOrId(spec->group);
    if (!gid.ok()) return InvalidArgument(what + ": " + gid.status().message());
    spec->gid = *gid;
    for (const AppSpec& a : apps)
      if (a.name != spec->name && a.dynamic_user && a.uid == spec->uid)
        return InvalidArgument(what + ": uid " + std::to_string(spec->uid) +
                               " is the dynamic user of app '" + a.name +
                               "'; pick another user");
  }
  if (spec->uid == 0 && !ctx.allow_root_apps)
    return PermissionDenied(
        what + ": user '" + spec->user +
        "' is uid 0 (root); apps never run as root unless the daemon config "
        "sets 'allow_root_apps: true'");
  return Status::Ok();
}

void RegisterHandlers(Dispatcher* d, DaemonContext* ctx) {
  d->Register(method::kDaemonInfo, Right::kRead,
              [ctx](const Request&) { return DaemonInfo(*ctx); });
  d->RegisterAsync(method::kDaemonReexec, Right::kChange, [ctx](const Request& r, Reply reply) {
    if (!ctx->reexec) return reply(Status(StatusCode::kUnavailable, "this daemon cannot re-exec"));
    ctx->reexec(r, std::move(reply));
  });
  d->Register(method::kAppCreate, Right::kChange, [ctx](const Request& r) {
    return AppCreate(*ctx, r.params, r.peer);
  });
  d->Register(method::kAppApply, Right::kChange, [ctx](const Request& r) {
    return AppApply(*ctx, r.params, r.peer);
  });
  d->RegisterAsync(method::kAppDelete, Right::kChange,
                   [ctx](const Request& r, Reply reply) { AppDelete(*ctx, r, reply); });
  d->Register(method::kAppShow, Right::kRead,
              [ctx](const Request& r) { return AppShow(*ctx, r.params); });
  d->Register(method::kAppList, Right::kRead,
              [ctx](const Request&) { return AppList(*ctx); });
  d->Register(method::kHistory, Right::kRead,
              [ctx](const Request& r) { return History(*ctx, r.params); });
  d->RegisterAsync(method::kHistoryVerify, Right::kRead,
                   [ctx](const Request& r, Reply reply) { HistoryVerify(*ctx, r, reply); });
}

}  // namespace relsupd
