// The run stage's verbs: ps, scale, signal, restart, stop, start, logs,
// activate.
// stop, start and restart wait for the daemon's reply and meanwhile poll
// `ps` on a second connection to print progress (Progress).
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <deque>
#include <iostream>
#include <map>
#include <set>
#include <thread>

#include "cli/ctl.h"
#include "cli/ctl_stages.h"
#include "cli/follow.h"
#include "cli/ps_rows.h"
#include "cli/table.h"
#include "cli/terminal.h"
#include "daemon/base/clock.h"
#include "daemon/base/duration.h"
#include "daemon/protocol/methods.h"

namespace relsupd::cli {
namespace {

namespace method = rpc::method;

// The fields of a `ps` row the table shows, in the order the human form
// asks the daemon for them (param `columns`).
enum PsColumn {
  kPsApp, kPsProcess, kPsRelease, kPsActive, kPsState, kPsPid, kPsUid, kPsUptime,
  kPsMemory, kPsMemoryLimit, kPsMemoryLimitBy, kPsCpu, kPsRestarts, kPsLastExit,
  kPsStatus, kPsColumns
};
constexpr const char* kPsColumnNames[kPsColumns] = {
    "app", "process", "release", "active", "state", "pid", "uid", "uptime_ms",
    "memory_bytes", "memory_limit_bytes", "memory_limit_by", "cpu_percent",
    "restarts", "last_exit", "status"};

// A cell read without trusting the daemon's types: a number or the
// default, a boolean or the default.
int64_t IntOr(const PsCell& c, int64_t otherwise) {
  return c.kind == PsCell::Kind::kNumber ? c.integer : otherwise;
}
bool BoolOr(const PsCell& c, bool otherwise) {
  return c.kind == PsCell::Kind::kBool ? c.boolean : otherwise;
}
bool IsNull(const PsCell& c) { return c.kind == PsCell::Kind::kNull; }

// `value` with `digits` after the point, as printf("%.*f") prints it
// (std::to_chars is specified as printf in the C locale, and is a tenth
// of its cost: 200 cells of a ps of 100 took a tenth of the command).
std::string Fixed(double value, int digits) {
  char buf[400];  // DBL_MAX has 309 digits
  const auto r = std::to_chars(buf, buf + sizeof buf, value, std::chars_format::fixed, digits);
  return r.ec == std::errc() ? std::string(buf, r.ptr) : std::string("?");
}

// "12.3M", "1.2G", "512K": memory for a table cell.
std::string HumanBytes(double bytes) {
  static constexpr const char* kUnits[] = {"B", "K", "M", "G", "T"};
  int u = 0;
  while (bytes >= 1024 && u < 4) {
    bytes /= 1024;
    ++u;
  }
  return Fixed(bytes, bytes < 10 && u > 0 ? 1 : 0) + kUnits[u];
}

// MEM: "34M", "34M/64M" with a memory limit, "-" before the first sample.
std::string MemoryCell(const PsCell& used, const PsCell& limit) {
  if (used.kind != PsCell::Kind::kNumber) return "-";
  std::string cell = HumanBytes(used.number);
  if (!IsNull(limit))
    cell += "/" + HumanBytes(limit.kind == PsCell::Kind::kNumber ? limit.number : 0.0);
  return cell;
}

std::string CpuCell(const PsCell& cpu) {
  if (cpu.kind != PsCell::Kind::kNumber) return "-";
  return Fixed(cpu.number, 1);
}

// The table of `ps`, a row at a time. Add's `cell(column)` is the row's
// value of kPsColumnNames[column], null where the daemon gave none.
class PsTable {
 public:
  PsTable()
      : t_({"APP", "PROCESS", "RELEASE", "STATE", "PID", "UID", "UPTIME", "MEM", "CPU%",
            "RESTARTS", "LAST EXIT", "STATUS"}) {
    t_.Cuttable("STATUS");  // the app's own text
    t_.Cuttable("LAST EXIT");
  }

  template <typename Cell>
  void Add(Cell cell) {
    auto text = [&](PsColumn c) { return CellText(cell(c)); };
    if (!IsNull(cell(kPsMemoryLimitBy))) limit_by_.insert(text(kPsMemoryLimitBy));
    std::string release = text(kPsRelease);
    if (!BoolOr(cell(kPsActive), true)) release += " (old)";
    const int64_t pid = IntOr(cell(kPsPid), 0);
    const std::string_view last_exit = cell(kPsLastExit).text;
    const std::string_view status = cell(kPsStatus).text;
    std::vector<std::string> row = {
        text(kPsApp), text(kPsProcess), std::move(release), text(kPsState),
        pid > 0 ? std::to_string(pid) : "-",
        IntOr(cell(kPsUid), -1) >= 0 ? text(kPsUid) : "-",
        FormatElapsed(IntOr(cell(kPsUptime), 0)),
        MemoryCell(cell(kPsMemory), cell(kPsMemoryLimit)), CpuCell(cell(kPsCpu)),
        text(kPsRestarts), last_exit.empty() ? "-" : std::string(last_exit),
        // STATUS= is the app's own text: shown escaped on a terminal.
        status.empty() ? "-" : std::string(status)};
    for (std::string& c : row) c = ForStdout(c);
    t_.AddRow(std::move(row));
    ++rows_;
  }

