// Methods of the run stage: ps, scale, restart, stop, start, logs, activate.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <deque>
#include <optional>
#include <string_view>
#include <vector>

#include "daemon/base/clock.h"
#include "daemon/base/release_id.h"
#include "daemon/base/suggest.h"
#include "daemon/control/metrics.h"
#include "daemon/config/process_file.h"
#include "daemon/control/handlers.h"
#include "daemon/control/paging.h"
#include "daemon/control/params.h"
#include "daemon/logs/log_store.h"
#include "daemon/protocol/methods.h"
#include "daemon/run/one_offs.h"
#include "daemon/run/run_service.h"
#include "daemon/store/slots.h"

namespace relsupd {
namespace {

using rpc::Json;
namespace method = rpc::method;

// One field of a `ps` row: its key and its value, nullopt where the
// object shape leaves the key out. The one place a PsRow becomes JSON, for
// both shapes of the reply (PsRowToJson, PsRowsShape).
struct PsField {
  std::string_view name;
  std::optional<Json> (*value)(const PsRow&);
};

constexpr PsField kPsFields[] = {
    {"app", [](const PsRow& r) -> std::optional<Json> { return Json(r.app); }},
    {"release", [](const PsRow& r) -> std::optional<Json> { return Json(r.release); }},
    {"process", [](const PsRow& r) -> std::optional<Json> { return Json(r.process); }},
    {"type", [](const PsRow& r) -> std::optional<Json> { return Json(r.type); }},
    {"pid", [](const PsRow& r) -> std::optional<Json> { return Json(r.pid); }},
    {"state", [](const PsRow& r) -> std::optional<Json> { return Json(r.state); }},
    {"uptime_ms", [](const PsRow& r) -> std::optional<Json> { return Json(r.uptime_ms); }},
    {"restarts", [](const PsRow& r) -> std::optional<Json> { return Json(r.restarts); }},
    {"active", [](const PsRow& r) -> std::optional<Json> { return Json(r.active); }},
    {"uid", [](const PsRow& r) -> std::optional<Json> { return Json(r.uid); }},
    {"last_exit",
     [](const PsRow& r) -> std::optional<Json> {
       return r.last_exit.empty() ? Json(nullptr) : Json(r.last_exit);
     }},
    {"last_exit_at",
     [](const PsRow& r) -> std::optional<Json> {
       if (r.last_exit_at == 0) return std::nullopt;
       return Json(FormatTimeUtc(r.last_exit_at));
     }},
    {"last_exit_cause",
     [](const PsRow& r) -> std::optional<Json> {
       if (r.last_exit_cause.empty()) return std::nullopt;
       return Json(r.last_exit_cause);
     }},
    {"stopping_ms",
     [](const PsRow& r) -> std::optional<Json> {
       if (r.stop_timeout_ms <= 0) return std::nullopt;
       return Json(r.stopping_ms);
     }},
    {"stop_timeout_ms",
     [](const PsRow& r) -> std::optional<Json> {
       if (r.stop_timeout_ms <= 0) return std::nullopt;
       return Json(r.stop_timeout_ms);
     }},
    {"status",
     [](const PsRow& r) -> std::optional<Json> {
       if (r.status.empty()) return std::nullopt;
       return Json(r.status);
     }},
    {"memory_bytes",
     [](const PsRow& r) -> std::optional<Json> {
       return r.has_usage ? Json(r.memory_bytes) : Json(nullptr);
     }},
    {"cpu_seconds",
     [](const PsRow& r) -> std::optional<Json> {
       return r.has_usage ? Json(r.cpu_seconds) : Json(nullptr);
     }},
    {"cpu_percent",
     [](const PsRow& r) -> std::optional<Json> {
       return r.has_usage ? Json(std::round(r.cpu_percent * 10) / 10) : Json(nullptr);
     }},
    {"memory_limit_bytes",
     [](const PsRow& r) -> std::optional<Json> {
       if (r.memory_limit_bytes == 0) return std::nullopt;
       return Json(r.memory_limit_bytes);
     }},
    {"memory_limit_by",
     [](const PsRow& r) -> std::optional<Json> {
       if (r.memory_limit_bytes == 0) return std::nullopt;
       return Json(r.memory_limit_by);
     }},
    {"exits",
     [](const PsRow& r) -> std::optional<Json> {
       Json exits = Json::array();
       for (const ExitInfo& e : r.exits)
         exits.push_back({{"time", FormatTimeUtc(e.time_ms)}, {"exit", e.Describe()},
                          {"cause", std::string(e.Cause())}});
       return exits;
     }},
};

Json PsRowToJson(const PsRow& r) {
  Json j = Json::object();
  for (const PsField& f : kPsFields)
    if (std::optional<Json> v = f.value(r)) j[std::string(f.name)] = std::move(*v);
  return j;
}

// `ps` with `columns`: the fields named there, in that order, read as
// indexes into kPsFields. At most kMaxPsColumns names (a client grows
// nothing without a limit); a name may repeat.
constexpr size_t kMaxPsColumns = 64;

Result<std::vector<const PsField*>> PsColumnsParam(const Json& columns) {
  if (!columns.is_array() || columns.empty() || columns.size() > kMaxPsColumns)
    return InvalidArgument("param 'columns' must be an array of 1 to " +
                           std::to_string(kMaxPsColumns) + " field names");
  std::vector<const PsField*> out;
  for (const Json& c : columns) {
    if (!c.is_string()) return InvalidArgument("param 'columns' must hold strings");
    const std::string& name = c.get_ref<const std::string&>();
    const PsField* found = nullptr;
    for (const PsField& f : kPsFields)
      if (f.name == name) found = &f;
    if (found == nullptr) {
      std::string known;
      for (const PsField& f : kPsFields) known += (known.empty() ? "" : ", ") + std::string(f.name);
      return InvalidArgument("param 'columns': no field '" + Excerpt(name) +
                             "' (known: " + known + ")");
    }
    out.push_back(found);
  }
  return out;
}

// {"columns": [...], "rows": [[...], ...]}: each cell the value the object
// shape has under that key, null where it leaves the key out.
Json PsRowsShape(const std::vector<PsRow>& rows, const Json& names,
                 const std::vector<const PsField*>& columns) {
  Json out_rows = Json::array();
  out_rows.get_ref<Json::array_t&>().reserve(rows.size());
  for (const PsRow& r : rows) {
    Json cells = Json::array();
    cells.get_ref<Json::array_t&>().reserve(columns.size());
    for (const PsField* f : columns) cells.push_back(f->value(r).value_or(Json(nullptr)));
    out_rows.push_back(std::move(cells));
  }
  return Json{{"columns", names}, {"rows", std::move(out_rows)}};
}

Result<Json> Ps(DaemonContext& ctx, const Json& params, bool memory_only = false) {
  RETURN_IF_ERROR(params::CheckKnown(params, {"app", "all", "columns"}));
  ASSIGN_OR_RETURN(auto app, params::OptionalString(params, "app"));
  if (app) RETURN_IF_ERROR(ValidateAppName(*app));
  bool all = false;
  if (auto it = params.find("all"); it != params.end()) {
    if (!it->is_boolean()) return InvalidArgument("param 'all' must be a boolean");
    all = it->get<bool>();
  }
  std::optional<std::vector<const PsField*>> columns;
  if (auto it = params.find("columns"); it != params.end()) {
    ASSIGN_OR_RETURN(columns, PsColumnsParam(*it));
  }
  ASSIGN_OR_RETURN(std::vector<PsRow> rows, ctx.runs->Ps(app, memory_only));
  // `all`: the one-offs of `ctl run` too (type "run"; never instances).
  if (all)
    for (PsRow& r : ctx.runs->one_offs()->PsRows(app)) rows.push_back(std::move(r));
  if (columns) return PsRowsShape(rows, params["columns"], *columns);
  Json out = Json::array();
  for (const PsRow& r : rows) out.push_back(PsRowToJson(r));
  return out;
}

// {app, process?, signal: "USR1" | "SIGUSR1" | "usr1" | 10}.
Result<Json> Signal(DaemonContext& ctx, const Request& r) {
  RETURN_IF_ERROR(params::CheckKnown(r.params, {"app", "process", "signal"}));
  ASSIGN_OR_RETURN(std::string app, params::App(r.params));
  ASSIGN_OR_RETURN(auto process, params::OptionalString(r.params, "process"));
  auto it = r.params.find("signal");
  if (it == r.params.end() || !(it->is_string() || it->is_number_integer()))
    return InvalidArgument("param 'signal' must be a signal's name or number, e.g. \"USR1\"");
  std::string text = it->is_string() ? it->get<std::string>() : std::to_string(it->get<int64_t>());
  if (text.size() > 16) return InvalidArgument("param 'signal' is too long");
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  ASSIGN_OR_RETURN(int signum, ParseSignal(text));
  ASSIGN_OR_RETURN(auto sent,
                   ctx.runs->Signal(app, process.value_or(""), signum, params::ActorOf(r.peer)));
  const char* abbrev = sigabbrev_np(signum);
  Json out = {{"app", app},
              {"signal", abbrev != nullptr ? std::string("SIG") + abbrev : std::to_string(signum)},
              {"signum", signum},
              {"processes", Json::array()}};
  for (const auto& s : sent)
    out["processes"].push_back({{"process", s.process}, {"pid", static_cast<int64_t>(s.pid)}});
  return out;
}

Result<Json> Scale(DaemonContext& ctx, const Request& r) {
  RETURN_IF_ERROR(params::CheckKnown(r.params, {"app", "scale"}));
  ASSIGN_OR_RETURN(std::string app, params::App(r.params));
  auto it = r.params.find("scale");
  if (it == r.params.end() || !it->is_object() || it->empty())
    return InvalidArgument(
        "param 'scale' must be an object of process type to count, e.g. "
        "{\"web\": 3}");
  std::map<std::string, int> scales;
  for (const auto& [type, n] : it->items()) {
    if (!n.is_number_integer() || n.get<int64_t>() < 0 ||
        n.get<int64_t>() > kMaxScale)
      return InvalidArgument("scale of '" + type + "' must be an integer 0.." +
                             std::to_string(kMaxScale));
    scales[type] = n.get<int>();
  }
  RETURN_IF_ERROR(ctx.ledger->GetApp(app).status());  // "app 'x' does not exist"
  ASSIGN_OR_RETURN(std::vector<std::string> warnings,
                   ctx.runs->Scale(app, scales, params::ActorOf(r.peer)));
  Json out = Json::object();
  for (const auto& [type, n] : scales) out[type] = n;
  Json reply = {{"app", app}, {"scale", out}};
  if (!warnings.empty()) reply["warnings"] = warnings;
  return reply;
}

void Stop(DaemonContext& ctx, const Request& r, Reply reply) {
  Status s = params::CheckKnown(r.params, {"app"});
  if (!s.ok()) return reply(s);
  auto app = params::App(r.params);
  if (!app.ok()) return reply(app.status());
  if (auto spec = ctx.ledger->GetApp(*app); !spec.ok()) return reply(spec.status());
  ctx.runs->Stop(*app, params::ActorOf(r.peer),
                 [reply, app = *app](Status st) {
                   if (!st.ok()) return reply(st);
                   reply(Json{{"app", app}, {"stopped", true}});
                 });
}

// start: {app, wait?}. With wait the reply comes once every instance is
// ready (or with the error naming those that are not).
void Start(DaemonContext& ctx, const Request& r, Reply reply) {
  Status s = params::CheckKnown(r.params, {"app", "wait"});
  if (!s.ok()) return reply(s);
  auto app = params::App(r.params);
  if (!app.ok()) return reply(app.status());
  bool wait = false;
  if (auto it = r.params.find("wait"); it != r.params.end()) {
    if (!it->is_boolean()) return reply(InvalidArgument("param 'wait' must be a boolean"));
    wait = it->get<bool>();
  }
  ctx.runs->Start(*app, params::ActorOf(r.peer),
                  wait ? RunService::WaitReady::kYes : RunService::WaitReady::kNo,
                  [reply, wait, app = *app](Status st) {
                    if (!st.ok()) return reply(st);
                    reply(Json{{"app", app}, {"started", true}, {"ready", wait}});
                  });
}

void Restart(DaemonContext& ctx, const Request& r, Reply reply) {
  Status s = params::CheckKnown(r.params, {"app", "type"});
  if (!s.ok()) return reply(s);
  auto app = params::App(r.params);
  if (!app.ok()) return reply(app.status());
  if (auto spec = ctx.ledger->GetApp(*app); !spec.ok()) return reply(spec.status());
  auto type = params::OptionalString(r.params, "type");
  if (!type.ok()) return reply(type.status());
  ctx.runs->Restart(*app, type->value_or(""), params::ActorOf(r.peer),
                    [reply, app = *app](Status st) {
                      if (!st.ok()) return reply(st);
                      reply(Json{{"app", app}, {"restarted", true}});
                    });
}

// activate and rollback: {app, release?, strategy?, wait?,
// rerun_release_phase?}. Without wait
// the reply comes once the switch began: {app, switch, release}; the
// client follows it with `status`. With wait, it comes at the end.
void Switch(DaemonContext& ctx, const Request& r, Reply reply, bool rollback) {
  Status s = params::CheckKnown(
      r.params, {"app", "release", "strategy", "wait", "rerun_release_phase"});
  if (!s.ok()) return reply(s);
  ActivateRequest req;
  auto app = params::App(r.params);
  if (!app.ok()) return reply(app.status());
  req.app = *app;
  req.kind = rollback ? "rollback" : "activate";
  req.actor = params::ActorOf(r.peer);
  if (r.params.contains("release") || !rollback) {
    auto number = params::Release(r.params, "release");
    if (!number.ok()) return reply(number.status());
    req.release = *number;
  }
  auto strategy = params::OptionalString(r.params, "strategy");
  if (!strategy.ok()) return reply(strategy.status());
  if (*strategy) {
    auto parsed = ParseStrategy(**strategy);
    if (!parsed.ok()) return reply(parsed.status());
    req.strategy = *parsed;
  }
  if (auto it = r.params.find("rerun_release_phase"); it != r.params.end()) {
    if (!it->is_boolean())
      return reply(
          InvalidArgument("param 'rerun_release_phase' must be a boolean"));
    req.release_phase =
        it->get<bool>() ? ReleasePhaseRun::kForce : ReleasePhaseRun::kIfDue;
  }
  bool wait = false;
  if (auto it = r.params.find("wait"); it != r.params.end()) {
    if (!it->is_boolean()) return reply(InvalidArgument("param 'wait' must be a boolean"));
    wait = it->get<bool>();
  }
  auto id = std::make_shared<int64_t>(0);
  ctx.runs->Activate(
      req,
      [reply, wait, id, app = *app, &ctx](Result<int64_t> started) {
        if (!started.ok()) return reply(started.status());
        *id = *started;
        if (wait) return;
        // No switch runs when the release was live already (AlreadyLive).
        const SwitchInfo* sw = ctx.runs->CurrentSwitch(app);
        const SwitchOutcome* o = ctx.runs->LastSwitch(app);
        std::string release = sw != nullptr ? ReleaseId(sw->to).ToString()
                              : o != nullptr && o->id == *started
                                  ? ReleaseId(o->live).ToString()
                                  : "";
        Json out = {{"app", app}, {"switch", *started}, {"release", release}, {"changed", true}};
        if (sw == nullptr && o != nullptr && o->id == *started && !o->note.empty()) {
          out["changed"] = o->changed;  // live already: what it did, if anything
          out["note"] = o->note;
        }
        reply(std::move(out));
      },
      [reply, wait, id, app = *app, &ctx](Status done) {
        if (!wait) return;
        if (!done.ok()) return reply(done);
        const SwitchOutcome* o = ctx.runs->LastSwitch(app);
        Json out = {{"app", app}, {"switch", *id},
                    {"release", o != nullptr ? ReleaseId(o->live).ToString() : ""},
                    {"changed", true}};
        if (o != nullptr && o->id == *id && !o->note.empty()) {
          out["changed"] = o->changed;
          out["note"] = o->note;
        }
        reply(std::move(out));
      });
}

Json SwitchInfoToJson(const SwitchInfo& s) {
  return Json{{"id", s.id},
              {"kind", s.kind},
              {"from", s.from != 0 ? Json(ReleaseId(s.from).ToString()) : Json(nullptr)},
              {"to", ReleaseId(s.to).ToString()},
              {"strategy", std::string(StrategyName(s.strategy))},
              {"phase", std::string(SwitchPhaseName(s.phase))},
              {"started_at", FormatTimeUtc(s.started_at)},
              {"actor", s.actor}};
}

// `columns` (with its names, `names`): the processes in the rows shape of
// `ps` with `columns`, else as objects.
Result<Json> StatusOf(DaemonContext& ctx, const std::string& app,
                      const std::optional<std::vector<const PsField*>>& columns,
                      const Json& names) {
  ASSIGN_OR_RETURN(Ledger::Activation act, ctx.ledger->ActivationOf(app));
  ASSIGN_OR_RETURN(bool stopped, ctx.ledger->StoppedByHand(app));
  Json j = {{"app", app},
            {"active", act.active != 0 ? Json(ReleaseId(act.active).ToString()) : Json(nullptr)},
            {"previous", act.previous != 0 ? Json(ReleaseId(act.previous).ToString()) : Json(nullptr)},
            {"stopped", stopped}};
  const SwitchInfo* sw = ctx.runs->CurrentSwitch(app);
  j["switch"] = sw != nullptr ? SwitchInfoToJson(*sw) : Json(nullptr);
  const SwitchOutcome* o = ctx.runs->LastSwitch(app);
  j["last_switch"] = o == nullptr ? Json(nullptr)
                                  : Json{{"id", o->id}, {"ok", o->ok},
                                         {"live", o->live != 0 ? Json(ReleaseId(o->live).ToString()) : Json(nullptr)},
                                         {"message", o->message},
                                         {"note", o->note},
                                         {"live_ready", o->live_ready},
                                         {"changed", o->changed}};
  ASSIGN_OR_RETURN(std::vector<PsRow> rows, ctx.runs->Ps(app));
  if (columns) {
    j["processes"] = PsRowsShape(rows, names, *columns);
    return j;
  }
  Json procs = Json::array();
  for (const PsRow& r : rows) procs.push_back(PsRowToJson(r));
  j["processes"] = procs;
  return j;
}

Result<Json> Status_(DaemonContext& ctx, const Json& params) {
  RETURN_IF_ERROR(params::CheckKnown(params, {"app", "columns"}));
  ASSIGN_OR_RETURN(auto app, params::OptionalString(params, "app"));
  // `columns`: each app's processes as `ps` with `columns` gives them.
  std::optional<std::vector<const PsField*>> columns;
  Json names;
  if (auto it = params.find("columns"); it != params.end()) {
    ASSIGN_OR_RETURN(columns, PsColumnsParam(*it));
    names = *it;
  }
  if (app) {
    RETURN_IF_ERROR(ValidateAppName(*app));
    RETURN_IF_ERROR(ctx.ledger->GetApp(*app).status());
    return StatusOf(ctx, *app, columns, names);
  }
  ASSIGN_OR_RETURN(std::vector<AppSpec> apps, ctx.ledger->ListApps());
  Json out = Json::array();
  for (const AppSpec& a : apps) {
    ASSIGN_OR_RETURN(Json one, StatusOf(ctx, a.name, columns, names));
    out.push_back(std::move(one));
  }
  return out;
}

}  // namespace

void RegisterStandinHandlers(Dispatcher* d, DaemonContext* ctx) {
  d->Register(method::kPs, Right::kRead,
              [ctx](const Request& r) { return Ps(*ctx, r.params, true); });
}

void RegisterProcessHandlers(Dispatcher* d, DaemonContext* ctx) {
  d->Register(method::kPs, Right::kRead,
              [ctx](const Request& r) { return Ps(*ctx, r.params); });
  d->Register(method::kScale, Right::kChange,
              [ctx](const Request& r) { return Scale(*ctx, r); });
  d->Register(method::kSignal, Right::kChange,
              [ctx](const Request& r) { return Signal(*ctx, r); });
  d->Register(method::kMetrics, Right::kRead, [ctx, d](const Request& r) -> Result<Json> {
    RETURN_IF_ERROR(params::CheckKnown(r.params, {}));
    return Json{{"text", RenderMetrics(GatherMetrics(*ctx, d))}};
  });
  d->RegisterAsync(method::kStop, Right::kChange,
                   [ctx](const Request& r, Reply reply) { Stop(*ctx, r, reply); });
  d->RegisterAsync(method::kStart, Right::kChange,
                   [ctx](const Request& r, Reply reply) { Start(*ctx, r, reply); });
  d->RegisterAsync(method::kRestart, Right::kChange,
                   [ctx](const Request& r, Reply reply) {
                     Restart(*ctx, r, reply);
                   });
  d->RegisterAsync(method::kActivate, Right::kChange,
                   [ctx](const Request& r, Reply reply) {
                     Switch(*ctx, r, reply, false);
                   });
  d->RegisterAsync(method::kRollback, Right::kChange,
                   [ctx](const Request& r, Reply reply) {
                     Switch(*ctx, r, reply, true);
                   });
  d->Register(method::kStatus, Right::kRead,
              [ctx](const Request& r) { return Status_(*ctx, r.params); });
}

}  // namespace relsupd
