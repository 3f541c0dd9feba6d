#pragma once
// Ledger: the SQLite system of record (the only sqlite3.h user).
//
// Tables: `apps` (each app's spec), `events` (the append-only event log),
// `builds` (imported artifacts), `releases` (immutable), `formation` (the
// scale per process type) and `app_state` (each app's active, previous and
// in-flight release and whether it was stopped by hand; see app_state.h).
// A row of formation or app_state changes in the same transaction as the
// event that records the change. The database runs in WAL mode
// with synchronous=FULL, so a committed row survives kill -9 and power loss;
// every write is one BEGIN IMMEDIATE transaction. Triggers refuse UPDATE and
// DELETE on events, and each event carries the hash of the one before it, so
// an edit made behind relsupd's back is found by VerifyHistory().
//
// One Ledger per state directory, used from the loop thread only.

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "daemon/base/clock.h"
#include "daemon/base/release_id.h"
#include "daemon/base/status.h"
#include "daemon/config/app_spec.h"
#include "daemon/ledger/app_state.h"
#include "daemon/ledger/event_kind.h"

struct sqlite3;

namespace relsupd {

// Who made a change: from SO_PEERCRED, or the daemon itself.
struct Actor {
  uid_t uid = 0;
  std::string name;
  bool operator==(const Actor&) const = default;
};

struct Event {
  int64_t id = 0;
  int64_t time_ms = 0;
  std::string app;
  std::string kind;  // EventKindName(): app-created, app-updated, ...
  std::string release;
  int64_t actor_uid = 0;
  std::string actor_name;
  std::string detail;
  std::string prev_hash;
  std::string hash;
};

// An imported artifact, stored as apps/APP/builds/SHA256.FORMAT.
struct BuildRow {
  std::string app;
  std::string sha256;
  std::string format;  // tar, tar.gz, tar.zst
  int64_t size = 0;
  int64_t entries = 0;
  int64_t unpacked_bytes = 0;
  int64_t imported_at = 0;
  std::string imported_by;
  std::string id() const { return sha256.substr(0, 12); }
};

// A release: immutable once recorded.
// A release's environment: KEY -> value (stored as a JSON object of
// strings, read into this once by the ledger).
using ReleaseConfig = std::map<std::string, std::string>;

struct ReleaseRow {
  std::string app;
  int64_t number = 0;
  std::string build;   // sha256 of the build
  std::string digest;  // of the sealed slot's content and config
  ReleaseConfig config;
  // The stored config was not a JSON object of strings (a damaged ledger):
  // `config` is then empty, and whoever needs it reports the damage.
  bool config_malformed = false;
  int64_t created_at = 0;
  int64_t created_uid = 0;
  std::string created_by;
  bool pruned = false;  // derived from the event log
};

struct VerifyReport {
  // At most this many problems are named; `more_problems` counts the rest,
  // so a ledger edited everywhere still gives a report of bounded size.
  static constexpr size_t kMaxProblems = 100;
  int64_t checked = 0;
  std::vector<std::string> problems;  // empty when the chain is intact
  int64_t more_problems = 0;
  bool ok() const { return problems.empty(); }
};

class Ledger {
 public:
  static constexpr int kSchemaVersion = 6;

  // Opens or creates the ledger at `path`, checks its integrity and migrates
  // its schema forward. `clock` must outlive the Ledger.
  static Result<std::unique_ptr<Ledger>> Open(const std::string& path,
                                              const Clock& clock);
  ~Ledger();
  Ledger(const Ledger&) = delete;
  Ledger& operator=(const Ledger&) = delete;

  int schema_version() const { return schema_version_; }

  // Adds a new app; AlreadyExists if the name is taken. Logs app-created.
  // REQUIRES: spec was validated and its user and group filled in.
  Status CreateApp(const AppSpec& spec, const Actor& actor);
  // Creates or updates the app to equal `spec`. Returns false, and logs
  // nothing, when it already did.
  Result<bool> ApplyApp(const AppSpec& spec, const Actor& actor);
  // Marks the app deleted (it no longer exists for GetApp and ListApps;
  // its row stays, so its history reads on and numbers are never reused),
  // in one transaction with: a `pruned` event ("app deleted") for each
  // release not pruned yet, its formation and never-released builds
  // gone, its app_state emptied, its dynamic uid freed, and an
  // `app-deleted` event whose detail is the spec it had. Creating the name
  // again (CreateApp, ApplyApp) revives the row with the new spec.
  // REQUIRES: nothing of the app runs; its files go afterwards (the run
  // and release stages).
  Status DeleteApp(const std::string& name, const Actor& actor);
  // NotFound when there is no such app (or it was deleted).
  Result<AppSpec> GetApp(const std::string& name);
  Result<std::vector<AppSpec>> ListApps();
  // Whether the name is that of a deleted app (false: never created, or
  // exists).
  Result<bool> IsDeletedApp(const std::string& name);
  // The uids deleted apps ran as (AllocateAppUid gives them out last).
  Result<std::set<int64_t>> RetiredUids();