  void Print() const {
    if (rows_ == 0) {
      std::cout << "No processes\n";
      return;
    }
    t_.Print(std::cout);
    // Which way `limits: memory` is in force (MEM shows USED/LIMIT).
    for (const std::string& by : limit_by_)
      std::cout << (by == "cgroup" ? "Memory limits: cgroup memory.max\n"
                                   : "Memory limits: an RSS watch every 2s (no cgroup memory "
                                     "controller)\n");
  }

 private:
  Table t_;
  std::set<std::string> limit_by_;
  size_t rows_ = 0;
};

// Fills a PsTable from the rows reply as ReadPsRowsResponse reads it.
class PsTableSink final : public PsRowSink {
 public:
  explicit PsTableSink(PsTable* table) : table_(table) {}
  void Columns(const std::vector<std::string>& names) override {
    for (size_t c = 0; c < kPsColumns; ++c) {
      index_[c] = SIZE_MAX;
      for (size_t k = 0; k < names.size(); ++k)
        if (names[k] == kPsColumnNames[c]) index_[c] = k;
    }
  }
  void Row(const std::vector<PsCell>& cells) override {
    static const PsCell kNull;
    table_->Add([&](PsColumn c) -> const PsCell& {
      return index_[c] < cells.size() ? cells[index_[c]] : kNull;
    });
  }

