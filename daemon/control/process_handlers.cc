// Methods of the run stage: ps, scale, restart, stop, start, logs, activate.
#include <nlohmann/json.hpp>

#include "daemon/activate/run_service.h"
#include "daemon/control/handlers.h"
#include "daemon/control/params.h"
#include "daemon/logs/log_store.h"
#include "daemon/protocol/methods.h"

namespace relsupd {
namespace {

using rpc::Json;
namespace method = rpc::method;

constexpr int64_t kMaxLogLines = 100'000;

Json PsRowToJson(const PsRow& r) {
  Json j = {{"app", r.app},           {"release", r.release},
            {"process", r.process},   {"type", r.type},
            {"pid", r.pid},           {"state", r.state},
            {"uptime_ms", r.uptime_ms}, {"restarts", r.restarts},
            {"active", r.active}};
  j["last_exit"] = r.last_exit.empty() ? Json(nullptr) : Json(r.last_exit);
  if (r.last_exit_at != 0) j["last_exit_at"] = r.last_exit_at;
  if (!r.status.empty()) j["status"] = r.status;
  return j;
}

Result<Json> Ps(DaemonContext& ctx, const Json& params) {
  RETURN_IF_ERROR(params::CheckKnown(params, {"app"}));
  ASSIGN_OR_RETURN(auto app, params::OptionalString(params, "app"));
  if (app) RETURN_IF_ERROR(ValidateAppName(*app));
  ASSIGN_OR_RETURN(std::vector<PsRow> rows, ctx.runs->Ps(app));
  Json out = Json::array();
  for (const PsRow& r : rows) out.push_back(PsRowToJson(r));
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
  RETURN_IF_ERROR(ctx.runs->Scale(app, scales, params::ActorOf(r.peer)));
  Json out = Json::object();
  for (const auto& [type, n] : scales) out[type] = n;
  return Json{{"app", app}, {"scale", out}};
}

void Stop(DaemonContext& ctx, const Request& r, Reply reply) {
  Status s = params::CheckKnown(r.params, {"app"});
  if (!s.ok()) return reply(s);
  auto app = params::App(r.params);
  if (!app.ok()) return reply(app.status());
  ctx.runs->Stop(*app, params::ActorOf(r.peer),
                 [reply, app = *app](Status st) {
                   if (!st.ok()) return reply(st);
                   reply(Json{{"app", app}, {"stopped", true}});
                 });
}

Result<Json> Start(DaemonContext& ctx, const Request& r) {
  RETURN_IF_ERROR(params::CheckKnown(r.params, {"app"}));
  ASSIGN_OR_RETURN(std::string app, params::App(r.params));
  RETURN_IF_ERROR(ctx.runs->Start(app, params::ActorOf(r.peer)));
  return Json{{"app", app}, {"started", true}};
}

void Restart(DaemonContext& ctx, const Request& r, Reply reply) {
  Status s = params::CheckKnown(r.params, {"app", "type"});
  if (!s.ok()) return reply(s);
  auto app = params::App(r.params);
  if (!app.ok()) return reply(app.status());
  auto type = params::OptionalString(r.params, "type");
  if (!type.ok()) return reply(type.status());
  ctx.runs->Restart(*app, type->value_or(""), params::ActorOf(r.peer),
                    [reply, app = *app](Status st) {
                      if (!st.ok()) return reply(st);
                      reply(Json{{"app", app}, {"restarted", true}});
                    });
}

Result<Json> Logs(DaemonContext& ctx, const Json& params) {
  RETURN_IF_ERROR(params::CheckKnown(
      params, {"app", "lines", "process", "stream", "after_seq"}));
  ASSIGN_OR_RETURN(std::string app, params::App(params));
  RETURN_IF_ERROR(ctx.ledger->GetApp(app).status());
  ASSIGN_OR_RETURN(auto lines,
                   params::OptionalInt(params, "lines", 0, kMaxLogLines));
  ASSIGN_OR_RETURN(auto after,
                   params::OptionalInt(params, "after_seq", 0, INT64_MAX));
  ASSIGN_OR_RETURN(auto process, params::OptionalString(params, "process"));
  ASSIGN_OR_RETURN(auto stream, params::OptionalString(params, "stream"));
  LogFilter filter;
  filter.process = process.value_or("");
  filter.stream = stream.value_or("");
  if (!filter.stream.empty() && filter.stream != "out" && filter.stream != "err")
    return InvalidArgument("param 'stream' must be \"out\" or \"err\"");
  std::vector<LogRecord> records;
  if (after) {
    ASSIGN_OR_RETURN(records,
                     ctx.logs->Since(app, static_cast<uint64_t>(*after), filter,
                                     static_cast<size_t>(lines.value_or(10'000))));
  } else {
    ASSIGN_OR_RETURN(records, ctx.logs->Tail(app, filter,
                                             static_cast<size_t>(lines.value_or(100))));
  }
  Json out = Json::array();
  for (const LogRecord& rec : records) out.push_back(LogRecordToJson(rec));
  uint64_t last = ctx.logs->LastSeq(app);
  return Json{{"records", out}, {"last_seq", last}};
}

void Activate(DaemonContext& ctx, const Request& r, Reply reply) {
  Status s = params::CheckKnown(r.params, {"app", "release"});
  if (!s.ok()) return reply(s);
  auto app = params::App(r.params);
  if (!app.ok()) return reply(app.status());
  auto number = params::Release(r.params, "release");
  if (!number.ok()) return reply(number.status());
  ctx.runs->Activate(*app, *number, params::ActorOf(r.peer),
                     [reply, app = *app, n = *number](Status st) {
                       if (!st.ok()) return reply(st);
                       reply(Json{{"app", app},
                                  {"release", "v" + std::to_string(n)}});
                     });
}

}  // namespace

void RegisterProcessHandlers(Dispatcher* d, DaemonContext* ctx) {
  d->Register(method::kPs, Right::kRead,
              [ctx](const Request& r) { return Ps(*ctx, r.params); });
  d->Register(method::kScale, Right::kChange,
              [ctx](const Request& r) { return Scale(*ctx, r); });
  d->RegisterAsync(method::kStop, Right::kChange,
                   [ctx](const Request& r, Reply reply) { Stop(*ctx, r, reply); });
  d->Register(method::kStart, Right::kChange,
              [ctx](const Request& r) { return Start(*ctx, r); });
  d->RegisterAsync(method::kRestart, Right::kChange,
                   [ctx](const Request& r, Reply reply) {
                     Restart(*ctx, r, reply);
                   });
  d->Register(method::kLogs, Right::kRead,
              [ctx](const Request& r) { return Logs(*ctx, r.params); });
  d->RegisterAsync(method::kActivate, Right::kChange,
                   [ctx](const Request& r, Reply reply) {
                     Activate(*ctx, r, reply);
                   });
}

}  // namespace relsupd