  // Records an imported build; returns false (and logs nothing) when the
  // app already has these bytes.
  Result<bool> RecordBuild(const BuildRow& build, const Actor& actor);
  // By full sha256 or a unique prefix of at least 7 hex digits.
  Result<BuildRow> FindBuild(const std::string& app, const std::string& id);
  Result<std::vector<BuildRow>> ListBuilds(const std::string& app);

  // The number the next release of `app` gets: one more than any before.
  Result<int64_t> NextReleaseNumber(const std::string& app);
  // Records a release and its `released` event in one transaction.
  // AlreadyExists if the number is taken.
  Status RecordRelease(const ReleaseRow& release, const Actor& actor,
                       const std::string& detail);
  Result<ReleaseRow> GetRelease(const std::string& app, int64_t number);
  // Oldest first.
  Result<std::vector<ReleaseRow>> ListReleases(const std::string& app);

  // The app's `app_state` row (all empty when it has none yet).
  Result<AppState> GetAppState(const std::string& app);
  // Which release is live and which one a rollback would return to (from
  // the app_state row), and which of its releases were ever live.
  struct Activation {
    int64_t active = 0;                // 0: none
    int64_t previous = 0;              // 0: none
    std::set<int64_t> ever_activated;  // numbers of recorded releases
  };
  Result<Activation> ActivationOf(const std::string& app);

  // How release vN's release phase last ended (release-phase-succeeded or
  // -failed, through the events_kind index): nullopt when it never ran.
  enum class PhaseOutcome { kSucceeded, kFailed };
  Result<std::optional<PhaseOutcome>> ReleasePhaseOutcome(
      const std::string& app, ReleaseId release);

  // The recorded scale per process type (types never scaled are absent).
  Result<std::map<std::string, int>> GetFormation(const std::string& app);
  // Records new scales and one `scaled` event ("web=3 worker=1") together.
  Status SetFormation(const std::string& app,
                      const std::map<std::string, int>& scales,
                      ReleaseId release, const Actor& actor);
  // AppState::stopped_by_hand: the daemon leaves the app stopped at start-up.
  Result<bool> StoppedByHand(const std::string& app);

  // Appends one event to the hash chain, and moves the app's app_state row
  // on by it, in one transaction.
  Status AppendEvent(const std::string& app, EventKind kind, ReleaseId release,
                     const Actor& actor, const std::string& detail);
  // The newest `limit` events (of `app` when given), oldest first.
  Result<std::vector<Event>> History(const std::optional<std::string>& app,
                                     int64_t limit);
  // One page of history: events with id > `after` (of `app` when given),
  // oldest first, at most `limit` of them.
  Result<std::vector<Event>> EventsAfter(const std::optional<std::string>& app,
                                         int64_t after, int64_t limit);
  // The cursor before the newest `count` events (of `app` when given):
  // EventsAfter(app, it, ...) starts with the oldest of them. 0 when there
  // are no more than `count`.
  Result<int64_t> CursorBeforeNewest(const std::optional<std::string>& app,
                                     int64_t count);
  // Walks the whole chain and names every event that was edited or deleted.
  Result<VerifyReport> VerifyHistory();
  // The same on a read-only connection of its own to the ledger at `path`,
  // so it may run on any thread (the control socket runs it off the loop:
  // the walk grows with the history). WAL lets it read beside the writer.
  static Result<VerifyReport> VerifyHistoryOf(const std::string& path);
  const std::string& path() const { return path_; }
  // Called with every event once its transaction committed (the daemon's
  // event feed); never for one that rolled back.
  void set_on_event(std::function<void(const Event&)> f) { on_event_ = std::move(f); }

 private:
  Ledger(sqlite3* db, const Clock& clock) : db_(db), clock_(clock) {}
  Status Exec(const char* sql);
  Status Configure();
  Status Migrate();
  Status InsertEventLocked(const std::string& app, EventKind kind,
                           ReleaseId release, const Actor& actor,
                           const std::string& detail);
  Status WriteAppState(const std::string& app, const AppState& state);
  Status FillAppStates();  // migration 5
  // kInsert: a new name; kUpdate: an existing app; kRevive: a deleted
  // app's row, made to exist again with `spec`.
  enum class AppWrite { kInsert, kUpdate, kRevive };
  Status WriteApp(const AppSpec& spec, AppWrite how);

  Status Err(const char* what);
  // Events (of `app` when given; with id > `after` when given), at most
  // `limit` of them: the oldest, oldest first, or the newest, newest first.
  enum class EventOrder { kOldestFirst, kNewestFirst };
  Result<std::vector<Event>> ReadEvents(const std::optional<std::string>& app,
                                        std::optional<int64_t> after,
                                        int64_t limit, EventOrder order);

  std::string path_;
  sqlite3* db_;
  const Clock& clock_;
  int schema_version_ = 0;
  std::function<void(const Event&)> on_event_;
  // Inserted by the open transaction; announced at its commit (Txn).
  std::vector<Event> uncommitted_;
  void EndTxn(bool committed);
  friend class Txn;
};

// The hash an event must carry, given the hash of the event before it.
std::string EventHash(const Event& e);

}  // namespace relsupd
