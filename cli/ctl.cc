#include "cli/ctl.h"

#include <iostream>
#include <iterator>
#include <memory>
#include <string_view>
#include <utility>

#include "cli/cli_app.h"
#include "cli/terminal.h"

namespace relsupd::cli {
namespace {

// The headings `relsupd ctl --help` lists its verbs under, in this order:
// the three stages, then what reads the state, then the daemon itself.
constexpr std::string_view kStages[] = {
    "Build (source to artifact)",    "Release (artifact + config to vN)",
    "Run (the live release's processes)", "Inspect", "Daemon", "Help"};

// The stage of each verb, by index into kStages.
constexpr std::pair<std::string_view, size_t> kVerbStage[] = {
    {"build", 0},   {"deploy", 0},   {"app", 1},      {"config", 1},  {"release", 1},
    {"releases", 1}, {"prune", 1},   {"activate", 2}, {"rollback", 2}, {"scale", 2},
    {"restart", 2}, {"stop", 2},     {"start", 2},    {"signal", 2},  {"run", 2},
    {"status", 3},  {"ps", 3},       {"logs", 3},     {"history", 3}, {"events", 3},
    {"metrics", 3}, {"info", 3},     {"daemon-reexec", 4}, {"help", 5}};

// Lists ctl's verbs under the heading of their stage (a verb missing from
// kVerbStage under "Other", which a test refuses); other commands, such as
// `ctl build`'s sub-verbs, as CLI11 does.
class StageFormatter : public CLI::Formatter {
 public:
  std::string make_subcommands(const CLI::App* app, CLI::AppFormatMode mode) const override {
    if (app->get_parent() == nullptr || app->get_name() != "ctl" || mode == CLI::AppFormatMode::All)
      return CLI::Formatter::make_subcommands(app, mode);
    auto stage_of = [](const std::string& verb) {
      for (const auto& [name, stage] : kVerbStage)
        if (name == verb) return stage;
      return std::size(kStages);
    };
    std::string out;
    for (size_t stage = 0; stage <= std::size(kStages); ++stage) {
      std::string lines;
      for (const CLI::App* verb : app->get_subcommands([](const CLI::App*) { return true; }))
        if (!verb->get_name().empty() && stage_of(verb->get_name()) == stage)
          lines += make_subcommand(verb);
      if (lines.empty()) continue;
      out += "\n" + std::string(stage < std::size(kStages) ? kStages[stage] : "Other") + ":\n";
      out += lines;
    }
    return out;
  }
};

}  // namespace

std::string Text(const rpc::Json& j) {
  if (j.is_null()) return "";
  if (j.is_string()) return j.get<std::string>();
  return j.dump();
}

const rpc::Json& Field(const rpc::Json& j, std::string_view key) {
  static const rpc::Json kNull;
  if (!j.is_object()) return kNull;
  auto it = j.find(key);
  return it == j.end() ? kNull : *it;
}

std::string Text(const rpc::Json& j, std::string_view key) { return Text(Field(j, key)); }

void PrintError(std::ostream& out, std::string_view message) {
  // Continuation lines are indented under the first, unless the message
  // indents them itself (the daemon's "its last lines:" block does).
  std::string text = "relsupd: ";
  for (size_t i = 0; i < message.size(); ++i) {
    text += message[i];
    if (message[i] == '\n' && i + 1 < message.size() && message[i + 1] != ' ')
      text += "  ";
  }
  out << (&out == &std::cerr ? ForStderr(text) : text) << '\n';
}

rpc::Json ErrorJson(int exit_code, std::string_view status, std::string_view message) {
  const char* code = exit_code == kExitUsage         ? "usage"
                     : exit_code == kExitUnreachable ? "unreachable"
                                                     : "refused";
  rpc::Json e = {{"code", code}, {"exit", exit_code}, {"message", std::string(message)}};
  if (!status.empty()) e["status"] = std::string(status);
  return rpc::Json{{"error", e}};
}

void ReportError(bool json, int exit_code, std::string_view status,
                 std::string_view message) {
  if (json)
    std::cout << ErrorJson(exit_code, status, message).dump(2) << '\n';
  else
    PrintError(std::cerr, message);
}

void CtlContext::Fail(const Status& status) {
  Fail(status, status.code() == StatusCode::kUnavailable ? kExitUnreachable
                                                         : kExitRefused);
}

void CtlContext::Fail(const Status& status, int code) {
  ReportError(json, code, StatusCodeName(status.code()), status.message());
  exit_code = code;
}

std::optional<rpc::Json> CtlContext::CallAndPrint(
    std::string_view method, rpc::Json params,
    const std::function<void(const rpc::Json&)>& human) {
  auto client = Client::Connect(socket);
  if (!client.ok()) {
    Fail(client.status());
    return std::nullopt;
  }
  auto result = client->Call(method, std::move(params));
  if (!result.ok()) {
    Fail(result.status());
    return std::nullopt;
  }
  if (json)
    std::cout << result->dump(2) << '\n';
  else
    human(*result);
  exit_code = kExitOk;
  return std::move(result).value();
}

void SetVerbFooter(CLI::App* verb, std::string text) {
  verb->footer([text = std::move(text)] { return text; });
}

CLI::App* AddAppCommand(CLI::App& parent, const std::string& name,
                        const std::string& help, std::string* app,
                        const std::string& app_help) {
  CLI::App* cmd = parent.add_subcommand(name, help);
  cmd->add_option("APP", *app, app_help)->required();
  return cmd;
}

CLI::App* AddAppVerb(CLI::App& parent, CtlContext* ctx, const AppVerb& verb,
                     std::function<void(const rpc::Json&)> human) {
  auto app = std::make_shared<std::string>();
  CLI::App* cmd = AddAppCommand(parent, verb.name, verb.help, app.get(), verb.app_help);
  cmd->callback([ctx, app, method = verb.method, key = verb.key,
                 human = std::move(human)] {
    ctx->CallAndPrint(method, {{key, *app}}, human);
  });
  return cmd;
}

namespace {

// Which function adds each verb (a unit test holds each function to it).
// `deploy` is added by each binary's main (relsupd execs relsupd-core for
// it).
constexpr VerbAdder kVerbAdders[] = {
    {"info", AddInfoVerb},          {"metrics", AddInfoVerb},
    {"app", AddAppVerbs},           {"history", AddHistoryVerb},
    {"events", AddEventsVerb},      {"prune", AddReleaseStageVerbs},
    {"build", AddReleaseStageVerbs}, {"release", AddReleaseStageVerbs},
    {"releases", AddReleaseStageVerbs}, {"config", AddReleaseStageVerbs},
    {"ps", AddPsVerb},              {"logs", AddProcessVerbs},
    {"status", AddStatusVerb},      {"scale", AddProcessVerbs},
    {"signal", AddProcessVerbs},    {"restart", AddProcessVerbs},
    {"stop", AddProcessVerbs},      {"start", AddProcessVerbs},
    {"activate", AddProcessVerbs},  {"rollback", AddProcessVerbs},
    {"run", AddRunVerb},            {"daemon-reexec", AddDaemonVerbs},
    {"help", AddHelpVerb},          {"deploy", nullptr}};

// Every verb, in the order the help lists a stage's verbs.
constexpr AddVerbsFn kAllVerbs[] = {AddInfoVerb,     AddAppVerbs,          AddHistoryVerb,
                                    AddEventsVerb,   AddReleaseStageVerbs, AddPsVerb,
                                    AddProcessVerbs, AddStatusVerb,        AddRunVerb,
                                    AddDaemonVerbs,  AddHelpVerb};

}  // namespace

std::vector<VerbAdder> CtlVerbAdders() {
  return {std::begin(kVerbAdders), std::end(kVerbAdders)};
}

std::string_view CtlVerbOf(int argc, char** argv) {
  if (argc < 3 || std::string_view(argv[1]) != "ctl") return "";
  for (int i = 2; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--socket") {
      ++i;  // its value
    } else if (arg == "--") {
      return "";
    } else if (arg.empty() || arg[0] != '-') {
      return arg;
    }
  }
  return "";
}

