#include "daemon/store/release_service.h"

#include "daemon/base/env_file.h"
#include "daemon/base/release_id.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "daemon/base/clock.h"
#include "daemon/base/failpoint.h"
#include "daemon/base/paths.h"
#include "daemon/base/sha256.h"
#include "daemon/base/uv_work.h"
#include "daemon/store/archive_reader.h"
#include "daemon/store/fs.h"
#include "daemon/store/objects.h"
#include "daemon/store/slots.h"

namespace relsupd {
namespace {

using nlohmann::json;
constexpr size_t kMaxConfigValueBytes = 32 * 1024;
constexpr size_t kMaxConfigKeys = 1000;

// Copies the artifact `fd` to `out`, hashing it; runs on the thread pool.
// read(), not pread(): the client shares this file offset and shows it as
// progress.
Result<std::string> CopyAndHash(int fd, int out, const std::string& out_path,
                                uint64_t max_bytes, uint64_t* total) {
  if (::lseek(fd, 0, SEEK_SET) != 0)
    return Status::FromErrno("cannot rewind the artifact", errno);
  Sha256 hash;
  std::string buf(1 << 20, '\0');
  *total = 0;
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno("cannot read the artifact", errno);
    if (n == 0) break;
    *total += static_cast<uint64_t>(n);
    if (*total > max_bytes)
      return InvalidArgument("the artifact grew past max_artifact_bytes while read");
    std::string_view chunk(buf.data(), static_cast<size_t>(n));
    hash.Update(chunk);
    RETURN_IF_ERROR(WriteAll(out, chunk, "'" + out_path + "'"));
  }
  return hash.HexDigest();
}

// Reads every entry of the copy `fd` (the reader refuses what it must) and
// fills the build's format, entries and unpacked_bytes.
Status ValidateArchive(int fd, uint64_t size, const StoreLimits& limits,
                       BuildRow* build) {
  if (::lseek(fd, 0, SEEK_SET) != 0)
    return Status::FromErrno("cannot rewind the copy", errno);
  ASSIGN_OR_RETURN(auto reader,
                   ArchiveReader::Open(fd, build->sha256.substr(0, 12), size, limits));
  for (;;) {
    ASSIGN_OR_RETURN(auto entry, reader->Next());
    if (!entry) break;
    if (entry->type == EntryType::kFile)
      RETURN_IF_ERROR(reader->ReadData([](std::string_view) { return Status::Ok(); }));
  }
  const std::string name = "artifact " + build->sha256.substr(0, 12);
  if (reader->entries() == 0)
    return InvalidArgument(name + " holds no entries: an empty archive has nothing to release");
  // Bytes past the archive's end would be stored and never read: a file
  // of zeros, or an archive with gigabytes glued after it.
  constexpr uint64_t kMaxTrailingBytes = 1 << 20;
  if (const uint64_t read = reader->bytes_read(); size > read + kMaxTrailingBytes)
    return InvalidArgument(name + " has " + std::to_string(size - read) +
                           " bytes after the end of its archive (of " + std::to_string(size) +
                           "); an artifact ends where its archive does");
  build->format = reader->format();
  build->entries = static_cast<int64_t>(reader->entries());
  build->unpacked_bytes = static_cast<int64_t>(reader->unpacked_bytes());
  return Status::Ok();
}

// Makes the validated copy `tmp` read-only and durable and moves it to
// STATE/apps/APP/builds/SHA256.FORMAT (kept if the same bytes are there).
Status StoreCopy(int out, const std::string& tmp, const std::string& state_dir,
                 const BuildRow& build) {
  if (::fsync(out) != 0) return Status::FromErrno("cannot fsync the copy", errno);
  if (::fchmod(out, 0444) != 0) return Status::FromErrno("cannot chmod the copy", errno);
  const std::string builds = BuildsDir(state_dir, build.app);
  RETURN_IF_ERROR(MakeDirs(builds, 0700));  // artifacts are the daemon's (layout.h)
  const std::string dest = builds + "/" + build.sha256 + "." + build.format;
  if (::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, dest.c_str(), RENAME_NOREPLACE) != 0) {
    if (errno != EEXIST) return Status::FromErrno("cannot store '" + dest + "'", errno);
    ::unlink(tmp.c_str());  // the same bytes are there already
  }
  return Status::Ok();
}

