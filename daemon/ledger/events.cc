// Ledger: the append-only event log and its hash chain.
#include <algorithm>

#include "daemon/base/failpoint.h"
#include "daemon/base/sha256.h"
#include "daemon/ledger/ledger.h"
#include "daemon/ledger/sql.h"

namespace relsupd {

namespace {

void AppendField(std::string* out, std::string_view field) {
  // Length-prefixed, so no two different events hash the same text.
  *out += std::to_string(field.size());
  *out += ':';
  *out += field;
  *out += '\n';
}

}  // namespace

std::string EventHash(const Event& e) {
  std::string text;
  AppendField(&text, e.prev_hash);
  AppendField(&text, std::to_string(e.id));
  AppendField(&text, std::to_string(e.time_ms));
  AppendField(&text, e.app);
  AppendField(&text, e.kind);
  AppendField(&text, e.release);
  AppendField(&text, std::to_string(e.actor_uid));
  AppendField(&text, e.actor_name);
  AppendField(&text, e.detail);
  return Sha256Hex(text);
}

Status Ledger::InsertEventLocked(const std::string& app, EventKind kind,
                                 ReleaseId release, const Actor& actor,
                                 const std::string& detail) {
  Event e;
  e.prev_hash = kGenesisHash;
  e.id = 1;
  {
    // The chain continues from the highest id ever issued, deleted or not,
    // so a tail deleted behind relsupd's back stays visible as a gap.
    Stmt st(db_,
            "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE "
            "name='events'), 0), (SELECT hash FROM events ORDER BY id DESC "
            "LIMIT 1)");
    if (!st.prepared() || st.Step() != SQLITE_ROW)
      return Err("cannot read the last event");
    e.id = st.Int(0) + 1;
    std::string last = st.Text(1);
    if (!last.empty()) e.prev_hash = last;
  }
  e.time_ms = clock_.WallMs();
  e.app = app;
  e.kind = EventKindName(kind);
  e.release = release.ToString();
  e.actor_uid = actor.uid;
  e.actor_name = actor.name;
  e.detail = detail;
  e.hash = EventHash(e);
  Stmt ins(db_,
           "INSERT INTO events(id, time, app, kind, release, actor_uid, "
           "actor_name, detail, prev_hash, hash) VALUES(?,?,?,?,?,?,?,?,?,?)");
  if (!ins.prepared()) return Err("cannot prepare event insert");
  ins.Bind(1, e.id).Bind(2, e.time_ms).Bind(3, e.app).Bind(4, e.kind);
  ins.Bind(5, e.release).Bind(6, e.actor_uid).Bind(7, e.actor_name);
  ins.Bind(8, e.detail).Bind(9, e.prev_hash).Bind(10, e.hash);
  if (ins.Step() != SQLITE_DONE) return Err("cannot record event");
  if (on_event_) uncommitted_.push_back(e);
  if (!ChangesAppState(kind)) return Status::Ok();
  ASSIGN_OR_RETURN(AppState state, GetAppState(app));
  return WriteAppState(app, NextAppState(state, kind, release));
}

void Ledger::EndTxn(bool committed) {
  std::vector<Event> events = std::move(uncommitted_);
  uncommitted_.clear();
  if (!committed || !on_event_) return;
  for (const Event& e : events) on_event_(e);
}

Status Ledger::AppendEvent(const std::string& app, EventKind kind,
                           ReleaseId release, const Actor& actor,
                           const std::string& detail) {
  // Fault tests: RELSUPD_FAILPOINT=ledger-append-KIND fails the append of
  // every KIND event, as a full disk or an I/O error would.
  const std::string name(EventKindName(kind));
  if (FailpointFails("ledger-append-" + name))
    return Status(StatusCode::kIoError, "cannot append event '" + name +
                                            "': injected failure (failpoint)");
  Txn txn(this);
  RETURN_IF_ERROR(txn.Begin());
  RETURN_IF_ERROR(InsertEventLocked(app, kind, release, actor, detail));
  return txn.Commit();
}

Result<std::vector<Event>> Ledger::ReadEvents(
    const std::optional<std::string>& app, std::optional<int64_t> after,
    int64_t limit, EventOrder order) {
  // Appended, not `std::string(kEventColumns) + ...`: GCC 12 reports a
  // false -Warray-bounds in that operator+ when json.hpp is precompiled.
  std::string sql = kEventColumns;
  sql += " WHERE true";
  if (after) sql += " AND id > ?2";
  if (app) sql += " AND app=?3";
  sql += order == EventOrder::kOldestFirst ? " ORDER BY id LIMIT ?1"
                                           : " ORDER BY id DESC LIMIT ?1";
  Stmt st(db_, sql.c_str());
  if (!st.prepared()) return Err("cannot prepare history query");
  st.Bind(1, limit);
  if (after) st.Bind(2, *after);
  if (app) st.Bind(3, *app);
  std::vector<Event> out;
  if (!st.ReadAll(ReadEventRow, &out)) return Err("cannot read history");
  return out;
}

Result<std::vector<Event>> Ledger::History(
    const std::optional<std::string>& app, int64_t limit) {
  ASSIGN_OR_RETURN(
      std::vector<Event> newest,
      ReadEvents(app, std::nullopt, limit, EventOrder::kNewestFirst));
  std::reverse(newest.begin(), newest.end());
  return newest;
}

Result<std::vector<Event>> Ledger::EventsAfter(
    const std::optional<std::string>& app, int64_t after, int64_t limit) {
  return ReadEvents(app, after, limit, EventOrder::kOldestFirst);
}

Result<int64_t> Ledger::CursorBeforeNewest(
    const std::optional<std::string>& app, int64_t count) {
  std::string sql = "SELECT id FROM events";
  if (app) sql += " WHERE app=?2";
  sql += " ORDER BY id DESC LIMIT 1 OFFSET ?1";
  Stmt st(db_, sql.c_str());
  if (!st.prepared()) return Err("cannot prepare history query");
  st.Bind(1, count);
  if (app) st.Bind(2, *app);
  int rc = st.Step();
  if (rc == SQLITE_ROW) return st.Int(0);
  if (rc != SQLITE_DONE) return Err("cannot read history");
  return int64_t{0};
}

}  // namespace relsupd