void AddCtlCommand(CLI::App& root, CtlContext* ctx, std::string_view verb) {
  CLI::App* ctl = root.add_subcommand(
      "ctl", "Control a running relsupd daemon over its socket");
  ctx->socket = DefaultSocketPath();
  ctl->add_option("--socket", ctx->socket,
                  "Control socket (default: $RELSUPD_SOCKET or "
                  "/run/relsupd/relsupd.sock)");
  ctl->add_flag("--json", ctx->json,
                "Print the daemon's JSON result unchanged, for scripts; errors too, "
                "as {\"error\": {...}} on stdout");
  // `relsupd ctl` alone prints its help: the verbs by stage.
  ctl->require_subcommand(0, 1);
  ctl->formatter(std::make_shared<StageFormatter>());
  ctl->callback([ctl, ctx] {
    if (!ctl->get_subcommands().empty()) return;
    if (ctx->json) {  // a script wants JSON, not a page of help
      ReportError(true, kExitUsage, "", "no verb given; 'relsupd ctl --help' lists them");
      ctx->exit_code = kExitUsage;
      return;
    }
    std::cout << ctl->help(ctl->get_parent()->get_name());
    ctx->exit_code = kExitOk;
  });
  // --json and --socket after the verb too (`ctl ps --json`): the verbs,
  // added below, inherit this and pass what they do not know up to ctl.
  ctl->fallthrough();
  ctl->footer(
      "Exit codes: 0 ok, 1 the daemon refused, 2 usage error, 3 daemon "
      "unreachable.\n"
      "Errors: 'relsupd: MESSAGE' on stderr; with --json one JSON document on "
      "stdout instead,\n"
      "  {\"error\": {\"code\": \"refused\"|\"usage\"|\"unreachable\", \"exit\": N, "
      "\"status\": KIND, \"message\": TEXT}},\n"
      "and nothing on stderr. 'ctl help VERB' prints VERB's help.");
  if (verb != "help") {
    for (const VerbAdder& a : kVerbAdders) {
      if (a.verb != verb) continue;
      if (a.add != nullptr) a.add(*ctl, ctx);
      return;
    }
  }
  for (AddVerbsFn add : kAllVerbs) add(*ctl, ctx);
}

}  // namespace relsupd::cli
