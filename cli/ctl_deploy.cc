// `relsupd ctl deploy`: build (in this process, as the caller), import,
// release, activate. Each stage is its verb's own client call
// (cli/ctl_stages.h) and leaves its usual events; deploy only chains them,
// prints a line per stage and stops at the first that fails. Main thread.
#include "cli/ctl_deploy.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cli/build.h"
#include "cli/ctl_stages.h"
#include "cli/terminal.h"
#include "daemon/base/fd.h"
#include "daemon/base/fs.h"
#include "daemon/base/paths.h"
#include "daemon/base/users.h"
#include "daemon/protocol/methods.h"

namespace relsupd::cli {
namespace {

namespace method = rpc::method;

struct DeployArgs {
  std::string app, src, env_file, strategy;
  std::vector<std::string> sets;
  bool no_wait = false;
  bool reuse = false;
};

// SRC, opened: a directory to build, or an artifact file (`artifact` set).
struct Source {
  bool is_dir = false;
  Fd artifact;
};

// Looks at SRC: a directory, or a regular file that starts like a tar,
// tar.gz or tar.zst archive (the formats the daemon imports). Anything else
// is an error naming SRC, before any stage runs.
Result<Source> OpenSource(const std::string& src) {
  struct stat st {};
  if (::stat(src.c_str(), &st) != 0) {
    if (errno == ENOENT) return NotFound("SRC '" + src + "' does not exist");
    return Status::FromErrno("cannot stat SRC '" + src + "'", errno);
  }
  if (S_ISDIR(st.st_mode)) return Source{true, Fd()};
  if (!S_ISREG(st.st_mode))
    return InvalidArgument("SRC '" + src +
                           "' is neither a directory nor a regular file");
  ASSIGN_OR_RETURN(Fd fd,
                   OpenArtifactFile(src, "SRC", "neither a directory nor ", Sniff::kYes));
  return Source{false, std::move(fd)};
}

// A mkdtemp directory under $TMPDIR (or /tmp) for the built artifact,
// removed with its contents when the object dies (the artifact stays
// readable through its open fd).
class TempArtifactDir {
 public:
  static Result<std::unique_ptr<TempArtifactDir>> Create() {
    const char* env = std::getenv("TMPDIR");
    std::string templ = JoinPath(env != nullptr && *env != '\0' ? env : "/tmp",
                                 "relsupd-deploy.XXXXXX");
    if (::mkdtemp(templ.data()) == nullptr)
      return Status::FromErrno("cannot create '" + templ + "'", errno);
    return std::unique_ptr<TempArtifactDir>(new TempArtifactDir(templ));
  }
  ~TempArtifactDir() { RemoveTree(path_).IgnoreError(); }
  TempArtifactDir(const TempArtifactDir&) = delete;
  TempArtifactDir& operator=(const TempArtifactDir&) = delete;
  std::string File() const { return JoinPath(path_, "artifact.tar.gz"); }