 private:
  PsTable* table_;
  size_t index_[kPsColumns] = {};
};

// `ps`'s table from the reply without `columns` (an array of objects).
void PrintPs(const rpc::Json& rows) {
  PsTable table;
  if (rows.is_array()) {
    for (const rpc::Json& row : rows) {
      PsRows cells;
      for (const char* name : kPsColumnNames) cells.AddCell(Field(row, name));
      table.Add([&cells](PsColumn c) -> const PsCell& { return cells.cells[c]; });
    }
  }
  table.Print();
}

// The same from a DOM of the reply to `columns` (one the reader does not
// take: a number beyond int64, a row of another length), read by the
// names in its columns (any order; a name missing or a short row gives
// null).
void PrintPsRows(const rpc::Json& reply) {
  std::vector<std::string> names;
  const rpc::Json& columns = Field(reply, "columns");
  if (columns.is_array())
    for (const rpc::Json& n : columns) names.push_back(n.is_string() ? n.get<std::string>() : "");
  PsTable table;
  PsTableSink sink(&table);
  sink.Columns(names);
  const rpc::Json& rows = Field(reply, "rows");
  if (!names.empty() && rows.is_array()) {
    for (const rpc::Json& row : rows) {
      PsRows cells;
      for (size_t k = 0; k < names.size(); ++k)
        cells.AddCell(row.is_array() && k < row.size() ? row[k] : rpc::Json());
      sink.Row(cells.cells);
    }
  }
  table.Print();
}

// `ctl ps` in human form: asks only for the table's fields, as rows of
// arrays (param `columns`, a fraction of the full reply to send), and
// reads the reply straight into cells (ReadPsRowsResponse). A daemon older
// than `columns` refuses the param: the same call again without it. A
// reply that is an array (a daemon that ignored it) is read as such.
void RunPs(CtlContext* ctx, rpc::Json params) {
  auto client = Client::Connect(ctx->socket);
  if (!client.ok()) return ctx->Fail(client.status());
  rpc::Json with = params;
  rpc::Json& names = with["columns"] = rpc::Json::array();
  for (const char* name : kPsColumnNames) names.push_back(name);
  int64_t id = 0;
  auto line = client->CallForLine(method::kPs, std::move(with), &id);
  if (!line.ok()) return ctx->Fail(line.status());
  {
    PsTable table;
    PsTableSink sink(&table);
    if (ReadPsRowsResponse(*line, id, &sink)) {
      table.Print();
      ctx->exit_code = kExitOk;
      return;
    }
  }
  auto result = client->ParseResponse(*line, id);
  if (!result.ok() && result.status().code() == StatusCode::kInvalidArgument &&
      result.status().message() == "unknown param 'columns'")
    result = client->Call(method::kPs, std::move(params));
  if (!result.ok()) return ctx->Fail(result.status());
  if (result->is_array())
    PrintPs(*result);
  else
    PrintPsRows(*result);
  ctx->exit_code = kExitOk;
}

// "web=3" -> {"web", 3}
Result<std::pair<std::string, int>> ParseScaleArg(const std::string& arg) {
  size_t eq = arg.find('=');
  if (eq == std::string::npos || eq == 0)
    return InvalidArgument("'" + arg + "' is not TYPE=N (e.g. web=3)");
  std::string n = arg.substr(eq + 1);
  char* end = nullptr;
  long v = std::strtol(n.c_str(), &end, 10);
  if (n.empty() || *end != '\0' || v < 0 || v > 10000)
    return InvalidArgument("'" + arg + "': the count must be 0..10000");
  return std::make_pair(arg.substr(0, eq), static_cast<int>(v));
}

void PrintLogRecord(const rpc::Json& r, bool with_app) {
  std::string line = Text(r, "time") + " ";
  if (with_app) line += Text(r, "app") + " ";
  line += Text(r, "process") + "[" + Text(r, "release") + "]";
  if (Text(r, "stream") == "err") line += " err";
  line += ": " + Text(r, "text");
  if (r.value("partial", false)) line += " \\";
  // The text is the app's output: escaped on a terminal.
  std::cout << ForStdout(line) << '\n';
}

struct LogsArgs {
  std::string app;  // "": every app
  bool follow = false;
  int64_t lines = 100;
  std::string process;
  std::string stream;
  std::string release;
  std::string since;
  std::string grep;
};

// The newest `lines` records of one app that match `p` (its filter), oldest
// first. The daemon answers a page at a time (at most 100 records, and a
// bounded scan): pages are gathered back (`before_seq`) until there are
// enough or none is left. `*cursor`: the app's last seq when the first page
// was read, where a follow goes on.
Result<std::vector<rpc::Json>> TailOf(Client& client, rpc::Json p, int64_t lines,
                                      uint64_t* cursor) {
  std::deque<rpc::Json> pages;  // newest page first
  int64_t got = 0;
  bool first = true;
  p["lines"] = lines;
  while (true) {
    ASSIGN_OR_RETURN(rpc::Json r, client.Call(method::kLogs, p));
    if (first) *cursor = r.value("last_seq", uint64_t{0});
    first = false;
    const rpc::Json& records = Field(r, "records");
    got += static_cast<int64_t>(records.size());
    if (!records.empty()) pages.push_front(records);
    const uint64_t next = r.value("next_before_seq", uint64_t{0});
    if (!r.value("more", false) || got >= lines || next == 0) break;
    p["lines"] = lines - got;
    p["before_seq"] = next;
  }
  std::vector<rpc::Json> out;
  for (const auto& page : pages)
    for (const auto& rec : page) out.push_back(rec);
  // Pages that met in the middle of a scan may hold more than asked.
  if (static_cast<int64_t>(out.size()) > lines)
    out.erase(out.begin(), out.end() - lines);
  return out;
}

// `logs [APP]`: the newest -n lines (of every app, merged by time, when APP
// is left out), then with -f whatever comes next, each ask waiting in the
// daemon until there is something (see follow.h).
int FollowLogs(CtlContext* ctx, const LogsArgs& a) {
  auto client = Client::Connect(ctx->socket);
  if (!client.ok()) {
    ctx->Fail(client.status());
    return ctx->exit_code;
  }
  rpc::Json p = rpc::Json::object();
  if (!a.process.empty()) p["process"] = a.process;
  if (!a.stream.empty()) p["stream"] = a.stream;
  if (!a.release.empty()) p["release"] = a.release;
  if (!a.grep.empty()) p["grep"] = a.grep;
  if (!a.since.empty()) {
    auto since = ParseSince(a.since, RealClock().WallMs());
    if (!since.ok()) {
      ctx->Fail(since.status().WithContext("--since"), kExitUsage);
      return ctx->exit_code;
    }
    p["since_us"] = std::max<int64_t>(0, *since) * 1000;
  }
  const bool all = a.app.empty();
  auto print = [ctx, all](const rpc::Json& rec) {
    if (ctx->json)
      std::cout << rec.dump() << '\n';
    else
      PrintLogRecord(rec, all);
  };
  // The tail: one app's, or each app's, merged by time.
  std::vector<std::string> apps;
  if (!all) {
    apps.push_back(a.app);
  } else {
    auto list = client->Call(method::kAppList, rpc::Json::object());
    if (!list.ok()) {
      ctx->Fail(list.status());
      return ctx->exit_code;
    }
    if (list->is_array())
      for (const auto& spec : *list) apps.push_back(Text(spec, "name"));
  }
  std::map<std::string, uint64_t> cursors;
  std::vector<rpc::Json> tail;
  for (const std::string& app : apps) {
    rpc::Json q = p;
    q["app"] = app;
    auto records = TailOf(*client, q, a.lines, &cursors[app]);
    if (!records.ok()) {
      ctx->Fail(records.status());
      return ctx->exit_code;
    }
    for (auto& rec : *records) tail.push_back(std::move(rec));
  }
  if (all) {
    // RFC 3339 UTC with fixed digits: text order is time order.
    std::stable_sort(tail.begin(), tail.end(), [](const rpc::Json& x, const rpc::Json& y) {
      return Text(x, "time") < Text(y, "time");
    });
    if (static_cast<int64_t>(tail.size()) > a.lines)
      tail.erase(tail.begin(), tail.end() - a.lines);
  }
  for (const auto& rec : tail) print(rec);
  std::cout.flush();
  if (!a.follow) return kExitOk;
  p["wait"] = true;
  if (all) p.erase("release");
  auto lost = [&cursors, all] {
    if (!all) return "following after seq " + std::to_string(cursors.begin()->second);
    return std::string("following every app after the last lines printed");
  };
  auto ask = [&](Client& c) {
    rpc::Json q = p;
    if (all) {
      q["after"] = cursors;
    } else {
      q["app"] = a.app;
      q["after_seq"] = cursors[a.app];
    }
    return c.Call(method::kLogs, q);
  };
  auto take = [&](const rpc::Json& r) {
    const std::map<std::string, uint64_t> before = cursors;
    // Records a slow follower never saw (rotated out meanwhile) are said,
    // on stderr, where they would have been.
    const rpc::Json& missed = Field(r, "missed");
    if (missed.is_object()) {
      std::cout.flush();
      for (const auto& [app, n] : missed.items())
        if (n.is_number_unsigned())
          std::cerr << "relsupd: " << n.get<uint64_t>() << " records of '" << app
                    << "' (of every process and stream) were rotated out before they could "
                       "be shown\n";
    }
    for (const auto& rec : Field(r, "records")) print(rec);
    if (all) {
      const rpc::Json& moved = Field(r, "cursors");
      if (moved.is_object())
        for (const auto& [app, seq] : moved.items())
          if (seq.is_number_unsigned()) cursors[app] = seq.get<uint64_t>();
    } else {
      cursors[a.app] = r.value("cursor", cursors[a.app]);
    }
    // "more" with nothing new and no step forward would ask again at once,
    // forever: wait a little first.
    if (Field(r, "records").empty() && cursors == before && r.value("more", false))
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    return true;
  };
  return FollowForever(ctx, std::move(client), all ? "every app" : a.app, lost, ask, take);
}

// What the instances of an app do while a verb waits for them (restart,
// start, stop, a switch), from `ps` rows: each state change, and once per
// stop that has waited more than a second, how long until SIGKILL.
class Progress {
 public:
  // `with_release`: name instances "v2 web.1" (a switch has two releases).
  explicit Progress(bool with_release) : with_release_(with_release) {}