// Copies and validates an artifact; runs on the thread pool.
Result<BuildRow> CopyAndValidate(int fd, const std::string& state_dir,
                                 const std::string& app, const StoreLimits& limits) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return Status::FromErrno("cannot stat the artifact", errno);
  if (!S_ISREG(st.st_mode))
    return InvalidArgument("the artifact must be a regular file");
  if (static_cast<uint64_t>(st.st_size) > limits.max_artifact_bytes)
    return InvalidArgument("the artifact is " + std::to_string(st.st_size) +
                           " bytes, over max_artifact_bytes (" +
                           std::to_string(limits.max_artifact_bytes) + ")");
  const std::string tmp_dir = StagingDir(state_dir);
  RETURN_IF_ERROR(MakeDirs(tmp_dir, 0700));
  std::string tmp = tmp_dir + "/import-XXXXXX";
  int raw = ::mkostemp(tmp.data(), O_CLOEXEC);
  if (raw < 0) return Status::FromErrno("cannot create '" + tmp_dir + "/import-*'", errno);
  Fd out(raw);
  BuildRow build;
  build.app = app;
  uint64_t total = 0;
  auto sha = CopyAndHash(fd, out.get(), tmp, limits.max_artifact_bytes, &total);
  Status s = sha.status();
  if (s.ok()) {
    build.sha256 = *sha;
    build.size = static_cast<int64_t>(total);
    s = ValidateArchive(out.get(), total, limits, &build);
  }
  if (s.ok()) s = StoreCopy(out.get(), tmp, state_dir, build);
  if (!s.ok()) {
    ::unlink(tmp.c_str());
    return s;
  }
  RETURN_IF_ERROR(SyncDir(BuildsDir(state_dir, app)));
  return build;
}

// The config keys `after` sets, changes or removes relative to `before`.
std::vector<std::string> ChangedKeys(const ReleaseConfig& before, const ReleaseConfig& after) {
  std::vector<std::string> changed;
  for (const auto& [k, v] : after) {
    auto it = before.find(k);
    if (it == before.end() || it->second != v) changed.push_back(k);
  }
  for (const auto& [k, v] : before)
    if (!after.count(k)) changed.push_back(k);
  return changed;
}

// The event detail of a new release: what it started from and what changed,
// values left out (the event log is not for secrets).
json ReleaseDetail(const std::string& build_sha, const CreatedRelease& made) {
  json detail = {{"build", build_sha.substr(0, 12)}, {"config_changed", made.config_changed}};
  if (made.from != 0) detail["from"] = ReleaseId(made.from).ToString();
  return detail;
}

}  // namespace

const ReleaseRow* BaseRelease(const std::vector<ReleaseRow>& releases, int64_t active) {
  if (active == 0) return releases.empty() ? nullptr : &releases.back();
  for (const ReleaseRow& r : releases)
    if (r.number == active) return &r;
  return nullptr;
}

Result<ReleaseConfig> ReleaseConfigOf(const ReleaseRow& r) {
  if (r.config_malformed)
    return Corruption("release config of app '" + r.app + "' is malformed");
  return r.config;
}

ReleaseService::ReleaseService(uv_loop_t* loop, Ledger* ledger, std::string state_dir,
                               StoreLimits limits)
    : loop_(loop), ledger_(ledger), state_dir_(std::move(state_dir)), limits_(limits) {}

ReleaseService::~ReleaseService() { *alive_ = false; }

std::string ReleaseService::SlotDir(const std::string& app, int64_t number) const {
  return SlotPath(state_dir_, app, number);
}

std::string ReleaseService::BuildPath(const BuildRow& b) const {
  return BuildsDir(state_dir_, b.app) + "/" + b.sha256 + "." + b.format;
}

