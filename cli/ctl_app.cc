// `relsupd ctl app create|list|show|apply|delete`.
#include <iostream>

#include "cli/ctl.h"
#include "cli/table.h"
#include "daemon/base/duration.h"
#include "daemon/base/fd.h"
#include "daemon/protocol/methods.h"

namespace relsupd::cli {
namespace {

constexpr size_t kMaxSpecFileBytes = 256 * 1024;

std::string Sockets(const rpc::Json& app) {
  std::string s;
  for (const auto& [name, addr] : Field(app, "sockets").items()) {
    if (!s.empty()) s += ' ';
    s += name + "=" + Text(addr);
  }
  return s.empty() ? "-" : s;
}

// "70001 (dynamic)", "33", or "-" for a row not resolved yet.
std::string Id(const rpc::Json& a, const char* key) {
  if (a.value(key, int64_t{-1}) < 0) return "-";
  return Text(a[key]) + (a.value("dynamic_user", false) ? " (dynamic)" : "");
}

void PrintApp(const rpc::Json& a) {
  PrintFields(std::cout,
              {{"name", Text(a, "name")},
               {"user", Text(a, "user").empty() ? "-" : Text(a, "user")},
               {"group", Text(a, "group").empty() ? "-" : Text(a, "group")},
               {"uid", Id(a, "uid")},
               {"gid", Id(a, "gid")},
               {"keep releases", Text(a, "keep_releases")},
               {"sockets", Sockets(a)},
               {"strategy", Text(a, "strategy")},
               {"activation deadline",
                FormatDurationMs(a.value("activation_deadline_ms", int64_t{0}))},
               {"auto rollback", a.value("auto_rollback", false) ? "on" : "off"}});
}

struct CreateArgs {
  std::string name, user, group, strategy, deadline;
  int64_t keep = 0;
  std::vector<std::string> sockets;
  bool no_auto_rollback = false;
};

void RunAppCreate(CtlContext* ctx, const CreateArgs& args) {
  rpc::Json p = {{"name", args.name}};
  if (!args.user.empty()) p["user"] = args.user;
  if (!args.group.empty()) p["group"] = args.group;
  if (args.keep > 0) p["keep_releases"] = args.keep;
  if (!args.strategy.empty()) p["strategy"] = args.strategy;
  if (!args.deadline.empty()) {
    auto ms = ParseDurationMs(args.deadline);
    if (!ms.ok()) {
      std::cerr << "relsupd: --deadline: " << ms.status().message() << '\n';
      ctx->exit_code = kExitUsage;
      return;
    }
    p["activation_deadline_ms"] = *ms;
  }
  if (args.no_auto_rollback) p["auto_rollback"] = false;
  rpc::Json sockets = rpc::Json::object();
  for (const std::string& s : args.sockets) {
    size_t eq = s.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::cerr << "relsupd: --socket '" << s
                << "' must be NAME=tcp://HOST:PORT or NAME=unix:/PATH\n";
      ctx->exit_code = kExitUsage;
      return;
    }
    sockets[s.substr(0, eq)] = s.substr(eq + 1);
  }
  if (!sockets.empty()) p["sockets"] = sockets;
  ctx->CallAndPrint(rpc::method::kAppCreate, p, [](const rpc::Json& a) {
    std::cout << "Created app '" << Text(a, "name") << "'\n";
    PrintApp(a);
  });
}

void AddAppCreateVerb(CLI::App& app, CtlContext* ctx) {
  auto args = std::make_shared<CreateArgs>();
  CLI::App* create = app.add_subcommand("create", "Create an app");
  create->add_option("APP", args->name, "App name ([a-z0-9][a-z0-9-]{0,62})")
      ->required();
  create->add_option("--user", args->user,
                     "User to run as, a name or a uid; root only with "
                     "allow_root_apps (default: a uid of the app's own from "
                     "app_uid_range when the daemon runs as root, else the "
                     "daemon's own user)");
  create->add_option("--group", args->group,
                     "Group to run as (default: the user's primary group)");
  create->add_option("--keep", args->keep,
                     "Activated releases to keep (default 10)")
      ->check(CLI::Range(1, 1000));
  create->add_option("--socket", args->sockets,
                     "Daemon-held socket NAME=tcp://HOST:PORT or NAME=unix:/PATH "
                     "(repeatable), passed as fd 3.. (LISTEN_FDS) to the types listing it, "
                     "or to `web` when the process file lists none");
  create->add_option("--strategy", args->strategy,
                     "Activation strategy: start-first (default) or stop-first")
      ->check(CLI::IsMember({"start-first", "stop-first"}));
  create->add_option("--deadline", args->deadline,
                     "Activation deadline, e.g. 60s (default 60s)");
  create->add_flag("--no-auto-rollback", args->no_auto_rollback,
                   "Do not roll back by itself when an activation fails");
  create->callback([ctx, args] { RunAppCreate(ctx, *args); });
}

void AddAppListVerb(CLI::App& app, CtlContext* ctx) {
  CLI::App* list = app.add_subcommand("list", "List apps");
  list->callback([ctx] {
    ctx->CallAndPrint(rpc::method::kAppList, rpc::Json::object(),
                      [](const rpc::Json& apps) {
                        Table t({"NAME", "USER", "UID", "GROUP", "KEEP", "STRATEGY",
                                 "DEADLINE", "AUTO-ROLLBACK", "SOCKETS"});
                        t.Cuttable("SOCKETS");
                        for (const auto& a : apps)
                          t.AddRow({Text(a, "name"),
                                    Text(a, "user").empty() ? "-" : Text(a, "user"),
                                    Id(a, "uid"),
                                    Text(a, "group").empty() ? "-" : Text(a, "group"), Text(a, "keep_releases"),
                                    Text(a, "strategy"),
                                    FormatDurationMs(a.value(
                                        "activation_deadline_ms", int64_t{0})),
                                    a.value("auto_rollback", false) ? "on" : "off",
                                    Sockets(a)});
                        t.Print(std::cout);
                      });
  });
}

// "App 'shop' would change: keep_releases 5 -> 3, strategy ...", for
// `app apply --check`.
void PrintApplyCheck(const rpc::Json& r) {
  const std::string name = Text(r, "name");
  if (!r.value("exists", true)) {
    std::cout << "App '" << name << "' would be created\n";
    return;
  }
  if (!r.value("changed", false)) {
    std::cout << "App '" << name << "' is up to date: nothing would change\n";
    return;
  }
  std::cout << "App '" << name << "' would change:\n";
  for (const auto& [field, change] : Field(r, "diff").items()) {
    if (!change.is_array() || change.size() != 2) continue;
    // As the spec file names it (--json keeps the daemon's names).
    if (field == "activation_deadline_ms" && change[0].is_number_integer() &&
        change[1].is_number_integer()) {
      std::cout << "  activation_deadline: " << FormatDurationMs(change[0].get<int64_t>())
                << " -> " << FormatDurationMs(change[1].get<int64_t>()) << '\n';
      continue;
    }
    std::cout << "  " << field << ": " << Text(change[0]) << " -> " << Text(change[1]) << '\n';
  }
}

void AddAppApplyVerb(CLI::App& app, CtlContext* ctx) {
  auto file = std::make_shared<std::string>();
  auto check = std::make_shared<bool>(false);
  CLI::App* apply = app.add_subcommand(
      "apply", "Create or update an app from a YAML spec (idempotent)");
  apply->add_option("FILE", *file, "App spec, e.g. shop.yaml")->required();
  apply->add_flag("--check", *check,
                  "Print what would change (--json: \"diff\", {FIELD: [OLD, NEW]}) and change "
                  "nothing");
  SetVerbFooter(apply,
      "Spec keys: name, user, group, keep_releases, sockets (NAME: ADDRESS), "
      "strategy, activation_deadline, auto_rollback.");
  apply->callback([ctx, file, check] {
    auto text = ReadFile(*file, kMaxSpecFileBytes);
    if (!text.ok()) {
      std::cerr << "relsupd: " << text.status().message() << '\n';
      ctx->exit_code = kExitUsage;
      return;
    }
    rpc::Json params = {{"yaml", *text}, {"file", *file}};
    if (*check) {
      params["check"] = true;
      auto client = Client::Connect(ctx->socket);
      if (!client.ok()) return ctx->Fail(client.status());
      auto r = client->Call(rpc::method::kAppApply, params);
      if (!r.ok()) return ctx->Fail(r.status());
      // A daemon older than --check ignored it and applied the spec.
      if (!r->is_object() || r->value("check", false) != true)
        return ctx->Fail(FailedPrecondition(
            "the daemon does not know 'app apply --check' (an older relsupd) and may have "
            "applied the spec; compare with 'relsupd ctl app show'"));
      if (ctx->json)
        std::cout << r->dump(2) << '\n';
      else
        PrintApplyCheck(*r);
      ctx->exit_code = kExitOk;
      return;
    }
    ctx->CallAndPrint(rpc::method::kAppApply, params,
                      [](const rpc::Json& r) {
                        std::cout << "App '" << Text(r, "name") << "' "
                                  << (r.value("changed", false) ? "applied"
                                                                : "unchanged")
                                  << '\n';
                      });
  });
}

void AddAppDeleteVerb(CLI::App& app, CtlContext* ctx) {
  auto name = std::make_shared<std::string>();
  auto stop = std::make_shared<bool>(false);
  auto check = std::make_shared<bool>(false);
  CLI::App* del = app.add_subcommand(
      "delete", "Delete an app: its releases, builds and logs go, its history stays");
  del->add_option("APP", *name, "App name")->required();
  del->add_flag("--stop", *stop, "Stop its processes first (without it, an app that runs "
                                 "is refused)");
  del->add_flag("--check", *check, "Say whether it would be deleted (or why not) and how many "
                                   "processes it would stop; change nothing");
  SetVerbFooter(del,
      "Refused while the app's processes run (unless --stop), during a switch, a release "
      "being made or one-off processes running. Its release slots, artifacts and logs "
      "are removed, its held sockets closed and its dynamic uid freed; the ledger keeps "
      "its history ('relsupd ctl history APP'). Creating the name again starts a new app "
      "whose release numbers go on from the old ones (v1, v2, ... are never reused).");
  del->callback([ctx, name, stop, check] {
    rpc::Json params = {{"name", *name}};
    if (*stop) params["stop"] = true;
    if (*check) params["check"] = true;
    ctx->CallAndPrint(rpc::method::kAppDelete, params, [](const rpc::Json& r) {
      if (r.value("check", false)) {
        const int64_t n = r.value("would_stop", int64_t{0});
        std::cout << "App '" << Text(r, "name") << "' would be deleted";
        if (n > 0) std::cout << " (" << n << " process" << (n == 1 ? "" : "es") << " stopped)";
        std::cout << '\n';
        return;
      }
      std::cout << "App '" << Text(r, "name") << "' deleted";
      const int64_t stopped = r.value("stopped", int64_t{0});
      if (stopped > 0) std::cout << " (" << stopped << " process" << (stopped == 1 ? "" : "es")
                                 << " stopped)";
      std::cout << '\n';
    });
  });
}

}  // namespace

void AddAppVerbs(CLI::App& ctl, CtlContext* ctx) {
  CLI::App* app = ctl.add_subcommand("app", "Create, list, show, apply and delete apps");
  app->require_subcommand(1);
  AddAppCreateVerb(*app, ctx);
  AddAppListVerb(*app, ctx);
  AddAppVerb(*app, ctx,
             {.name = "show",
              .help = "Show one app's settings",
              .method = rpc::method::kAppShow,
              .key = "name"},
             PrintApp);
  AddAppApplyVerb(*app, ctx);
  AddAppDeleteVerb(*app, ctx);
}

}  // namespace relsupd::cli