  // Takes the rows as they are, printing nothing (before the call).
  void Baseline(const rpc::Json& rows) {
    for (const auto& p : rows) seen_[Key(p)] = Seen(p);
  }
  // Prints the rows whose state (or process) changed since the last call.
  void States(const rpc::Json& rows, const std::string& indent = "  ") {
    for (const auto& p : rows) {
      std::string key = Key(p);
      std::string state = Text(p, "state");
      if (seen_[key] == Seen(p)) continue;
      seen_[key] = Seen(p);
      std::cout << indent << key << " " << state;
      if (Field(p, "pid").is_number_integer() && Field(p, "pid").get<int64_t>() > 0)
        std::cout << " (pid " << Text(p, "pid") << ")";
      std::cout << '\n';
    }
    std::cout.flush();
  }
  // "waiting for web.2 to stop (up to 9s more), then SIGKILL", once per
  // process and stop, when it has not stopped within a second.
  void StopWaits(const rpc::Json& rows) {
    for (const auto& p : rows) {
      auto number = [&p](std::string_view key) {
        const rpc::Json& v = Field(p, key);
        return v.is_number_integer() ? v.get<int64_t>() : int64_t{0};
      };
      int64_t waited = number("stopping_ms");
      int64_t timeout = number("stop_timeout_ms");
      int64_t pid = number("pid");
      if (timeout <= 0 || waited < kPromptMs || pid <= 0) continue;
      if (!warned_.insert(Key(p) + " " + std::to_string(pid)).second) continue;
      int64_t left = std::max<int64_t>(timeout - waited, 0);
      std::cout << "  waiting for " << Key(p) << " (pid " << pid << ") to stop (up to "
                << FormatDurationMs((left + 999) / 1000 * 1000) << " more of stop_timeout "
                << FormatDurationMs(timeout) << "), then SIGKILL\n";
      std::cout.flush();
    }
  }