Status ReleaseService::RefuseWhileDeleting(const std::string& app) const {
  if (deleting_.count(app))
    return Status(StatusCode::kBusy, "app '" + app + "' is being deleted");
  return Status::Ok();
}

Status ReleaseService::CheckNotBusy(const std::string& app) const {
  RETURN_IF_ERROR(RefuseWhileDeleting(app));
  if (busy_.count(app))
    return Status(StatusCode::kBusy,
                  "app '" + app + "' has a release being made; try again when it is done");
  return Status::Ok();
}

void ReleaseService::SetDeleting(const std::string& app, bool deleting) {
  if (deleting)
    deleting_.insert(app);
  else
    deleting_.erase(app);
}

Status ReleaseService::CheckIdle(const std::string& app) const {
  RETURN_IF_ERROR(CheckNotBusy(app));
  if (auto it = importing_.find(app); it != importing_.end() && it->second > 0)
    return Status(StatusCode::kBusy,
                  "app '" + app + "' has an artifact being imported; try again when it is done");
  if (pruning_.count(app))
    return Status(StatusCode::kBusy,
                  "app '" + app + "' is being pruned; try again when it is done");
  return Status::Ok();
}

void ReleaseService::RemoveApp(const std::string& app, Done<uint64_t> done) {
  held_back_.erase(app);
  recheck_.erase(app);
  // A new directory of its own in tmp/ (emptied at each start), so the
  // names moved to exist nowhere yet.
  std::string base = StagingDir(state_dir_) + "/deleted-" + app + "-XXXXXX";
  if (::mkdtemp(base.data()) == nullptr)
    return done(Status::FromErrno("cannot make a directory in '" + StagingDir(state_dir_) + "'",
                                  errno));
  for (const auto& [dir, name] : {std::pair{AppDir(state_dir_, app), "app"},
                                  std::pair{JoinPath(LogsDir(state_dir_), app), "logs"}}) {
    const std::string to = base + "/" + name;
    if (::rename(dir.c_str(), to.c_str()) != 0 && errno != ENOENT) {
      Status s = Status::FromErrno("cannot move '" + dir + "' to '" + to + "'", errno);
      // What was moved is the deleted app's: it goes (or at the next start).
      RunOffLoop<Status>(loop_, [base] { return RemoveTree(base); }, [](Status) {});
      return done(s);
    }
  }
  RunOffLoop<Result<uint64_t>>(
      loop_,
      [base, objects_dir = ObjectsDir(state_dir_)]() -> Result<uint64_t> {
        RETURN_IF_ERROR(RemoveTree(base));
        ASSIGN_OR_RETURN(ObjectStore objects, ObjectStore::Open(objects_dir));
        return objects.CollectGarbage();
      },
      [alive = alive_, done](Result<uint64_t> r) {
        if (*alive) done(std::move(r));
      });
}

