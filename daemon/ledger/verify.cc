// Ledger: walking the hash chain to find edited or deleted events.
#include "daemon/ledger/ledger.h"
#include "daemon/ledger/sql.h"

namespace relsupd {

Result<VerifyReport> Ledger::VerifyHistoryOf(const std::string& path) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(
      path.c_str(), &db,
      SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE,
      nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    return Status(StatusCode::kIoError,
                  "cannot open ledger '" + path + "' to verify it: " + msg);
  }
  // The walk only reads; the writer on the loop never waits for it (WAL).
  sqlite3_busy_timeout(db, 5'000);
  Ledger reader(db, RealClock());  // closes `db`
  reader.path_ = path;
  return reader.VerifyHistory();
}

Result<VerifyReport> Ledger::VerifyHistory() {
  VerifyReport report;
  auto problem = [&report](std::string text) {
    if (report.problems.size() < VerifyReport::kMaxProblems)
      report.problems.push_back(std::move(text));
    else
      ++report.more_problems;
  };
  std::string walk = kEventColumns;  // appended: see ReadEvents
  walk += " ORDER BY id";
  Stmt st(db_, walk.c_str());
  if (!st.prepared()) return Err("cannot prepare history walk");
  std::string prev = kGenesisHash;
  int64_t expect_id = 1;
  int rc;
  while ((rc = st.Step()) == SQLITE_ROW) {
    Event e = ReadEventRow(st);
    ++report.checked;
    if (e.id != expect_id) {
      problem(e.id - expect_id == 1
                  ? "event " + std::to_string(expect_id) + " was deleted"
                  : "events " + std::to_string(expect_id) + " to " +
                        std::to_string(e.id - 1) + " were deleted");
    } else if (e.prev_hash != prev) {
      problem("event " + std::to_string(e.id) +
              " does not follow the event before it");
    }
    if (EventHash(e) != e.hash)
      problem("event " + std::to_string(e.id) +
              " was edited: its hash does not match its content");
    prev = e.hash;
    expect_id = e.id + 1;
  }
  if (rc != SQLITE_DONE) return Err("cannot walk history");
  Stmt seq(db_, "SELECT seq FROM sqlite_sequence WHERE name='events'");
  if (seq.prepared() && seq.Step() == SQLITE_ROW && seq.Int(0) >= expect_id) {
    problem(
        seq.Int(0) == expect_id
            ? "event " + std::to_string(expect_id) + " (the newest) was deleted"
            : "events " + std::to_string(expect_id) + " to " +
                  std::to_string(seq.Int(0)) + " (the newest) were deleted");
  }
  return report;
}

}  // namespace relsupd
