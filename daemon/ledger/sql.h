#pragma once
// Internal to daemon/ledger: the SQLite statement and transaction wrappers
// and the event row layout shared by the ledger's files. Not for other
// modules (the ledger is the only sqlite3.h user). Loop thread, or the
// thread that owns a read-only Ledger (VerifyHistoryOf).

#include <sqlite3.h>

#include <concepts>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/ledger/ledger.h"

namespace relsupd {

inline constexpr char kGenesisHash[] =
    "0000000000000000000000000000000000000000000000000000000000000000";

// One prepared statement, finalized with its owner.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) {
    rc_ = sqlite3_prepare_v3(db, sql, -1, 0, &s_, nullptr);
  }
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  bool prepared() const { return rc_ == SQLITE_OK; }
  Stmt& Bind(int i, int64_t v) {
    sqlite3_bind_int64(s_, i, v);
    return *this;
  }
  Stmt& Bind(int i, std::string_view v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()),
                      SQLITE_TRANSIENT);
    return *this;
  }
  // SQLITE_ROW, SQLITE_DONE or an error code.
  int Step() { return sqlite3_step(s_); }
  int64_t Int(int col) { return sqlite3_column_int64(s_, col); }
  std::string Text(int col) {
    const unsigned char* t = sqlite3_column_text(s_, col);
    return t ? std::string(reinterpret_cast<const char*>(t),
                           static_cast<size_t>(sqlite3_column_bytes(s_, col)))
             : std::string();
  }
  // Reads the current row's columns, in order, into `out...`: a string
  // takes Text(), an integer (or bool) Int().
  template <typename... T>
  void Columns(T&... out) {
    int col = 0;
    (Column(col++, out), ...);
  }
  // Steps to the end, appending each row as `read` makes it to `out`; false
  // when a step fails before the end.
  template <typename Row>
  bool ReadAll(Row (*read)(Stmt&), std::vector<Row>* out) {
    int rc;
    while ((rc = Step()) == SQLITE_ROW) out->push_back(read(*this));
    return rc == SQLITE_DONE;
  }

 private:
  void Column(int col, std::string& out) { out = Text(col); }
  template <std::integral I>
  void Column(int col, I& out) {
    out = static_cast<I>(Int(col));
  }

  sqlite3_stmt* s_ = nullptr;
  int rc_;
};

// A BEGIN IMMEDIATE transaction, rolled back unless committed.
class Txn {
 public:
  explicit Txn(Ledger* l) : l_(l) {}
  Status Begin() {
    RETURN_IF_ERROR(l_->Exec("BEGIN IMMEDIATE"));
    open_ = true;
    return Status::Ok();
  }
  Status Commit() {
    open_ = false;
    Status s = l_->Exec("COMMIT");
    l_->EndTxn(s.ok());
    return s;
  }
  ~Txn() {
    if (!open_) return;
    l_->Exec("ROLLBACK").IgnoreError();
    l_->EndTxn(false);
  }

 private:
  Ledger* l_;
  bool open_ = false;
};

inline constexpr char kEventColumns[] =
    "SELECT id, time, app, kind, release, actor_uid, actor_name, detail, "
    "prev_hash, hash FROM events";

inline Event ReadEventRow(Stmt& st) {
  Event e;
  st.Columns(e.id, e.time_ms, e.app, e.kind, e.release, e.actor_uid,
             e.actor_name, e.detail, e.prev_hash, e.hash);
  return e;
}

}  // namespace relsupd