Status ReleaseService::Recover() {
  RETURN_IF_ERROR(CleanStaging(state_dir_));
  ASSIGN_OR_RETURN(std::vector<AppSpec> apps, ledger_->ListApps());
  // Directories of apps that no longer exist: `app delete` committed, and
  // the daemon died before it moved them away.
  std::set<std::string> live;
  for (const AppSpec& app : apps) live.insert(app.name);
  for (const std::string& parent : {state_dir_ + "/apps", LogsDir(state_dir_)}) {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(parent, ec)) {
      const std::string name = e.path().filename().string();
      if (live.count(name) || !e.is_directory(ec)) continue;
      auto deleted = ledger_->IsDeletedApp(name);
      if (!deleted.ok() || !*deleted) continue;  // not an app the ledger deleted
      spdlog::info("Removing '{}': app '{}' was deleted", e.path().string(), name);
      // Garbage: what cannot be removed must not keep every app down.
      if (Status s = RemoveTree(e.path().string()); !s.ok())
        spdlog::warn("{}, ignoring", s.message());
    }
  }
  for (const AppSpec& app : apps) {
    const std::string dir = ReleasesDir(state_dir_, app.name);
    std::error_code ec;
    if (!std::filesystem::exists(dir, ec)) continue;
    for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
      auto id = ReleaseId::Parse(e.path().filename().string());
      if (!id.ok()) continue;
      auto row = ledger_->GetRelease(app.name, id->number());
      if (row.ok() && row->pruned) {
        // The pruned event was recorded, the removal did not finish.
        spdlog::info("Removing slot {} of app '{}': pruned", id->ToString(), app.name);
        RETURN_IF_ERROR(RemoveTree(e.path().string()));
        continue;
      }
      if (row.ok() || row.status().code() != StatusCode::kNotFound) continue;
      // Renamed into place, but the ledger never heard of it: the daemon
      // died before the commit. The release does not exist; remove it.
      spdlog::warn("Removing slot {} of app '{}': no ledger row (interrupted release)",
                   id->ToString(), app.name);
      RETURN_IF_ERROR(RemoveTree(e.path().string()));
    }
  }
  for (const AppSpec& app : apps) {
    ASSIGN_OR_RETURN(std::vector<BuildRow> unused, UnusedBuilds(app.name));
    for (const BuildRow& b : unused)
      if (::unlink(BuildPath(b).c_str()) == 0)
        spdlog::info("Removed artifact {} of app '{}': no release uses it", b.id(), app.name);
  }
  ASSIGN_OR_RETURN(ObjectStore objects, ObjectStore::Open(ObjectsDir(state_dir_)));
  ASSIGN_OR_RETURN(uint64_t removed, objects.CollectGarbage());
  if (removed > 0) spdlog::info("Removed {} unused objects", removed);
  return Status::Ok();
}

void ReleaseService::ImportBuild(const std::string& app, Fd file, const Actor& actor,
                                 Done<ImportedBuild> done) {
  Status s = ledger_->GetApp(app).status();
  if (s.ok()) s = RefuseWhileDeleting(app);
  if (!s.ok()) return done(s);
  auto shared_fd = std::make_shared<Fd>(std::move(file));
  ++importing_[app];
  RunOffLoop<Result<BuildRow>>(
      loop_,
      [shared_fd, state_dir = state_dir_, app, limits = limits_] {
        FailpointWait("import-gate");
        return CopyAndValidate(shared_fd->get(), state_dir, app, limits);
      },
      [this, alive = alive_, app, actor, done](Result<BuildRow> r) {
        if (!*alive) return;
        if (--importing_[app] <= 0) importing_.erase(app);
        if (!r.ok()) return done(r.status());
        const BuildRow& build = *r;
        auto inserted = ledger_->RecordBuild(build, actor);
        if (!inserted.ok()) return done(inserted.status());
        auto stored = ledger_->FindBuild(build.app, build.sha256);
        if (!stored.ok()) return done(stored.status());
        spdlog::info("Imported build {} of app '{}' ({} bytes){}", build.id(), build.app,
                     build.size, *inserted ? "" : ", already stored");
        done(ImportedBuild{*stored, *inserted});
      });
}

Result<BuildRow> ReleaseService::ReleaseBuild(const std::string& app,
                                              const std::string& build_id,
                                              const ReleaseRow* base) {
  std::string build_sha;
  if (build_id.empty()) {
    if (base == nullptr)
      return FailedPrecondition("app '" + app +
                                "' has no release yet: make one with 'release create " +
                                app + " --build ID'");
    build_sha = base->build;
  } else {
    ASSIGN_OR_RETURN(BuildRow build, ledger_->FindBuild(app, build_id));
    build_sha = build.sha256;
  }
  return ledger_->FindBuild(app, build_sha);
}

