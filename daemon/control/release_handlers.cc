// Methods of the release stage: build.*, release.*, config.*.
#include <nlohmann/json.hpp>

#include "daemon/base/env_file.h"
#include "daemon/base/release_id.h"
#include "daemon/base/uv_work.h"
#include "daemon/control/handlers.h"
#include "daemon/control/paging.h"
#include "daemon/control/params.h"
#include "daemon/control/read_jobs.h"
#include "daemon/control/release_json.h"
#include "daemon/protocol/methods.h"
#include "daemon/store/release_service.h"
#include "daemon/store/slots.h"

namespace relsupd {
namespace {

using rpc::Json;
namespace method = rpc::method;

constexpr char kMask[] = "********";

// The shared param readers (params.h), under this file's names.
constexpr auto Str = &params::String;
constexpr auto AppParam = &params::App;
constexpr auto ReleaseParam = &params::Release;
using params::ActorOf;
using params::CheckKnown;

Json Masked(const Json& config) {
  Json out = Json::object();
  for (const auto& [k, v] : config.items()) out[k] = kMask;
  return out;
}

Result<Json> ReleaseConfigJson(const ReleaseRow& r) {
  auto env = ReleaseConfigOf(r);
  if (!env.ok()) return Corruption("config of release v" + std::to_string(r.number) + " is malformed");
  return Json(*env);
}

// A ReleaseService callback that replies with its result's JSON form.
template <typename T>
ReleaseService::Done<T> ReplyWith(Reply reply, Json (*to_json)(const T&)) {
  return [reply = std::move(reply), to_json](Result<T> r) {
    if (!r.ok()) return reply(r.status());
    reply(to_json(*r));
  };
}

void BuildImport(DaemonContext& ctx, const Request& r, Reply reply) {
  Status s = CheckKnown(r.params, {"app"});
  auto app = AppParam(r.params);
  if (!s.ok() || !app.ok()) return reply(s.ok() ? app.status() : s);
  if (r.fds->empty())
    return reply(InvalidArgument("build.import needs the artifact passed as an open file (SCM_RIGHTS)"));
  Fd file = std::move(r.fds->front());
  r.fds->pop_front();
  ctx.releases->ImportBuild(*app, std::move(file), ActorOf(r.peer),
                            ReplyWith(reply, &ImportedBuildToJson));
}

Result<Json> BuildList(DaemonContext& ctx, const Json& params) {
  RETURN_IF_ERROR(CheckKnown(params, {"app"}));
  ASSIGN_OR_RETURN(std::string app, AppParam(params));
  ASSIGN_OR_RETURN(std::vector<BuildRow> builds, ctx.ledger->ListBuilds(app));
  ASSIGN_OR_RETURN(std::vector<ReleaseRow> releases, ctx.ledger->ListReleases(app));
  Json out = Json::array();
  for (const BuildRow& b : builds) {
    Json used = Json::array();
    for (const ReleaseRow& rel : releases)
      if (rel.build == b.sha256) used.push_back(ReleaseId(rel.number).ToString());
    Json j = BuildToJson(b);
    j["releases"] = std::move(used);
    out.push_back(std::move(j));
  }
  return out;
}

Result<ReleaseService::ConfigChange> ChangeFrom(const Json& params) {
  ReleaseService::ConfigChange change;
  if (auto it = params.find("set"); it != params.end()) {
    if (!it->is_object()) return InvalidArgument("param 'set' must be an object of KEY: value");
    for (const auto& [k, v] : it->items()) {
      if (!v.is_string()) {
        RETURN_IF_ERROR(ValidateConfigKey(k));
        return InvalidArgument("config value of '" + k + "' must be a string");
      }
      change.set[k] = v.get<std::string>();
    }
  }
  if (auto it = params.find("unset"); it != params.end()) {
    if (!it->is_array()) return InvalidArgument("param 'unset' must be an array of keys");
    for (const Json& k : *it) {
      if (!k.is_string()) return InvalidArgument("param 'unset' must hold strings");
      change.unset.push_back(k);
    }
  }
  return change;
}

void ReleaseCreate(DaemonContext& ctx, const Request& r, Reply reply) {
  Status s = CheckKnown(r.params, {"app", "build", "set", "reuse"});
  if (!s.ok()) return reply(s);
  auto app = AppParam(r.params);
  if (!app.ok()) return reply(app.status());
  auto build = Str(r.params, "build");
  if (!build.ok()) return reply(build.status());
  auto change = ChangeFrom(r.params);
  if (!change.ok()) return reply(change.status());
  if (auto it = r.params.find("reuse"); it != r.params.end()) {
    if (!it->is_boolean()) return reply(InvalidArgument("param 'reuse' must be a boolean"));
    change->reuse = it->get<bool>();
  }
  ctx.releases->CreateRelease(*app, *build, *change, ActorOf(r.peer),
                              ReplyWith(reply, &CreatedReleaseToJson));
}

void ConfigChange(DaemonContext& ctx, const Request& r, Reply reply, bool unset) {
  Status s = CheckKnown(r.params, {"app", unset ? "unset" : "set", "force"});
  if (!s.ok()) return reply(s);
  auto app = AppParam(r.params);
  if (!app.ok()) return reply(app.status());
  auto change = ChangeFrom(r.params);
  if (!change.ok()) return reply(change.status());
  if (auto it = r.params.find("force"); it != r.params.end() && !it->is_boolean())
    return reply(InvalidArgument("param 'force' must be a boolean"));
  // Without `force`, a change that changes nothing makes no release.
  change->only_if_changed = !r.params.value("force", false);
  if (change->set.empty() && change->unset.empty())
    return reply(InvalidArgument(unset ? "name at least one key to unset"
                                       : "give at least one KEY=VALUE to set"));
  ctx.releases->CreateRelease(*app, "", *change, ActorOf(r.peer),
                              ReplyWith(reply, &CreatedReleaseToJson));
}

// The release a read of `app` acts on when none is named: the live one, the
// newest while none was ever live (store's BaseRelease); NotFound naming
// `none` when the app has no release.
Result<ReleaseRow> DefaultRelease(DaemonContext& ctx, const std::string& app) {
  ASSIGN_OR_RETURN(std::vector<ReleaseRow> releases, ctx.ledger->ListReleases(app));
  ASSIGN_OR_RETURN(Ledger::Activation activation, ctx.ledger->ActivationOf(app));
  const ReleaseRow* base = BaseRelease(releases, activation.active);
  if (base == nullptr) return NotFound("app '" + app + "' has no release");
  return *base;
}

// The release the param "release" names, or DefaultRelease without it.
Result<ReleaseRow> ReleaseNamedOrDefault(DaemonContext& ctx, const Json& params,
                                         const std::string& app) {
  if (!params.contains("release")) return DefaultRelease(ctx, app);
  ASSIGN_OR_RETURN(int64_t n, ReleaseParam(params, "release"));
  return ctx.ledger->GetRelease(app, n);
}

// Whether release `n` of `app` is the live one.
Result<bool> IsLive(DaemonContext& ctx, const std::string& app, int64_t n) {
  ASSIGN_OR_RETURN(Ledger::Activation activation, ctx.ledger->ActivationOf(app));
  return activation.active == n;
}

Result<Json> ReleaseList(DaemonContext& ctx, const Json& params) {
  RETURN_IF_ERROR(CheckKnown(params, {"app"}));
  ASSIGN_OR_RETURN(std::string app, AppParam(params));
  RETURN_IF_ERROR(ctx.ledger->GetApp(app).status());
  ASSIGN_OR_RETURN(std::vector<ReleaseRow> releases, ctx.ledger->ListReleases(app));
  ASSIGN_OR_RETURN(Ledger::Activation activation, ctx.ledger->ActivationOf(app));
  Json out = Json::array();
  for (const ReleaseRow& r : releases) {
    Json j = ReleaseToJson(r);
    j["active"] = r.number == activation.active;
    j["previous"] = r.number == activation.previous;
    out.push_back(std::move(j));
  }
  return out;
}

// Counts the files of a slot's manifest. Runs on the thread pool: a
// manifest can hold many entries.
Result<Json> SlotCounts(const std::string& slot) {
  ASSIGN_OR_RETURN(Manifest manifest, ReadSlotManifest(slot));
  int64_t files = 0, bytes = 0;
  for (const auto& [p, e] : manifest.entries)
    if (e.type == EntryType::kFile) {
      ++files;
      bytes += static_cast<int64_t>(e.size);
    }
  return Json{{"files", files}, {"bytes", bytes}};
}

std::string JobKey(const char* what, const std::string& app, int64_t a, int64_t b = 0) {
  return std::string(what) + " " + app + " " + std::to_string(a) + " " + std::to_string(b);
}

void ReleaseShow(DaemonContext& ctx, const Request& r, Reply reply) {
  struct Head {
    Json out;
    std::string slot, key;
    bool pruned = false;
  };
  auto head = [&]() -> Result<Head> {
    RETURN_IF_ERROR(CheckKnown(r.params, {"app", "release"}));
    ASSIGN_OR_RETURN(std::string app, AppParam(r.params));
    ASSIGN_OR_RETURN(int64_t n, ReleaseParam(r.params, "release"));
    RETURN_IF_ERROR(ctx.ledger->GetApp(app).status());
    ASSIGN_OR_RETURN(ReleaseRow row, ctx.ledger->GetRelease(app, n));
    ASSIGN_OR_RETURN(Ledger::Activation activation, ctx.ledger->ActivationOf(app));
    Head h;
    h.slot = ctx.releases->SlotDir(app, n);
    h.out = ReleaseToJson(row);
    h.out["slot"] = h.slot;
    h.out["active"] = n == activation.active;
    h.out["previous"] = n == activation.previous;
    h.pruned = row.pruned;
    h.key = JobKey("show", app, n);
    return h;
  };
  auto h = head();
  if (!h.ok()) return reply(h.status());
  if (h->pruned) return reply(std::move(h->out));
  // The manifest is read on the pool, within the read-only work budget.
  uv_loop_t* loop = ctx.loop;
  ctx.read_jobs->Submit(
      r.peer.uid, h->key,
      [loop, slot = h->slot](Reply done) {
        RunOffLoop<Result<Json>>(loop, [slot] { return SlotCounts(slot); }, done);
      },
      [out = std::move(h->out), reply](Result<Json> counts) mutable {
        // An unreadable manifest leaves the counts out, as before.
        if (counts.ok()) out.update(*counts);
        reply(std::move(out));
      });
}

// The file part of a diff, capped. Runs on the thread pool.
Result<Json> DiffFiles(const std::string& from_slot, const std::string& to_slot) {
  ASSIGN_OR_RETURN(Manifest ma, ReadSlotManifest(from_slot));
  ASSIGN_OR_RETURN(Manifest mb, ReadSlotManifest(to_slot));
  ManifestDiff d = DiffManifests(ma, mb);
  bool truncated = false;
  Json files = {{"added", paging::CappedList(d.added, &truncated)},
                {"removed", paging::CappedList(d.removed, &truncated)},
                {"changed", paging::CappedList(d.changed, &truncated)},
                {"counts", {{"added", d.added.size()},
                            {"removed", d.removed.size()},
                            {"changed", d.changed.size()}}}};
  files["truncated"] = truncated;
  return files;
}

void ReleaseDiff(DaemonContext& ctx, const Request& r, Reply reply) {
  struct Head {
    Json out;
    std::string from_slot, to_slot;
    bool compare_files = false;
    std::string key;
  };
  auto head = [&]() -> Result<Head> {
    RETURN_IF_ERROR(CheckKnown(r.params, {"app", "from", "to"}));
    ASSIGN_OR_RETURN(std::string app, AppParam(r.params));
    ASSIGN_OR_RETURN(int64_t a, ReleaseParam(r.params, "from"));
    ASSIGN_OR_RETURN(int64_t b, ReleaseParam(r.params, "to"));
    RETURN_IF_ERROR(ctx.ledger->GetApp(app).status());
    ASSIGN_OR_RETURN(ReleaseRow ra, ctx.ledger->GetRelease(app, a));
    ASSIGN_OR_RETURN(ReleaseRow rb, ctx.ledger->GetRelease(app, b));
    ASSIGN_OR_RETURN(Json ca, ReleaseConfigJson(ra));
    ASSIGN_OR_RETURN(Json cb, ReleaseConfigJson(rb));
    std::vector<std::string> added, removed, changed;
    for (const auto& [k, v] : cb.items()) {
      if (!ca.contains(k)) added.push_back(k);
      else if (ca[k] != v) changed.push_back(k);
    }
    for (const auto& [k, v] : ca.items())
      if (!cb.contains(k)) removed.push_back(k);
    bool truncated = false;
    Json config = {{"added", paging::CappedList(added, &truncated)},
                   {"removed", paging::CappedList(removed, &truncated)},
                   {"changed", paging::CappedList(changed, &truncated)}};
    config["truncated"] = truncated;
    Head h;
    h.out = {{"from", ReleaseId(a).ToString()},
             {"to", ReleaseId(b).ToString()},
             {"build_changed", ra.build != rb.build},
             {"from_build", ra.build.substr(0, 12)},
             {"to_build", rb.build.substr(0, 12)},
             {"config", std::move(config)},
             {"files", nullptr}};  // a pruned slot has no files left to compare
    h.compare_files = !ra.pruned && !rb.pruned;
    h.from_slot = ctx.releases->SlotDir(app, a);
    h.to_slot = ctx.releases->SlotDir(app, b);
    h.key = JobKey("diff", app, a, b);
    return h;
  };
  auto h = head();
  if (!h.ok()) return reply(h.status());
  if (!h->compare_files) return reply(std::move(h->out));
  uv_loop_t* loop = ctx.loop;
  ctx.read_jobs->Submit(
      r.peer.uid, h->key,
      [loop, from = h->from_slot, to = h->to_slot](Reply done) {
        RunOffLoop<Result<Json>>(loop, [from, to] { return DiffFiles(from, to); }, done);
      },
      [out = std::move(h->out), reply](Result<Json> files) mutable {
        if (!files.ok()) return reply(files.status());
        out["files"] = std::move(*files);
        reply(std::move(out));
      });
}

// release.verify, capped, built on the thread pool.
Result<Json> VerifyToJson(const std::string& slot, const std::string& digest,
                          const std::string& build, int64_t number) {
  ASSIGN_OR_RETURN(VerifyResult v, VerifySlot(slot, digest, build));
  bool truncated = false;
  Json out = {{"release", ReleaseId(number).ToString()},
              {"ok", v.ok()},
              {"digest_ok", v.digest_ok},
              {"problems", paging::CappedList(v.problems, &truncated)},
              {"added", paging::CappedList(v.diff.added, &truncated)},
              {"removed", paging::CappedList(v.diff.removed, &truncated)},
              {"changed", paging::CappedList(v.diff.changed, &truncated)},
              {"counts", {{"added", v.diff.added.size()},
                          {"removed", v.diff.removed.size()},
                          {"changed", v.diff.changed.size()}}}};
  out["truncated"] = truncated;
  return out;
}

void ReleaseVerify(DaemonContext& ctx, const Request& r, Reply reply) {
  Status s = CheckKnown(r.params, {"app", "release"});
  auto app = AppParam(r.params);
  if (!s.ok() || !app.ok()) return reply(s.ok() ? app.status() : s);
  if (Status a = ctx.ledger->GetApp(*app).status(); !a.ok()) return reply(a);
  auto row = ReleaseNamedOrDefault(ctx, r.params, *app);
  if (!row.ok()) return reply(row.status());
  const int64_t n = row->number;
  auto live = IsLive(ctx, *app, n);
  if (!live.ok()) return reply(live.status());
  if (row->pruned)
    return reply(FailedPrecondition("release " + ReleaseId(n).ToString() + " of app '" + *app +
                                    "' was pruned: its slot is gone"));
  // Not ReleaseService::VerifyRelease: that one is for activations and runs
  // at once; this one waits its turn in the read-only work budget.
  uv_loop_t* loop = ctx.loop;
  ctx.read_jobs->Submit(
      r.peer.uid, JobKey("verify", *app, n),
      [loop, slot = ctx.releases->SlotDir(*app, n), digest = row->digest,
       build = row->build, n](Reply done) {
        RunOffLoop<Result<Json>>(
            loop, [=] { return VerifyToJson(slot, digest, build, n); }, done);
      },
      [reply, live = *live](Result<Json> out) {
        if (out.ok()) (*out)["live"] = live;
        reply(std::move(out));
      });
}

Result<Json> ConfigShow(DaemonContext& ctx, const Request& r) {
  const Json& params = r.params;
  RETURN_IF_ERROR(CheckKnown(params, {"app", "release", "reveal"}));
  ASSIGN_OR_RETURN(std::string app, AppParam(params));
  bool reveal = false;
  if (auto it = params.find("reveal"); it != params.end()) {
    if (!it->is_boolean()) return InvalidArgument("param 'reveal' must be true or false");
    reveal = *it;
  }
  if (reveal && r.peer.right < Right::kChange)
    return PermissionDenied("permission denied: revealing config values needs the change right; uid " +
                            std::to_string(r.peer.uid) + " (" + r.peer.name + ") has " +
                            std::string(RightName(r.peer.right)) + " right");
  RETURN_IF_ERROR(ctx.ledger->GetApp(app).status());
  ASSIGN_OR_RETURN(std::vector<ReleaseRow> all, ctx.ledger->ListReleases(app));
  if (all.empty() && !params.contains("release"))
    return Json{{"release", nullptr}, {"config", Json::object()}, {"masked", !reveal},
                {"live", false}};
  ASSIGN_OR_RETURN(ReleaseRow row, ReleaseNamedOrDefault(ctx, params, app));
  ASSIGN_OR_RETURN(Json env, ReleaseConfigJson(row));
  ASSIGN_OR_RETURN(bool live, IsLive(ctx, app, row.number));
  return Json{{"release", ReleaseId(row.number).ToString()},
              {"config", reveal ? env : Masked(env)},
              {"masked", !reveal},
              {"live", live}};
}

void Prune(DaemonContext& ctx, const Request& r, Reply reply) {
  Status s = CheckKnown(r.params, {"app"});
  auto app = AppParam(r.params);
  if (!s.ok() || !app.ok()) return reply(s.ok() ? app.status() : s);
  ctx.releases->Prune(*app, ActorOf(r.peer), ReplyWith(reply, &PruneReportToJson));
}

}  // namespace

void RegisterReleaseHandlers(Dispatcher* d, DaemonContext* ctx) {
  d->RegisterAsync(method::kBuildImport, Right::kChange,
                   [ctx](const Request& r, Reply reply) { BuildImport(*ctx, r, reply); });
  d->Register(method::kBuildList, Right::kRead,
              [ctx](const Request& r) { return BuildList(*ctx, r.params); });
  d->RegisterAsync(method::kReleaseCreate, Right::kChange,
                   [ctx](const Request& r, Reply reply) { ReleaseCreate(*ctx, r, reply); });
  d->Register(method::kReleaseList, Right::kRead,
              [ctx](const Request& r) { return ReleaseList(*ctx, r.params); });
  d->RegisterAsync(method::kReleaseShow, Right::kRead,
                   [ctx](const Request& r, Reply reply) { ReleaseShow(*ctx, r, reply); });
  d->RegisterAsync(method::kReleaseDiff, Right::kRead,
                   [ctx](const Request& r, Reply reply) { ReleaseDiff(*ctx, r, reply); });
  d->RegisterAsync(method::kReleaseVerify, Right::kRead,
                   [ctx](const Request& r, Reply reply) { ReleaseVerify(*ctx, r, reply); });
  d->RegisterAsync(method::kConfigSet, Right::kChange, [ctx](const Request& r, Reply reply) {
    ConfigChange(*ctx, r, reply, /*unset=*/false);
  });
  d->RegisterAsync(method::kConfigUnset, Right::kChange, [ctx](const Request& r, Reply reply) {
    ConfigChange(*ctx, r, reply, /*unset=*/true);
  });
  d->RegisterAsync(method::kPrune, Right::kChange,
                   [ctx](const Request& r, Reply reply) { Prune(*ctx, r, reply); });
  d->Register(method::kConfigShow, Right::kRead,
              [ctx](const Request& r) { return ConfigShow(*ctx, r); });
}

}  // namespace relsupd
