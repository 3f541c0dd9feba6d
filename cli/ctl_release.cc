// `relsupd ctl build|release|releases|config ...`: the release stage.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <iostream>
#include <memory>
#include <utility>

#include "cli/ctl.h"
#include "cli/ctl_stages.h"
#include "cli/table.h"
#include "daemon/base/env_file.h"
#include "daemon/base/fd.h"
#include "daemon/base/fs.h"
#include "daemon/protocol/methods.h"

namespace relsupd::cli {
namespace {

namespace method = rpc::method;

// The daemon lists at most 1,000 paths a list; says how many it left out.
void PrintUnlisted(const rpc::Json& lists) {
  if (!lists.value("truncated", false)) return;
  const rpc::Json& counts = Field(lists, "counts");
  for (const char* kind : {"added", "removed", "changed"}) {
    const size_t listed = lists[kind].size();
    const size_t total = counts.value(kind, listed);
    if (total > listed)
      std::cout << "  ... and " << (total - listed) << " more " << kind
                << " (not listed: the daemon lists at most 1,000 a list)\n";
  }
}
constexpr size_t kMaxEnvFileBytes = 1 << 20;
constexpr off_t kProgressMinBytes = 8 << 20;

std::string HumanBytes(int64_t n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

// "KEY=VALUE" -> (KEY, VALUE); a usage error otherwise.
bool SplitAssignment(const std::string& arg, rpc::Json* into, CtlContext* ctx) {
  size_t eq = arg.find('=');
  if (eq == std::string::npos || eq == 0) {
    ctx->Fail(InvalidArgument("'" + arg + "' must be KEY=VALUE"), kExitUsage);
    return false;
  }
  // Checked here, before a deploy builds or imports anything.
  if (Status key = ValidateConfigKey(arg.substr(0, eq)); !key.ok()) {
    std::cerr << "relsupd: '" << arg << "': " << key.message() << '\n';
    ctx->exit_code = kExitUsage;
    return false;
  }
  (*into)[arg.substr(0, eq)] = arg.substr(eq + 1);
  return true;
}

// Adds the KEY=VALUE lines of the env file at `path` (daemon/base/env_file.h).
bool ReadEnvFile(const std::string& path, rpc::Json* into, CtlContext* ctx) {
  auto text = ReadFile(path, kMaxEnvFileBytes);
  if (!text.ok()) {
    ctx->Fail(text.status(), kExitUsage);
    return false;
  }
  auto pairs = ParseEnvFile(*text, path);
  if (!pairs.ok()) {
    ctx->Fail(pairs.status(), kExitUsage);
    return false;
  }
  for (auto& [key, value] : *pairs) {
    if (Status valid = ValidateConfigKey(key); !valid.ok()) {
      std::cerr << "relsupd: " << path << ": " << valid.message() << '\n';
      ctx->exit_code = kExitUsage;
      return false;
    }
    (*into)[key] = std::move(value);
  }
  return true;
}

void PrintRelease(const rpc::Json& r) {
  std::vector<std::pair<std::string, std::string>> fields = {
      {"release", Text(r, "release")},
      {"app", Text(r, "app")},
      {"build", Text(r, "build")},
      {"digest", Text(r, "digest")},
      {"created", Text(r, "created_at")},
      {"by", Text(r, "created_by")},
      {"config keys", std::to_string(r.value("config_keys", rpc::Json::array()).size())},
  };
  if (r.contains("slot")) fields.push_back({"slot", Text(r, "slot")});
  if (r.contains("files"))
    fields.push_back({"files", Text(r, "files") + " (" + HumanBytes(r.value("bytes", int64_t{0})) + ")"});
  if (r.value("pruned", false)) fields.push_back({"pruned", "yes"});
  PrintFields(std::cout, fields);
}

void PrintBuilds(const rpc::Json& builds) {
  Table t({"ID", "FORMAT", "SIZE", "ENTRIES", "IMPORTED", "BY", "RELEASES"});
  t.Cuttable("RELEASES");
  for (const auto& b : builds) {
    std::string rels;
    for (const auto& r : Field(b, "releases")) rels += (rels.empty() ? "" : ",") + Text(r);
    t.AddRow({Text(b, "id"), Text(b, "format"), HumanBytes(b.value("size", int64_t{0})),
              Text(b, "entries"), Text(b, "imported_at"), Text(b, "imported_by"),
              rels.empty() ? "-" : rels});
  }
  t.Print(std::cout);
}

// Why a read without a release named acts on this one: "the live release",
// or "the newest release (none was ever live)".
std::string WhichRelease(const rpc::Json& r) {
  return r.value("live", false) ? "the live release" : "the newest release (none was ever live)";
}

// A new release's number on stdout (for `$(...)`), and on stderr what it
// started from and how to make it live. When the daemon made none (a
// config change that changed nothing), the release that stays, and why.
void PrintCreated(const rpc::Json& r, char sign) {
  std::cout << Text(r, "release") << '\n';
  if (r.value("unchanged", false)) {
    std::cerr << "relsupd: nothing changed: " << Text(r, "release")
              << " already has that config; no release made (--force makes one)\n";
    return;
  }
  if (r.value("reused", false)) {
    std::cerr << "relsupd: reused " << Text(r, "release")
              << ": it has that build and that config; no release made\n";
    return;
  }
  std::cerr << "relsupd: made " << DescribeCreated(r, sign) << "; not live: relsupd ctl activate "
            << Text(r, "app") << ' ' << Text(r, "release") << '\n';
}

void AddBuildVerbs(CLI::App& ctl, CtlContext* ctx) {
  CLI::App* build = ctl.add_subcommand("build", "Import and list build artifacts");
  build->require_subcommand(1);

  struct ImportArgs {
    std::string app, file;
    bool quiet = false;
  };
  auto args = std::make_shared<ImportArgs>();
  CLI::App* import = AddAppCommand(
      *build, "import", "Store an artifact (tar, tar.gz, tar.zst) by its sha256",
      &args->app, "App name");
  import->add_option("FILE", args->file, "Artifact file")->required();
  import->add_flag("-q,--quiet", args->quiet,
                   "Print only the build id (no progress), for scripts");
  SetVerbFooter(import,
      "The file is opened here and handed to the daemon, so it may be any file "
      "you can read. Importing the same bytes again returns the same build id.");
  import->callback([ctx, args] {
    auto file = OpenArtifactFile(args->file, "FILE");
    if (!file.ok()) return ctx->Fail(file.status(), kExitUsage);
    auto client = Client::Connect(ctx->socket);
    if (!client.ok()) return ctx->Fail(client.status());
    auto r = ImportArtifact(*client, args->app, file->get(), !ctx->json && !args->quiet);
    if (!r.ok()) return ctx->Fail(r.status());
    ctx->exit_code = kExitOk;
    if (ctx->json) {
      std::cout << r->dump(2) << '\n';
      return;
    }
    if (args->quiet) {
      std::cout << Text(*r, "id") << '\n';
      return;
    }
    std::cout << DescribeImport(*r) << '\n';
  });

  AddAppVerb(*build, ctx,
             {.name = "list", .help = "List an app's builds", .method = method::kBuildList},
             PrintBuilds);
}

struct ReleaseArgs {
  std::string app, release, other;
};

void AddReleaseCreateVerb(CLI::App& release, CtlContext* ctx) {
  struct CreateArgs {
    std::string app, build, env_file;
    std::vector<std::string> sets;
    bool reuse = false;
  };
  auto args = std::make_shared<CreateArgs>();
  CLI::App* create = AddAppCommand(
      release, "create", "Make release vN from a build and the app's config",
      &args->app, "App name");
  create->add_option("--build", args->build, "Build id (a sha256 prefix, from 'build import')")
      ->required();
  create->add_option("--env-file", args->env_file, "KEY=VALUE lines to add to the config");
  create->add_option("--set", args->sets, "KEY=VALUE to add to the config (repeatable)");
  create->add_flag("--reuse", args->reuse,
                   "When a kept release has this build and the resulting config, print it "
                   "and make none (--json: \"new\": false), for scripts that must be idempotent");
  SetVerbFooter(create,
      "The config starts from the live release's (the newest release's while none was ever "
      "live), then the env file, then --set. The release is unpacked, checked, sealed "
      "read-only and numbered; it prints vN, and on stderr the release it started from.");
  create->callback([ctx, args] {
    rpc::Json set = rpc::Json::object();
    if (!ReadConfigChanges(args->env_file, args->sets, &set, ctx)) return;
    rpc::Json params = {{"app", args->app}, {"build", args->build}, {"set", set}};
    if (args->reuse) params["reuse"] = true;
    ctx->CallAndPrint(method::kReleaseCreate, params,
                      [](const rpc::Json& r) { PrintCreated(r, '+'); });
  });
}

void AddReleaseShowVerb(CLI::App& release, CtlContext* ctx) {
  auto show_args = std::make_shared<ReleaseArgs>();
  CLI::App* show = AddAppCommand(release, "show", "Show one release", &show_args->app, "App name");
  show->add_option("RELEASE", show_args->release, "Release, e.g. v3")->required();
  show->callback([ctx, show_args] {
    ctx->CallAndPrint(method::kReleaseShow,
                      {{"app", show_args->app}, {"release", show_args->release}}, PrintRelease);
  });
}

void PrintDiff(const rpc::Json& d) {
  std::cout << Text(d, "from") << " -> " << Text(d, "to") << '\n';
  if (d.value("build_changed", false))
    std::cout << "build: " << Text(d, "from_build") << " -> " << Text(d, "to_build") << '\n';
  else
    std::cout << "build: unchanged (" << Text(d, "to_build") << ")\n";
  const auto& c = Field(d, "config");
  for (const auto& k : Field(c, "added")) std::cout << "config + " << Text(k) << "=********\n";
  for (const auto& k : Field(c, "removed")) std::cout << "config - " << Text(k) << '\n';
  for (const auto& k : Field(c, "changed")) std::cout << "config ~ " << Text(k) << "=********\n";
  if (c.value("truncated", false))
    std::cout << "config: more keys differ than the daemon lists (1,000 a list)\n";
  if (Field(d, "files").is_null()) {
    std::cout << "files: not compared (a release was pruned)\n";
    return;
  }
  for (const auto& p : Field(Field(d, "files"), "added")) std::cout << "file + " << Text(p) << '\n';
  for (const auto& p : Field(Field(d, "files"), "removed")) std::cout << "file - " << Text(p) << '\n';
  for (const auto& p : Field(Field(d, "files"), "changed")) std::cout << "file ~ " << Text(p) << '\n';
  PrintUnlisted(Field(d, "files"));
}

void AddReleaseDiffVerb(CLI::App& release, CtlContext* ctx) {
  auto diff_args = std::make_shared<ReleaseArgs>();
  CLI::App* diff = AddAppCommand(
      release, "diff", "Compare two releases: build, config keys, files",
      &diff_args->app, "App name");
  diff->add_option("FROM", diff_args->release, "Release, e.g. v2")->required();
  diff->add_option("TO", diff_args->other, "Release, e.g. v3")->required();
  diff->callback([ctx, diff_args] {
    ctx->CallAndPrint(
        method::kReleaseDiff,
        {{"app", diff_args->app}, {"from", diff_args->release}, {"to", diff_args->other}},
        PrintDiff);
  });
}

void PrintVerify(const rpc::Json& v) {
  if (v.value("ok", false)) {
    std::cout << Text(v, "release") << ": verified, every file matches its manifest\n";
    return;
  }
  std::cout << Text(v, "release") << ": DOES NOT VERIFY\n";
  if (!v.value("digest_ok", true))
    std::cout << "  the stored manifest or config does not match the release digest\n";
  for (const auto& p : Field(v, "changed")) std::cout << "  changed: " << Text(p) << '\n';
  for (const auto& p : Field(v, "added")) std::cout << "  added:   " << Text(p) << '\n';
  for (const auto& p : Field(v, "removed")) std::cout << "  removed: " << Text(p) << '\n';
  PrintUnlisted(v);
}

void AddReleaseVerifyVerb(CLI::App& release, CtlContext* ctx) {
  auto verify_args = std::make_shared<ReleaseArgs>();
  CLI::App* verify = AddAppCommand(
      release, "verify", "Recompute a release's manifest; exit 1 if a file changed",
      &verify_args->app, "App name");
  verify->add_option("RELEASE", verify_args->release,
                     "Release (default: the live one; the newest while none was ever live)");
  verify->callback([ctx, verify_args] {
    rpc::Json p = {{"app", verify_args->app}};
    if (!verify_args->release.empty()) p["release"] = verify_args->release;
    const bool named = !verify_args->release.empty();
    auto r = ctx->CallAndPrint(method::kReleaseVerify, p, [named](const rpc::Json& v) {
      if (!named) std::cout << "# " << Text(v, "release") << ": " << WhichRelease(v) << '\n';
      PrintVerify(v);
    });
    if (r && !r->value("ok", false)) ctx->exit_code = kExitRefused;
  });
}

void PrintReleases(const rpc::Json& all) {
  Table t({"RELEASE", "BUILD", "DIGEST", "CREATED", "BY", "STATE"});
  for (const auto& r : all) {
    std::string state = r.value("active", false)     ? "active"
                        : r.value("previous", false) ? "previous"
                        : r.value("pruned", false)   ? "pruned"
                                                     : "-";
    t.AddRow({Text(r, "release"), Text(r, "build"), Text(r, "digest").substr(0, 12),
              Text(r, "created_at"), Text(r, "created_by"), state});
  }
  t.Print(std::cout);
}

void AddReleaseVerbs(CLI::App& ctl, CtlContext* ctx) {
  CLI::App* release = ctl.add_subcommand("release", "Create, show, compare and verify releases");
  release->require_subcommand(1);
  AddReleaseCreateVerb(*release, ctx);
  AddReleaseShowVerb(*release, ctx);
  AddReleaseDiffVerb(*release, ctx);
  AddReleaseVerifyVerb(*release, ctx);
  AddAppVerb(ctl, ctx,
             {.name = "releases", .help = "List an app's releases", .method = method::kReleaseList},
             PrintReleases);
}

void AddConfigVerbs(CLI::App& ctl, CtlContext* ctx) {
  CLI::App* config = ctl.add_subcommand(
      "config", "Show or change an app's config (each change is a new release)");
  config->require_subcommand(1);

  struct Args {
    std::string app, release;
    std::vector<std::string> items;
    bool reveal = false;
    bool force = false;
  };
  // `config set` and `config unset`: APP, then the pairs or keys, --force.
  auto add_change = [config](const char* name, const char* help, const char* items,
                             const char* items_help) {
    auto args = std::make_shared<Args>();
    CLI::App* verb = AddAppCommand(*config, name, help, &args->app, "App name");
    verb->add_option(items, args->items, items_help)->required();
    verb->add_flag("--force", args->force, "Make a new release even when nothing changes");
    return std::make_pair(verb, args);
  };
  auto set = add_change(
      "set",
      "Set KEY=VALUE pairs: makes a new release from the live one's build and config (the "
      "newest one's while none was ever live); prints vN, and on stderr what it started from. "
      "The new release is not live until `relsupd ctl activate APP vN`. When every value is "
      "already so, no release is made (exit 0) and the current one is printed",
      "PAIRS", "KEY=VALUE ...");
  set.first->callback([ctx, set_args = set.second] {
    rpc::Json pairs = rpc::Json::object();
    for (const auto& s : set_args->items)
      if (!SplitAssignment(s, &pairs, ctx)) return;
    ctx->CallAndPrint(method::kConfigSet,
                      {{"app", set_args->app}, {"set", pairs}, {"force", set_args->force}},
                      [](const rpc::Json& r) { PrintCreated(r, '+'); });
  });
  auto unset = add_change(
      "unset",
      "Remove keys: makes a new release from the live one's build and config (the newest "
      "one's while none was ever live); prints vN, and on stderr what it started from. "
      "The new release is not live until `relsupd ctl activate APP vN`",
      "KEYS", "KEY ...");
  unset.first->callback([ctx, unset_args = unset.second] {
    ctx->CallAndPrint(method::kConfigUnset,
                      {{"app", unset_args->app},
                       {"unset", unset_args->items},
                       {"force", unset_args->force}},
                      [](const rpc::Json& r) { PrintCreated(r, '-'); });
  });

  auto show_args = std::make_shared<Args>();
  CLI::App* show = AddAppCommand(
      *config, "show", "Show a release's config (values masked)",
      &show_args->app, "App name");
  show->add_option("--release", show_args->release,
                   "Release (default: the live one; the newest while none was ever live)");
  show->add_flag("--reveal", show_args->reveal, "Show values (needs the change right)");
  show->callback([ctx, show_args] {
    rpc::Json p = {{"app", show_args->app}, {"reveal", show_args->reveal}};
    if (!show_args->release.empty()) p["release"] = show_args->release;
    const bool named = !show_args->release.empty();
    ctx->CallAndPrint(method::kConfigShow, p, [named](const rpc::Json& r) {
      if (Field(r, "release").is_null()) {
        std::cout << "(no release yet)\n";
        return;
      }
      std::cout << "# " << Text(r, "release") << '\n';
      if (!named || r.value("live", false)) std::cout << "# " << WhichRelease(r) << '\n';
      for (const auto& [k, v] : Field(r, "config").items()) std::cout << k << '=' << Text(v) << '\n';
    });
  });
}

void PrintPruned(const rpc::Json& r) {
  if (Field(r, "pruned").empty()) std::cout << "Nothing to prune\n";
  for (const auto& v : Field(r, "pruned")) std::cout << "Pruned " << Text(v) << '\n';
  for (const auto& v : r.value("in_use", rpc::Json::array()))
    std::cout << "Kept " << Text(v) << " while it is in use\n";
  for (const auto& b : Field(r, "builds_removed")) std::cout << "Removed artifact " << Text(b) << '\n';
}

void AddPruneVerb(CLI::App& ctl, CtlContext* ctx) {
  CLI::App* prune = AddAppVerb(
      ctl, ctx,
      {.name = "prune",
       .help = "Apply the app's keep_releases now: remove old activated releases",
       .method = method::kPrune},
      PrintPruned);
  SetVerbFooter(prune,
      "Only releases that were activated count; the active release, the "
      "rollback target, the releases of a switch in progress and any release "
      "with live processes are never pruned (one held back is pruned once it "
      "is no longer in use). A pruned release keeps its ledger row.");
}

}  // namespace

Result<Fd> OpenArtifactFile(const std::string& path, const std::string& label,
                            const std::string& instead, Sniff sniff) {
  const std::string named = label + " '" + path + "'";
  // O_NONBLOCK: a fifo is refused below instead of waiting for a writer.
  ASSIGN_OR_RETURN(Fd fd, OpenFile(path, O_RDONLY | O_NOCTTY | O_NONBLOCK));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return Status::FromErrno("cannot stat " + named, errno);
  if (!S_ISREG(st.st_mode))
    return InvalidArgument(named + " is " + FileKind(st.st_mode) + ", " + instead +
                           "a tar, tar.gz or tar.zst file");
  if (sniff == Sniff::kNo) return fd;
  char head[512];
  ssize_t n;
  do {
    n = ::pread(fd.get(), head, sizeof head, 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return Status::FromErrno("cannot read " + named, errno);
  const std::string_view h(head, static_cast<size_t>(n));
  const bool gzip = h.substr(0, 2) == "\x1f\x8b";
  const bool zstd = h.substr(0, 4) == "\x28\xb5\x2f\xfd";
  const bool tar = h.size() >= 262 && h.substr(257, 5) == "ustar";
  if (!gzip && !zstd && !tar)
    return InvalidArgument(named + " is " + instead +
                           "a tar, tar.gz or tar.zst artifact (its first bytes are none of "
                           "these formats" +
                           (n == 0 ? std::string(": it is empty")
                            : h.substr(0, 4) == "PK\x03\x04" ? std::string(": a zip file")
                                                             : "") +
                           ")");
  return fd;
}

Result<rpc::Json> ImportArtifact(Client& client, const std::string& app, int fd, bool progress) {
  struct stat st {};
  ::fstat(fd, &st);
  // The daemon reads through our open file description, so its offset is
  // the progress.
  const bool bar = progress && isatty(STDERR_FILENO) && st.st_size >= kProgressMinBytes;
  auto tick = [&] {
    if (!bar) return;
    off_t done = ::lseek(fd, 0, SEEK_CUR);
    int pct = static_cast<int>(100.0 * static_cast<double>(done) / static_cast<double>(st.st_size));
    std::string hashes(static_cast<size_t>(pct / 4), '#');
    fprintf(stderr, "\rimporting [%-25s] %3d%% %s", hashes.c_str(), pct, HumanBytes(done).c_str());
  };
  auto r = client.CallWithFd(method::kBuildImport, {{"app", app}}, fd, tick);
  if (bar) fprintf(stderr, "\r%60s\r", "");
  return r;
}

std::string DescribeImport(const rpc::Json& r) {
  return std::string(r.value("new", false) ? "Imported" : "Already imported") + " build " +
         Text(r, "id") + " (sha256:" + Text(r, "sha256") + ", " +
         HumanBytes(r.value("size", int64_t{0})) + ", " + Text(r, "entries") +
         (Text(r, "entries") == "1" ? " entry)" : " entries)");
}

bool ReadConfigChanges(const std::string& env_file, const std::vector<std::string>& sets,
                       rpc::Json* set, CtlContext* ctx) {
  if (!env_file.empty() && !ReadEnvFile(env_file, set, ctx)) return false;
  for (const auto& s : sets)
    if (!SplitAssignment(s, set, ctx)) return false;
  return true;
}

std::string DescribeCreated(const rpc::Json& r, char sign) {
  std::string out = Text(r, "release");
  if (Field(r, "from").is_null()) return out + " (the app's first release)";
  std::string keys;
  for (const auto& k : r.value("config_changed", rpc::Json::array()))
    keys += (keys.empty() ? "" : ", ") + Text(k);
  out += " (from " + Text(r, "from") +
         (keys.empty() ? ", same config" : std::string(" ") + sign + " " + keys);
  if (!r.value("from_live", false))
    out += "; " + Text(r, "from") + " is the newest release, none was ever live";
  return out + ")";
}

void AddReleaseStageVerbs(CLI::App& ctl, CtlContext* ctx) {
  AddPruneVerb(ctl, ctx);
  AddBuildVerbs(ctl, ctx);
  AddReleaseVerbs(ctl, ctx);
  AddConfigVerbs(ctl, ctx);
}

}  // namespace relsupd::cli