Result<ReleaseConfig> ReleaseService::ApplyConfigChange(const std::string& app,
                                                        const ReleaseRow* base,
                                                        const ConfigChange& change) const {
  ReleaseConfig env;
  if (base != nullptr && !change.replace) {
    auto parsed = ReleaseConfigOf(*base);
    if (!parsed.ok()) return Corruption("release config of app '" + app + "' is malformed");
    env = std::move(parsed).value();
  }
  for (const auto& [k, value] : change.set) {
    RETURN_IF_ERROR(ValidateConfigKey(k));
    if (value.size() > kMaxConfigValueBytes || value.find('\0') != std::string::npos)
      return InvalidArgument("config value of '" + k +
                             "' must be under 32 KiB with no NUL byte");
    env[k] = value;
  }
  for (const std::string& k : change.unset) {
    RETURN_IF_ERROR(ValidateConfigKey(k));
    if (!env.count(k))
      return NotFound("config key '" + k + "' is not set in app '" + app + "'" +
                      (base != nullptr ? " (in " + ReleaseId(base->number).ToString() +
                                             ", the release this one starts from)"
                                       : ""));
    env.erase(k);
  }
  if (env.size() > kMaxConfigKeys)
    return InvalidArgument("a release holds at most 1000 config keys");
  return env;
}

void ReleaseService::CreateRelease(const std::string& app, const std::string& build_id,
                                   const ConfigChange& change, const Actor& actor,
                                   Done<CreatedRelease> done) {
  auto spec = ledger_->GetApp(app);
  Status s = spec.status();
  if (s.ok()) s = CheckNotBusy(app);
  if (!s.ok()) return done(s);
  auto releases = ledger_->ListReleases(app);
  if (!releases.ok()) return done(releases.status());
  auto activation = ledger_->ActivationOf(app);
  if (!activation.ok()) return done(activation.status());
  const ReleaseRow* base = BaseRelease(*releases, activation->active);
  if (base == nullptr && activation->active != 0)
    return done(Corruption("the live release " + ReleaseId(activation->active).ToString() +
                           " of app '" + app + "' has no ledger row"));
  auto build = ReleaseBuild(app, build_id, base);
  if (!build.ok()) return done(build.status());
  auto env = ApplyConfigChange(app, base, change);
  if (!env.ok()) return done(env.status());
  ReleaseConfig before;
  if (base != nullptr && !change.replace) before = ReleaseConfigOf(*base).value();
  CreatedRelease made;
  made.from = base != nullptr ? base->number : 0;
  made.from_live = base != nullptr && base->number == activation->active;
  made.config_changed = ChangedKeys(before, *env);
  if (change.only_if_changed && build_id.empty() && base != nullptr &&
      made.config_changed.empty()) {
    made.release = *base;
    made.unchanged = true;
    return done(std::move(made));
  }
  if (change.reuse) {
    for (auto it = releases->rbegin(); it != releases->rend(); ++it)
      if (!it->pruned && !it->config_malformed && it->build == build->sha256 &&
          it->config == *env) {
        made.release = *it;
        made.reused = true;
        return done(std::move(made));
      }
  }

  auto number = ledger_->NextReleaseNumber(app);
  if (!number.ok()) return done(number.status());
  SlotRequest req;
  req.state_dir = state_dir_;
  req.app = app;
  req.number = *number;
  req.artifact_path = BuildPath(*build);
  req.build_sha256 = build->sha256;
  req.env = json(*env);
  req.metadata = {{"app", app},
                  {"release", ReleaseId(*number).ToString()},
                  {"build", build->sha256},
                  {"created_by", actor.name}};
  req.limits = limits_;
  req.sockets = spec->sockets;
  const std::string detail = ReleaseDetail(build->sha256, made).dump();

  busy_.insert(app);
  RunOffLoop<Result<SlotResult>>(
      loop_, [req] { return BuildSlot(req); },
      [this, alive = alive_, req, actor, detail, made, done](Result<SlotResult> r) {
        if (!*alive) return;
        busy_.erase(req.app);
        CommitRelease(req, detail, actor, std::move(r), made, done);
      });
}