 private:
  static constexpr int64_t kPromptMs = 1000;
  std::string Key(const rpc::Json& p) const {
    return with_release_ ? Text(p, "release") + " " + Text(p, "process") : Text(p, "process");
  }
  // A restarted instance may be ready again before a poll sees it stop:
  // its new pid tells.
  static std::string Seen(const rpc::Json& p) {
    return Text(p, "state") + " " + Text(p, "pid");
  }
  bool with_release_;
  std::map<std::string, std::string> seen_;  // key -> Seen()
  std::set<std::string> warned_;
};

enum class ShowStates { kNo, kYes };

// Calls `method` (which replies when its work is done) and, unless --json,
// polls `ps APP` on a second connection meanwhile to print Progress.
Result<rpc::Json> CallShowingProgress(CtlContext* ctx, std::string_view method,
                                      rpc::Json params, const std::string& app,
                                      ShowStates show) {
  auto client = Client::Connect(ctx->socket);
  if (!client.ok()) return client.status();
  if (ctx->json) return client->Call(method, std::move(params));
  auto watcher = Client::Connect(ctx->socket);
  Progress progress(/*with_release=*/false);
  if (watcher.ok()) {
    if (auto rows = watcher->Call(method::kPs, {{"app", app}}); rows.ok())
      progress.Baseline(*rows);
  }
  auto poll = [&] {
    if (!watcher.ok()) return;
    auto rows = watcher->Call(method::kPs, {{"app", app}});
    if (!rows.ok()) return;  // the answer to the call itself says what went wrong
    if (show == ShowStates::kYes) progress.States(*rows);
    progress.StopWaits(*rows);
  };
  auto r = client->CallWithTick(method, std::move(params), poll);
  // How it ended, when that came faster than a poll.
  if (r.ok() && show == ShowStates::kYes) poll();
  return r;
}

// Prints "`done` APP`tail`" ("Stopped shop") for a verb's answer.
std::function<void(const rpc::Json&)> SayDone(std::string done, std::string tail = "") {
  return [done = std::move(done), tail = std::move(tail)](const rpc::Json& r) {
    std::cout << done << ' ' << Text(r, "app") << tail << '\n';
  };
}

// The stop, start and restart verbs: the call with progress, then the
// result (--json: as is).
void RunWithProgress(CtlContext* ctx, std::string_view method, rpc::Json params,
                     const std::string& app, ShowStates show,
                     const std::function<void(const rpc::Json&)>& human) {
  auto r = CallShowingProgress(ctx, method, std::move(params), app, show);
  if (!r.ok()) return ctx->Fail(r.status());
  ctx->exit_code = kExitOk;
  if (ctx->json)
    std::cout << r->dump(2) << '\n';
  else
    human(*r);
}

// A release's type of more than this many instances is shown in a
// switch's progress as one line ("v2 worker: 40 ready, 60 starting")
// whenever its counts change, and a line per instance only for one that
// exits, backs off or fails.
constexpr int kSummaryAbove = 10;

// "40 ready, 60 starting": the states of `counts` in the order an instance
// goes through them.
std::string CountsText(const std::map<std::string, int>& counts) {
  static const char* const kOrder[] = {"ready",   "running", "starting", "stopping",
                                       "stopped", "backoff", "exited",   "failed"};
  std::string out;
  auto add = [&out](const std::string& state, int n) {
    out += (out.empty() ? "" : ", ") + std::to_string(n) + " " + state;
  };
  for (const char* s : kOrder)
    if (auto it = counts.find(s); it != counts.end()) add(s, it->second);
  for (const auto& [state, n] : counts)
    if (std::find(std::begin(kOrder), std::end(kOrder), state) == std::end(kOrder)) add(state, n);
  return out;
}

// Follows switch `id` of `a.app` with `status` polls, printing each
// instance as it changes (or, for many, each release and type: see
// kSummaryAbove), until it ends.
SwitchResult FollowSwitch(CtlContext* ctx, Client& client, const SwitchArgs& a, int64_t id) {
  std::map<std::string, std::string> seen;       // "v2 web.1" -> state
  std::map<std::string, std::string> summaries;  // "v2 worker" -> its CountsText
  Progress stops(/*with_release=*/true);
  bool phase_shown = false;
  while (true) {
    auto st = client.Call(method::kStatus, {{"app", a.app}});
    if (!st.ok()) return {st.status(), false, nullptr};
    if (!ctx->json && !phase_shown && Field(*st, "switch").is_object() &&
        Text(Field(*st, "switch"), "phase") == "release-phase") {
      phase_shown = true;
      std::cout << a.prefix << "  release phase of " << Text(Field(*st, "switch"), "to")
                << " running (output: ctl logs " << a.app << " --process release)\n";
    }
    if (!ctx->json) {
      const rpc::Json& rows = Field(*st, "processes");
      auto group_of = [](const rpc::Json& p) {  // "v2 worker"
        return Text(p, "release") + " " + Text(p, "type");
      };
      std::map<std::string, int> sizes;
      for (const auto& p : rows) ++sizes[group_of(p)];
      std::map<std::string, std::map<std::string, int>> counts;  // "v2 worker" -> state -> n
      for (const auto& p : rows) {
        std::string key = Text(p, "release") + " " + Text(p, "process");
        std::string state = Text(p, "state");
        if (const std::string group = group_of(p); sizes[group] > kSummaryAbove) {
          ++counts[group][state];
          // What went wrong is still told instance by instance.
          if (state != "backoff" && state != "exited" && state != "failed") {
            seen[key] = state;
            continue;
          }
        }
        if (seen[key] == state) continue;
        seen[key] = state;
        std::cout << "  " << key << " " << state;
        if (p.value("pid", 0) > 0) std::cout << " (pid " << p["pid"].get<int64_t>() << ")";
        std::cout << '\n';
      }
      for (const auto& [group, by_state] : counts) {
        const std::string text = CountsText(by_state);
        if (summaries[group] == text) continue;
        summaries[group] = text;
        std::cout << "  " << group << ": " << text << '\n';
      }
      stops.StopWaits(Field(*st, "processes"));
      std::cout.flush();
    }
    const auto& last = Field(*st, "last_switch");
    bool running = Field(*st, "switch").is_object() && Field(*st, "switch").value("id", 0) == id;
    if (!running && last.is_object() && last.value("id", 0) == id) {
      if (!last.value("ok", false))
        return {FailedPrecondition(Text(last, "message")), true, last};
      if (!ctx->json && !Text(last, "note").empty()) {
        // Nothing was switched: the release was live already.
        std::cout << a.prefix << Text(last, "note") << '\n';
      } else if (!ctx->json) {
        std::cout << a.prefix << Text(last, "live") << " of " << a.app << " is live\n";
        if (!Text(last, "message").empty()) std::cout << "Warning: " << Text(last, "message") << '\n';
      }
      return {Status::Ok(), false, last};
    }
    if (!running)
      return {FailedPrecondition("switch " + std::to_string(id) + " of " + a.app +
                                 " is no longer known to the daemon"),
              true, nullptr};
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

}  // namespace

SwitchResult StartSwitch(CtlContext* ctx, Client& client, const SwitchArgs& a, bool rollback) {
  rpc::Json p = {{"app", a.app}};
  if (!a.release.empty()) p["release"] = a.release;
  if (!a.strategy.empty()) p["strategy"] = a.strategy;
  if (a.rerun_release_phase) p["rerun_release_phase"] = true;
  auto r = client.Call(rollback ? method::kRollback : method::kActivate, p);
  if (!r.ok()) return {r.status(), false, nullptr};
  int64_t id = r->value("switch", 0);
  const char* verb = rollback ? "Rolling back " : "Activating ";
  // The release was live already: no switch, the note says what was done.
  const bool live_already = !Text(*r, "note").empty();
  if (a.no_wait) {
    if (!ctx->json && live_already)
      std::cout << a.prefix << Text(*r, "note") << '\n';
    else if (!ctx->json)
      std::cout << a.prefix << verb << a.app << " to " << Text(*r, "release") << " (switch "
                << id << ")\n";
    return {Status::Ok(), false, *r};
  }
  if (!ctx->json && !live_already)
    std::cout << a.prefix << verb << a.app << " to " << Text(*r, "release") << '\n';
  return FollowSwitch(ctx, client, a, id);
}

namespace {

void RunSwitch(CtlContext* ctx, const SwitchArgs& a, bool rollback) {
  auto client = Client::Connect(ctx->socket);
  if (!client.ok()) return ctx->Fail(client.status());
  SwitchResult r = StartSwitch(ctx, *client, a, rollback);
  if (ctx->json && !r.outcome.is_null()) std::cout << r.outcome.dump(2) << '\n';
  if (r.status.ok()) {
    ctx->exit_code = kExitOk;
  } else if (r.switch_failed) {
    // Under --json the outcome above already carries the failure.
    if (!ctx->json) PrintError(std::cerr, r.status.message());
    ctx->exit_code = kExitRefused;
  } else {
    ctx->Fail(r.status);
  }
}

void PrintStatus(const rpc::Json& s) {
  std::cout << Text(s, "app") << ": active " << (Text(s, "active").empty() ? "-" : Text(s, "active"))
            << ", previous " << (Text(s, "previous").empty() ? "-" : Text(s, "previous"));
  if (s.value("stopped", false)) std::cout << ", stopped by hand";
  std::cout << '\n';
  if (Field(s, "switch").is_object()) {
    const auto& w = Field(s, "switch");
    std::cout << "  switching: " << Text(w, "kind") << " " << Text(w, "from") << " -> "
              << Text(w, "to") << " (" << Text(w, "strategy") << ", " << Text(w, "phase")
              << ", by " << Text(w, "actor") << ")\n";
  }
  if (Field(s, "last_switch").is_object() && !Field(s, "last_switch").value("ok", true))
    std::cout << "  last switch failed: " << Text(Field(s, "last_switch"), "message") << '\n';
  std::map<std::string, std::map<std::string, int>> by_type;  // "v2 web" -> state -> n
  const rpc::Json& processes = Field(s, "processes");
  if (processes.is_object()) {
    // The rows shape (asked with `columns`): cells found by the names in
    // its columns.
    static const rpc::Json kNull;
    const rpc::Json& names = Field(processes, "columns");
    auto index = [&names](std::string_view name) {
      size_t k = SIZE_MAX;
      if (names.is_array())
        for (size_t i = 0; i < names.size(); ++i)
          if (names[i].is_string() && names[i].get_ref<const std::string&>() == name) k = i;
      return k;
    };
    const size_t release = index("release"), type = index("type"), state = index("state");
    auto cell = [](const rpc::Json& row, size_t k) -> const rpc::Json& {
      return row.is_array() && k < row.size() ? row[k] : kNull;
    };
    const rpc::Json& rows = Field(processes, "rows");
    if (rows.is_array())
      for (const rpc::Json& row : rows)
        ++by_type[Text(cell(row, release)) + " " + Text(cell(row, type))]
                 [Text(cell(row, state))];
  } else if (processes.is_array()) {
    for (const auto& p : processes)
      ++by_type[Text(p, "release") + " " + Text(p, "type")][Text(p, "state")];
  }
  for (const auto& [type, states] : by_type)
    std::cout << "  " << type << ": " << CountsText(states) << '\n';
}

// What activate and rollback share after their release argument: the
// --strategy and --no-wait options and the switch they run.
void AddSwitchOptions(CLI::App* verb, CtlContext* ctx, std::shared_ptr<SwitchArgs> args,
                      const char* strategy_help, bool rollback) {
  verb->add_option("--strategy", args->strategy, strategy_help)
      ->check(CLI::IsMember({"start-first", "stop-first"}));
  verb->add_flag("--no-wait", args->no_wait, "Return once the switch began");
  verb->callback([ctx, args, rollback] { RunSwitch(ctx, *args, rollback); });
}

void AddSwitchVerbs(CLI::App& ctl, CtlContext* ctx) {
  auto act = std::make_shared<SwitchArgs>();
  CLI::App* activate = AddAppCommand(
      ctl, "activate",
      "Put a release live: verify it, switch apps/APP/current, start its processes, stop the "
      "old ones; follows progress and exits 0 only when the release is live (one live already: "
      "exit 0, nothing to do, its failed instances started again); a failure prints why and "
      "whether the release gone back to is ready",
      &act->app);
  activate->add_option("RELEASE", act->release, "Release, e.g. v3")->required();
  AddSwitchOptions(activate, ctx, act,
                   "start-first (new ready before old stop; a type that binds $PORT "
                   "itself needs a held socket) or stop-first; default: the app's",
                   /*rollback=*/false);
  activate->add_flag(
      "--rerun-release-phase", act->rerun_release_phase,
      "Run the release's `release:` command again even though it succeeded "
      "before (it runs by itself only until it succeeds once)");

  auto rb = std::make_shared<SwitchArgs>();
  CLI::App* rollback = AddAppCommand(
      ctl, "rollback",
      "Activate the release that was live before the current one (or --to vN); a new event, "
      "never an edit",
      &rb->app);
  rollback->add_option("--to", rb->release, "Roll back to this release instead");
  AddSwitchOptions(rollback, ctx, rb, "start-first or stop-first", /*rollback=*/true);
}

}  // namespace

void AddPsVerb(CLI::App& ctl, CtlContext* ctx) {
  auto app = std::make_shared<std::string>();
  CLI::App* ps = ctl.add_subcommand("ps", "List running processes: state, pid, uptime, restarts");
  ps->add_option("APP", *app, "Only this app's processes");
  auto all = std::make_shared<bool>(false);
  ps->add_flag("--all", *all, "Also list running one-off processes (`ctl run`, type run)");
  ps->callback([ctx, app, all] {
    rpc::Json p = rpc::Json::object();
    if (!app->empty()) p["app"] = *app;
    if (*all) p["all"] = true;
    // --json prints the reply as it always was: every field, objects.
    if (ctx->json)
      ctx->CallAndPrint(method::kPs, p, PrintPs);
    else
      RunPs(ctx, std::move(p));
  });
}

void AddStatusVerb(CLI::App& ctl, CtlContext* ctx) {
  auto status_app = std::make_shared<std::string>();
  CLI::App* status = ctl.add_subcommand(
      "status", "Active and previous release, a switch in progress, instances per type");
  status->add_option("APP", *status_app, "Only this app");
  status->callback([ctx, status_app] {
    rpc::Json p = rpc::Json::object();
    if (!status_app->empty()) p["app"] = *status_app;
    auto print = [](const rpc::Json& r) {
      if (r.is_array()) {
        for (const auto& s : r) PrintStatus(s);
        if (r.empty()) std::cout << "No apps\n";
      } else {
        PrintStatus(r);
      }
    };
    // --json prints the reply as it always was: the processes as objects.
    if (ctx->json) {
      ctx->CallAndPrint(method::kStatus, p, print);
      return;
    }
    // The table counts states per type: only those three fields of each
    // process, as rows (param `columns`, as ps's), not every field of
    // each (36 KB for 100 instances). A daemon older than the param
    // refuses it: the same call again without it.
    auto client = Client::Connect(ctx->socket);
    if (!client.ok()) return ctx->Fail(client.status());
    rpc::Json with = p;
    with["columns"] = {"release", "type", "state"};
    auto result = client->Call(method::kStatus, std::move(with));
    if (!result.ok() && result.status().code() == StatusCode::kInvalidArgument &&
        result.status().message() == "unknown param 'columns'")
      result = client->Call(method::kStatus, std::move(p));
    if (!result.ok()) return ctx->Fail(result.status());
    print(*result);
    ctx->exit_code = kExitOk;
  });
}

void AddProcessVerbs(CLI::App& ctl, CtlContext* ctx) {
  auto scale_app = std::make_shared<std::string>();
  auto scale_args = std::make_shared<std::vector<std::string>>();
  CLI::App* scale = AddAppCommand(
      ctl, "scale", "Set how many instances of each process type run (recorded; survives restarts)",
      scale_app.get());
  scale->add_option("TYPE=N", *scale_args, "Process type and count, e.g. web=3 worker=1")
      ->required();
  scale->callback([ctx, scale_app, scale_args] {
    rpc::Json counts = rpc::Json::object();
    for (const auto& a : *scale_args) {
      auto parsed = ParseScaleArg(a);
      if (!parsed.ok()) return ctx->Fail(parsed.status(), kExitUsage);
      counts[parsed->first] = parsed->second;
    }
    ctx->CallAndPrint(method::kScale, {{"app", *scale_app}, {"scale", counts}},
                      [](const rpc::Json& r) {
                        std::string s;
                        for (const auto& [k, v] : Field(r, "scale").items())
                          s += (s.empty() ? "" : " ") + k + "=" + Text(v);
                        std::cout << "Scaled " << Text(r, "app") << ": " << s << '\n';
                        for (const auto& w : Field(r, "warnings"))
                          if (w.is_string()) std::cout << "Warning: " << w.get<std::string>() << '\n';
                      });
  });

  auto signal_app = std::make_shared<std::string>();
  auto signal_args = std::make_shared<std::vector<std::string>>();
  CLI::App* signal = AddAppCommand(
      ctl, "signal",
      "Send a signal to the main process of an app's running instances (all, a type, or "
      "one instance); recorded in the history",
      signal_app.get());
  signal->add_option("SIGNAL", *signal_args,
                     "[TYPE|TYPE.N] SIGNAL: e.g. `web USR1`, `web.2 HUP`, `TERM`; a signal "
                     "by name (HUP, SIGHUP, hup) or number")
      ->required()
      ->expected(1, 2);
  signal->callback([ctx, signal_app, signal_args] {
    rpc::Json p = {{"app", *signal_app}, {"signal", signal_args->back()}};
    if (signal_args->size() == 2) p["process"] = signal_args->front();
    ctx->CallAndPrint(method::kSignal, p, [](const rpc::Json& r) {
      std::string to;
      for (const auto& s : Field(r, "processes"))
        to += (to.empty() ? "" : ", ") + Text(s, "process") + " (pid " + Text(s, "pid") + ")";
      std::cout << "Sent " << Text(r, "signal") << " to " << Text(r, "app") << " " << to << '\n';
    });
  });

  auto restart_app = std::make_shared<std::string>();
  auto restart_type = std::make_shared<std::string>();
  CLI::App* restart = AddAppCommand(
      ctl, "restart",
      "Restart an app's processes one at a time, each waiting for the last to be ready; "
      "prints each as it goes",
      restart_app.get());
  restart->add_option("TYPE", *restart_type, "Only this process type");
  restart->callback([ctx, restart_app, restart_type] {
    rpc::Json p = {{"app", *restart_app}};
    if (!restart_type->empty()) p["type"] = *restart_type;
    RunWithProgress(ctx, method::kRestart, p, *restart_app, ShowStates::kYes,
                    SayDone("Restarted"));
  });

  auto stop_app = std::make_shared<std::string>();
  CLI::App* stop = AddAppCommand(
      ctl, "stop",
      "Stop every process of an app (recorded: it stays stopped across daemon restarts); "
      "says which it waits for, past a second, until stop_timeout and SIGKILL",
      stop_app.get());
  stop->callback([ctx, stop_app] {
    RunWithProgress(ctx, method::kStop, {{"app", *stop_app}}, *stop_app, ShowStates::kNo,
                    SayDone("Stopped"));
  });

  auto start_app = std::make_shared<std::string>();
  auto start_no_wait = std::make_shared<bool>(false);
  CLI::App* start = AddAppCommand(
      ctl, "start",
      "Start an app's active release again (failed processes too); waits until every "
      "instance is ready and exits 1 naming those that are not (by the app's deadline, "
      "or failing)",
      start_app.get());
  start->add_flag("--no-wait", *start_no_wait, "Return once the processes were started");
  start->callback([ctx, start_app, start_no_wait] {
    rpc::Json p = {{"app", *start_app}, {"wait", !*start_no_wait}};
    RunWithProgress(ctx, method::kStart, p, *start_app,
                    *start_no_wait ? ShowStates::kNo : ShowStates::kYes,
                    SayDone("Started", *start_no_wait ? "" : ": every process is ready"));
  });

  auto logs_args = std::make_shared<LogsArgs>();
  CLI::App* logs = ctl.add_subcommand(
      "logs", "Show the output of an app's processes, or of every app's when APP is left out");
  logs->add_option("APP", logs_args->app, "App (default: every app, merged by time)");
  logs->add_flag("-f,--follow", logs_args->follow,
                 "Keep printing new lines the moment they come (the daemon sends them); across "
                 "a restart of the daemon, wait for it and go on after the last line printed");
  logs->add_option("-n,--lines", logs_args->lines,
                   "Show the last N lines (default 100; of all apps together without APP)")
      ->check(CLI::Range(0, 100000));
  logs->add_option("--process", logs_args->process, "Only TYPE (web) or one instance (web.2)");
  logs->add_option("--stream", logs_args->stream, "Only out or err")
      ->check(CLI::IsMember({"out", "err"}));
  logs->add_option("--release", logs_args->release, "Only release RELEASE's lines, e.g. v3");
  logs->add_option("--since", logs_args->since,
                   "Only lines from then on: a duration back from now (30s, 5m, 1h30m) or a "
                   "time (2026-12-05T09:00:00Z; 2026-12-05 09:00 is local time)");
  logs->add_option("--grep", logs_args->grep,
                   "Only lines whose text matches REGEX somewhere (RE2 syntax, as grep -E; "
                   "(?i) at the start ignores case; a line over 16 KiB is matched piece by "
                   "piece)");
  SetVerbFooter(logs,
      "An unknown TYPE in --process is refused, naming the types the release has, when "
      "nothing matched and the release has no such type (with --release, that release; "
      "else the live one, nor any other kept release). "
      "--release needs an APP. With -f, lines rotated out before they could be shown are "
      "counted on stderr.");
  logs->callback([ctx, logs_args] {
    if (logs_args->app.empty() && !logs_args->release.empty())
      return ctx->Fail(InvalidArgument("--release needs an APP"), kExitUsage);
    ctx->exit_code = FollowLogs(ctx, *logs_args);
  });

  AddSwitchVerbs(ctl, ctx);
}

}  // namespace relsupd::cli