 private:
  explicit TempArtifactDir(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

// One deploy: runs the stages in order and keeps their results for --json.
class Deployer {
 public:
  Deployer(CtlContext* ctx, const DeployArgs& a) : ctx_(ctx), a_(a) {}

  void Run() {
    out_ = {{"app", a_.app},      {"source", a_.src},   {"ok", false},
            {"failed", nullptr},  {"build", nullptr},   {"import", nullptr},
            {"release", nullptr}, {"activate", nullptr}};
    rpc::Json set = rpc::Json::object();
    if (!ReadConfigChanges(a_.env_file, a_.sets, &set, ctx_))
      return Usage("bad --set or --env-file (see above)");
    auto source = OpenSource(a_.src);
    if (!source.ok()) {
      std::cerr << "relsupd: deploy: " << source.status().message() << '\n';
      return Usage(source.status().message());
    }
    // Before a build that may take minutes: the daemon answers, the app exists.
    if (!Check()) return Finish();
    Fd artifact = std::move(source->artifact);
    if (source->is_dir && !Build(&artifact)) return Finish();
    auto client = Client::Connect(ctx_->socket);
    if (!client.ok()) {
      Stop("import", client.status(), "nothing was imported");
      return Finish();
    }
    if (Import(*client, artifact.get()) && Release(*client, set) &&
        Activate(*client)) {
      out_["ok"] = true;
      ctx_->exit_code = kExitOk;
    }
    Finish();
  }

 private:
  bool Check() {
    auto client = Client::Connect(ctx_->socket);
    auto st = client.ok() ? client->Call(method::kStatus, {{"app", a_.app}})
                          : Result<rpc::Json>(client.status());
    if (!st.ok()) {
      // With --json the deploy's object (below) is the one document.
      if (ctx_->json)
        ctx_->exit_code = st.status().code() == StatusCode::kUnavailable
                              ? kExitUnreachable
                              : kExitRefused;
      else
        ctx_->Fail(st.status());
      out_["failed"] = {{"stage", "check"},
                        {"message", st.status().message()},
                        {"left", "nothing was built or imported"}};
    }
    return st.ok();
  }

  // A usage error found before any stage ran (already printed): exit 2,
  // and with --json the object says so.
  void Usage(const std::string& why) {
    ctx_->exit_code = kExitUsage;
    out_["failed"] = {{"stage", "usage"},
                      {"message", why},
                      {"left", "nothing was built or imported"}};
    Finish();
  }

  // The build stage, here and as the caller: SRC into a temporary
  // artifact, opened into *artifact and then removed from disk.
  bool Build(Fd* artifact) {
    if (!ctx_->json)
      std::cout << "build: " << a_.src << " (in a scratch copy, as "
                << UserName(::geteuid()) << ")" << std::endl;
    auto dir = TempArtifactDir::Create();
    if (!dir.ok()) return Stop("build", dir.status(), "nothing was imported");
    BuildOptions options;
    options.dir = a_.src;
    options.output_file = (*dir)->File();
    options.progress = &std::cerr;
    BuildReport report;
    auto sha = BuildArtifact(options, &report);
    if (!sha.ok()) return Stop("build", sha.status(), "nothing was imported");
    auto fd = OpenFile(options.output_file, O_RDONLY);
    if (!fd.ok()) return Stop("build", fd.status(), "nothing was imported");
    *artifact = std::move(fd).value();
    out_["build"] = {{"sha256", *sha}, {"entries", report.entries}};
    if (!report.has_process_file)
      std::cerr << "relsupd: warning: the artifact has no relsupd.yaml or "
                   "Procfile at its "
                   "root; its release will run no processes\n";
    if (!ctx_->json)
      std::cout << "build: sha256:" << *sha << " (" << report.entries
                << (report.entries == 1 ? " entry)\n" : " entries)\n");
    return true;
  }

  bool Import(Client& client, int fd) {
    auto r = ImportArtifact(client, a_.app, fd, !ctx_->json);
    if (!r.ok()) return Stop("import", r.status(), "nothing was imported");
    out_["import"] = *r;
    build_id_ = Text(*r, "id");
    if (!ctx_->json) std::cout << "import: " << DescribeImport(*r) << std::endl;
    return true;
  }

  bool Release(Client& client, const rpc::Json& set) {
    rpc::Json params = {{"app", a_.app}, {"build", build_id_}, {"set", set}};
    if (a_.reuse) params["reuse"] = true;
    auto r = client.Call(method::kReleaseCreate, params);
    if (!r.ok())
      return Stop(
          "release", r.status(),
          "build " + build_id_ +
              " stays imported, which is normal for a build without a release "
              "('relsupd ctl release create " +
              a_.app + " --build " + build_id_ + "' makes one)");
    out_["release"] = *r;
    release_ = Text(*r, "release");
    if (!ctx_->json && r->value("reused", false))
      std::cout << "release: " << release_ << " (reused: it has that build and that config)"
                << std::endl;
    else if (!ctx_->json)
      std::cout << "release: " << DescribeCreated(*r, '+') << std::endl;
    return true;
  }

  bool Activate(Client& client) {
    SwitchArgs s;
    s.app = a_.app;
    s.release = release_;
    s.strategy = a_.strategy;
    s.no_wait = a_.no_wait;
    s.prefix = "activate: ";
    SwitchResult r = StartSwitch(ctx_, client, s, /*rollback=*/false);
    out_["activate"] = r.outcome;
    if (r.status.ok()) return true;
    std::string live = r.outcome.is_object() ? Text(r.outcome, "live") : "";
    if (live.empty() && !r.switch_failed) live = LiveRelease(client);
    // The release gone back to may not be ready either (the error says why).
    const bool ready = Field(r.outcome, "live_ready") != false;
    return Stop("activate", r.status,
                release_ + " was made but is not live; " +
                    (live.empty() ? "no release of " + a_.app + " is live"
                                  : live + " of " + a_.app + " is live" +
                                        (ready ? "" : " but not ready")));
  }

  // The app's live release now ("" when none, or when the daemon does not
  // say).
  std::string LiveRelease(Client& client) {
    auto st = client.Call(method::kStatus, {{"app", a_.app}});
    return st.ok() ? Text(*st, "active") : "";
  }

  // Reports that the deploy stopped at `stage` because of `why`, with what
  // is left (`left`); sets the exit code as activate does. Returns false.
  bool Stop(const char* stage, const Status& why, const std::string& left) {
    std::cerr << ForStderr("relsupd: deploy stopped at " + std::string(stage) + ": " +
                           why.message() + "; " + left)
              << '\n';
    out_["failed"] = {
        {"stage", stage}, {"message", why.message()}, {"left", left}};
    ctx_->exit_code = why.code() == StatusCode::kUnavailable ? kExitUnreachable
                                                             : kExitRefused;
    return false;
  }

  void Finish() {
    if (ctx_->json) std::cout << out_.dump(2) << '\n';
  }

  CtlContext* ctx_;
  const DeployArgs& a_;
  rpc::Json out_;
  std::string build_id_, release_;
};

}  // namespace

void AddDeployVerb(CLI::App& ctl, CtlContext* ctx) {
  auto args = std::make_shared<DeployArgs>();
  CLI::App* deploy = AddAppCommand(ctl, "deploy", kDeployDescription, &args->app);
  deploy
      ->add_option("SRC", args->src,
                   "Source directory, or artifact file (tar, tar.gz, tar.zst)")
      ->required();
  deploy->add_option("--set", args->sets,
                     "KEY=VALUE to add to the config (repeatable)");
  deploy->add_option("--env-file", args->env_file,
                     "KEY=VALUE lines to add to the config");
  deploy
      ->add_option("--strategy", args->strategy,
                   "start-first (new ready before old stop) or stop-first; "
                   "default: the app's")
      ->check(CLI::IsMember({"start-first", "stop-first"}));
  deploy->add_flag("--no-wait", args->no_wait, "Return once the switch began");
  deploy->add_flag("--reuse", args->reuse,
                   "Make no release when a kept one has this build and the resulting config: "
                   "activate that one (live already: nothing to do), so a deploy run twice "
                   "changes nothing the second time");
  // Its own exit codes and --json error form replace ctl's footer.
  deploy->footer(
      "Stages, each printed as it goes:\n"
      "  build:    SRC a directory: the build stage of 'relsupd build', run "
      "here\n"
      "            as you (never in the daemon), into a temporary artifact.\n"
      "            SRC a file: taken as the artifact.\n"
      "  import:   as 'ctl build import' (the same bytes give the same "
      "build).\n"
      "  release:  as 'ctl release create --build ID': the config is the live\n"
      "            release's (the newest one's while none was ever live), "
      "then\n"
      "            --env-file, then --set.\n"
      "  activate: as 'ctl activate APP vN' (with --strategy, --no-wait).\n"
      "A stage that fails stops the deploy with its error, naming the stage "
      "and\n"
      "what is left: a build imported without a release is normal and stays;\n"
      "a release that did not go live leaves the live release live.\n"
      "With --json, one object at the end, also on a usage error: app, source,\n"
      "ok, failed (stage: usage, check, build, import, release or activate;\n"
      "message; left), and each stage's result (build, import, release,\n"
      "activate).\n"
      "Exit codes as activate: 0 live (with --no-wait: the switch began), 1 a\n"
      "stage failed, 2 usage error (a bad SRC, --set or --env-file),\n"
      "3 daemon unreachable. 'ctl help VERB' prints VERB's help.");
  deploy->callback([ctx, args] { Deployer(ctx, *args).Run(); });
}

}  // namespace relsupd::cli