void ReleaseService::CommitRelease(const SlotRequest& req, const std::string& detail_text,
                                   const Actor& actor, Result<SlotResult> r,
                                   CreatedRelease made, const Done<CreatedRelease>& done) {
  if (!r.ok()) return done(r.status());
  Failpoint("before-commit");
  const std::string& app = req.app;
  const int64_t number = req.number;
  ReleaseRow row;
  row.app = app;
  row.number = number;
  row.build = req.build_sha256;
  row.digest = r->digest;
  row.config = req.env.get<ReleaseConfig>();
  json detail = json::parse(detail_text);
  detail["digest"] = r->digest;
  Status committed = ledger_->RecordRelease(row, actor, detail.dump());
  if (!committed.ok()) {
    RemoveTree(SlotDir(app, number)).IgnoreError();
    return done(committed);
  }
  Failpoint("after-commit");
  spdlog::info("Released {} of app '{}' (build {}, {} files)", ReleaseId(number).ToString(), app,
               req.build_sha256.substr(0, 12), r->files);
  auto stored = ledger_->GetRelease(app, number);
  if (!stored.ok()) return done(stored.status());
  made.release = std::move(stored).value();
  done(std::move(made));
  Prune(app, actor, [app](Result<PruneReport> pruned) {
    if (!pruned.ok())
      spdlog::warn("Retention of app '{}' failed: {}, ignoring", app,
                   pruned.status().message());
  });
}

Result<std::vector<BuildRow>> ReleaseService::UnusedBuilds(const std::string& app) {
  ASSIGN_OR_RETURN(std::vector<BuildRow> builds, ledger_->ListBuilds(app));
  ASSIGN_OR_RETURN(std::vector<ReleaseRow> releases, ledger_->ListReleases(app));
  std::vector<BuildRow> out;
  for (const BuildRow& b : builds) {
    bool used = false, released = false;
    for (const ReleaseRow& r : releases) {
      if (r.build != b.sha256) continue;
      released = true;
      used = used || !r.pruned;
    }
    // A build no release was ever made from is kept: it waits for one.
    if (released && !used) out.push_back(b);
  }
  return out;
}

struct ReleaseService::PrunePlan {
  std::vector<int64_t> victims;  // newest first
  std::set<int64_t> held;        // in use: held back
  std::vector<std::string> slots, build_files, builds_removed;
};

// Decides what goes and records the `pruned` events; on the loop.
Result<ReleaseService::PrunePlan> ReleaseService::PlanPrune(const std::string& app,
                                                            const Actor& actor) {
  ASSIGN_OR_RETURN(AppSpec spec, ledger_->GetApp(app));
  RETURN_IF_ERROR(RefuseWhileDeleting(app));
  // A prune may run beside a release being made: it touches only old,
  // activated slots, and the object store's lock keeps collection from
  // taking an object a new slot is linking.
  if (pruning_.count(app))
    return Status(StatusCode::kBusy, "app '" + app + "' is being pruned already");
  ASSIGN_OR_RETURN(Ledger::Activation activation, ledger_->ActivationOf(app));
  ASSIGN_OR_RETURN(std::vector<ReleaseRow> releases, ledger_->ListReleases(app));
  // Asked now, on the loop: a switch cannot begin between this and the
  // `pruned` events below, and Activate refuses a release once pruned.
  const std::set<int64_t> in_use = in_use_ ? in_use_(app) : std::set<int64_t>();
  PrunePlan plan;
  int64_t kept = 0;
  for (auto it = releases.rbegin(); it != releases.rend(); ++it) {
    if (!activation.ever_activated.count(it->number)) continue;
    if (it->pruned) continue;
    if (++kept <= spec.keep_releases) continue;
    if (it->number == activation.active || it->number == activation.previous) continue;
    if (in_use.count(it->number)) {
      plan.held.insert(it->number);
      continue;
    }
    plan.victims.push_back(it->number);
  }
  if (plan.held.empty()) {
    held_back_.erase(app);
  } else {
    held_back_[app] = plan.held;
    json held_json = json::array();
    for (int64_t n : plan.held) held_json.push_back(ReleaseId(n).ToString());
    spdlog::info("Retention of app '{}' holds back {} while in use", app, held_json.dump());
  }
  for (int64_t n : plan.victims) {
    json detail = {{"reason", "keep_releases is " + std::to_string(spec.keep_releases)}};
    RETURN_IF_ERROR(ledger_->AppendEvent(app, EventKind::kPruned, ReleaseId(n), actor, detail.dump()));
    Failpoint("after-prune-event");
  }
  ASSIGN_OR_RETURN(std::vector<BuildRow> unused, UnusedBuilds(app));
  for (int64_t n : plan.victims) plan.slots.push_back(SlotDir(app, n));
  for (const BuildRow& b : unused) {
    std::error_code ec;
    if (!std::filesystem::exists(BuildPath(b), ec)) continue;
    plan.build_files.push_back(BuildPath(b));
    plan.builds_removed.push_back(b.id());
  }
  return plan;
}

void ReleaseService::Prune(const std::string& app, const Actor& actor,
                           Done<PruneReport> done) {
  auto plan = PlanPrune(app, actor);
  if (!plan.ok()) return done(plan.status());
  PruneReport report;
  report.pruned = plan->victims;
  report.in_use.assign(plan->held.begin(), plan->held.end());
  report.builds_removed = plan->builds_removed;
  pruning_.insert(app);
  RunOffLoop<Result<uint64_t>>(
      loop_,
      [slots = plan->slots, build_files = plan->build_files,
       objects_dir = ObjectsDir(state_dir_)]() -> Result<uint64_t> {
        for (const std::string& slot : slots) RETURN_IF_ERROR(RemoveTree(slot));
        Failpoint("after-prune-remove");
        for (const std::string& f : build_files)
          if (::unlink(f.c_str()) != 0 && errno != ENOENT)
            return Status::FromErrno("cannot remove '" + f + "'", errno);
        ASSIGN_OR_RETURN(ObjectStore objects, ObjectStore::Open(objects_dir));
        return objects.CollectGarbage();
      },
      [this, alive = alive_, app, report, done](Result<uint64_t> r) mutable {
        if (!*alive) return;
        pruning_.erase(app);
        if (!r.ok()) {
          done(r.status());
        } else {
          if (!report.pruned.empty())
            spdlog::info("Pruned {} release(s) of app '{}'", report.pruned.size(), app);
          report.objects_removed = *r;
          done(report);
        }
        if (*alive && recheck_.erase(app)) InUseEnded(app);
      });
}

void ReleaseService::InUseEnded(const std::string& app) {
  if (deleting_.count(app)) return;  // every release of it goes anyway
  auto it = held_back_.find(app);
  if (it == held_back_.end()) return;
  if (pruning_.count(app)) {
    recheck_.insert(app);  // asked again when that prune is done
    return;
  }
  const std::set<int64_t> in_use = in_use_ ? in_use_(app) : std::set<int64_t>();
  bool freed = false;
  for (int64_t n : it->second) freed = freed || !in_use.count(n);
  if (!freed) return;
  // The daemon applies the retention it held back; the `pruned` events
  // name it as the actor.
  Prune(app, Actor{0, "relsupd"}, [app](Result<PruneReport> pruned) {
    if (!pruned.ok())
      spdlog::warn("Retention of app '{}' (held back while in use) failed: {}, ignoring", app,
                   pruned.status().message());
  });
}

void ReleaseService::VerifyRelease(const std::string& app, int64_t number,
                                   Done<ReleaseVerification> done) {
  auto row = ledger_->GetRelease(app, number);
  if (!row.ok()) return done(row.status());
  if (row->pruned)
    return done(FailedPrecondition("release " + ReleaseId(number).ToString() + " of app '" + app +
                                   "' was pruned: its slot is gone"));
  RunOffLoop<Result<VerifyResult>>(
      loop_,
      [dir = SlotDir(app, number), digest = row->digest, build = row->build] {
        return VerifySlot(dir, digest, build);
      },
      [alive = alive_, number, done](Result<VerifyResult> r) {
        if (!*alive) return;
        if (!r.ok()) return done(r.status());
        done(ReleaseVerification{number, std::move(r).value()});
      });
}

}  // namespace relsupd
