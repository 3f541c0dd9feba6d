#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "daemon/base/clock.h"
#include "daemon/base/fd.h"
#include "daemon/logs/line_splitter.h"
#include "daemon/logs/log_lines.h"
#include "daemon/logs/log_store.h"

#include <re2/re2.h>
#include "tests/support/fake_clock.h"
#include "tests/support/temp_dir.h"

namespace relsupd {
namespace {

namespace fs = std::filesystem;

using support::FakeClock;
using support::TempDir;

struct Piece {
  std::string text;
  bool partial;
  bool operator==(const Piece&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Piece& p) {
  return os << "{\"" << p.text << "\", " << (p.partial ? "partial" : "whole") << "}";
}

struct Collector {
  std::vector<Piece> pieces;
  LineSplitter::Emit emit() {
    return [this](std::string_view line, bool partial) {
      pieces.push_back({std::string(line), partial});
    };
  }
};

std::vector<Piece> SplitAll(std::string_view data, size_t max_line) {
  LineSplitter s(max_line);
  Collector c;
  s.Feed(data, c.emit());
  s.Flush(c.emit());
  return c.pieces;
}

TEST_CASE("LineSplitter cuts lines and strips the line ends") {
  LineSplitter s(100);
  Collector c;
  s.Feed("one\ntw", c.emit());
  CHECK(s.buffered() == 2);
  s.Feed("o\r\n\nthree\rstill three\r\n", c.emit());
  CHECK(s.buffered() == 0);
  s.Feed("four", c.emit());
  CHECK(c.pieces == std::vector<Piece>{{"one", false}, {"two", false}, {"", false},
                                       {"three\rstill three", false}});
  s.Flush(c.emit());
  CHECK(c.pieces.back() == Piece{"four", false});
  const size_t n = c.pieces.size();
  s.Flush(c.emit());  // nothing buffered: nothing emitted
  CHECK(c.pieces.size() == n);
  // An unterminated line's trailing '\r' goes too.
  CHECK(SplitAll("five\r", 100) == std::vector<Piece>{{"five", false}});
}

TEST_CASE("LineSplitter emits long lines in max_line pieces") {
  CHECK(SplitAll("abcd\n", 4) == std::vector<Piece>{{"abcd", false}});
  CHECK(SplitAll("abcde\n", 4) == std::vector<Piece>{{"abcd", true}, {"e", false}});
  CHECK(SplitAll("abcdefgh\n", 4) == std::vector<Piece>{{"abcd", true}, {"efgh", false}});
  CHECK(SplitAll("abcdefghi", 4) ==
        std::vector<Piece>{{"abcd", true}, {"efgh", true}, {"i", false}});
  // The '\r' of a "\r\n" right after max_line bytes is not a piece of its own.
  CHECK(SplitAll("abcd\r\nx\n", 4) == std::vector<Piece>{{"abcd", false}, {"x", false}});
  CHECK(SplitAll("abcd\rx\n", 4) == std::vector<Piece>{{"abcd", true}, {"\rx", false}});

  // A flood without '\n' is emitted as it comes, holding at most max_line + 1.
  LineSplitter s(16 * 1024);
  Collector c;
  std::string chunk(65536, 'x');
  for (int i = 0; i < 64; ++i) {
    s.Feed(chunk, c.emit());
    CHECK(s.buffered() <= s.max_line() + 1);
  }
  s.Feed("\n", c.emit());
  size_t total = 0;
  for (size_t i = 0; i < c.pieces.size(); ++i) {
    total += c.pieces[i].text.size();
    CHECK(c.pieces[i].text.size() == 16 * 1024);
    CHECK(c.pieces[i].partial == (i + 1 < c.pieces.size()));
  }
  CHECK(total == 64u * 65536u);
  CHECK(c.pieces.size() == 256);
}

TEST_CASE("LineSplitter never cuts a UTF-8 character between two pieces") {
  // "\xE2\x82\xAC" is U+20AC: the cut moves before it, not into it.
  CHECK(SplitAll("ab\xE2\x82\xAC" "cd\n", 4) ==
        std::vector<Piece>{{"ab", true}, {"\xE2\x82\xAC" "c", true}, {"d", false}});
  CHECK(SplitAll("abc\xC3\xA9\n", 4) == std::vector<Piece>{{"abc", true}, {"\xC3\xA9", false}});
  CHECK(SplitAll("\xF0\x9F\x98\x80\xF0\x9F\x98\x80\n", 5) ==
        std::vector<Piece>{{"\xF0\x9F\x98\x80", true}, {"\xF0\x9F\x98\x80", false}});
  // Bytes that are not UTF-8 are cut where they fall.
  CHECK(SplitAll("a\x80\x80\x80\x80\x80x\n", 4) ==
        std::vector<Piece>{{"a\x80\x80\x80", true}, {"\x80\x80x", false}});
  CHECK(SplitAll("\xE2\x82\xAC\xE2\n", 1) ==
        std::vector<Piece>{{"\xE2", true}, {"\x82", true}, {"\xAC", true}, {"\xE2", false}});

  // A long line of 1- to 4-byte characters, read in chunks of any size:
  // every piece is valid UTF-8, at most 3 bytes short of max_line, and
  // the pieces join to the line.
  std::mt19937 rng(7);
  const char* chars[] = {"a", "\xC3\xA9", "\xE6\x97\xA5", "\xF0\x9F\x98\x80"};
  std::string line;
  while (line.size() < 100'000) line += chars[rng() % 4];
  for (size_t max_line : {4u, 5u, 16u * 1024}) {
    LineSplitter s(max_line);
    Collector c;
    for (size_t pos = 0; pos < line.size();) {
      size_t len = std::min<size_t>(line.size() - pos, 1 + rng() % 5000);
      s.Feed(std::string_view(line).substr(pos, len), c.emit());
      pos += len;
    }
    s.Feed("\n", c.emit());
    std::string joined;
    for (const Piece& p : c.pieces) {
      INFO(max_line << " " << p.text.size());
      CHECK(IsValidUtf8(p.text));
      if (p.partial) CHECK(p.text.size() + 3 >= max_line);
      CHECK(p.text.size() <= max_line);
      joined += p.text;
    }
    CHECK(joined == line);
    CHECK(c.pieces == SplitAll(line + "\n", max_line));
  }
}

TEST_CASE("LineSplitter output does not depend on how reads chunk the stream") {
  std::mt19937 rng(42);
  std::string data;
  const char alphabet[] = "ab\r\n\n\r\rcdefgh";
  for (int i = 0; i < 20000; ++i) data.push_back(alphabet[rng() % (sizeof alphabet - 1)]);
  for (size_t max_line : {1u, 3u, 7u, 64u}) {
    const std::vector<Piece> whole = SplitAll(data, max_line);
    LineSplitter s(max_line);
    Collector c;
    for (size_t pos = 0; pos < data.size();) {
      size_t len = std::min<size_t>(data.size() - pos, 1 + rng() % 19);
      s.Feed(std::string_view(data).substr(pos, len), c.emit());
      CHECK(s.buffered() <= max_line + 1);
      pos += len;
    }
    s.Flush(c.emit());
    CHECK(c.pieces == whole);
    // Joining pieces and re-adding '\n' after whole lines gives back the
    // data, less the '\r' of each "\r\n".
    std::string joined, expected;
    for (const Piece& p : whole) joined += p.text + (p.partial ? "" : "\n");
    for (size_t i = 0; i < data.size(); ++i)
      if (!(data[i] == '\r' && ((i + 1 < data.size() && data[i + 1] == '\n') ||
                                i + 1 == data.size())))
        expected += data[i];
    if (!expected.empty() && expected.back() != '\n') expected += '\n';
    CHECK(joined == expected);
  }
}

TEST_CASE("LineSplitter restored from its bytes goes on as if never interrupted") {
  // A daemon-reexec carries buffered_bytes() to a new splitter: for every
  // split point, the pieces before plus the restored splitter's after are
  // the pieces of one Feed of the whole.
  const std::string data = std::string("ab\0c\xff\r\rdefghij\r\nkl\r", 18) + "mnopqrstu\nvw\r";
  for (size_t max_line : {1u, 3u, 4u, 64u}) {
    const std::vector<Piece> whole = SplitAll(data, max_line);
    for (size_t cut = 0; cut <= data.size(); ++cut) {
      INFO("max_line " << max_line << ", cut at " << cut);
      LineSplitter before(max_line);
      Collector c;
      before.Feed(std::string_view(data).substr(0, cut), c.emit());
      LineSplitter after(max_line);
      REQUIRE(after.Restore(before.buffered_bytes()));
      CHECK(after.buffered() == before.buffered());
      after.Feed(std::string_view(data).substr(cut), c.emit());
      after.Flush(c.emit());
      CHECK(c.pieces == whole);
    }
  }
}

TEST_CASE("LineSplitter refuses to restore bytes no splitter could hold") {
  LineSplitter s(4);
  REQUIRE(s.Restore("ab"));
  CHECK_FALSE(s.Restore("a\nb"));
  CHECK_FALSE(s.Restore("abcde"));
  CHECK_FALSE(s.Restore("abcd\r\r"));
  CHECK(s.buffered_bytes() == "ab");  // unchanged by a refusal
  CHECK(s.Restore("abcd\r"));        // max_line and a held-back '\r'
  CHECK(s.Restore(""));
  CHECK(s.buffered() == 0);
}

LogRecord Rec(std::string process, std::string stream, std::string text,
              std::string app = "shop") {
  LogRecord r;
  r.app = std::move(app);
  r.release = "v3";
  r.process = std::move(process);
  r.stream = std::move(stream);
  r.text = std::move(text);
  return r;
}

std::vector<uint64_t> Seqs(const std::vector<LogRecord>& records) {
  std::vector<uint64_t> out;
  for (const LogRecord& r : records) out.push_back(r.seq);
  return out;
}

// The seqs Since returns for shop's log.
std::vector<uint64_t> SinceSeqs(const LogStore& store, uint64_t after_seq, const LogFilter& filter,
                                size_t limit) {
  auto s = store.Since("shop", after_seq, filter, limit);
  INFO(s.status().message());
  REQUIRE(s.ok());
  return Seqs(*s);
}

std::vector<uint64_t> Range(uint64_t first, uint64_t last) {
  std::vector<uint64_t> out;
  for (uint64_t s = first; s <= last; ++s) out.push_back(s);
  return out;
}

struct Fixture {
  TempDir tmp{"relsupd-logs"};
  std::string dir = tmp.path() + "/logs";
  FakeClock clock{1'795'000'000'123};
  LogStoreOptions options;
  std::unique_ptr<LogStore> Open() {
    auto s = LogStore::Open(dir, options, clock);
    REQUIRE(s.ok());
    return std::move(s).value();
  }
  std::string AppFile(const std::string& suffix = "", const std::string& app = "shop") {
    return dir + "/" + app + "/current.log" + suffix;
  }
};

TEST_CASE("Records encode to one text line that decodes back") {
  LogRecord r = Rec("web.1", "err", std::string("quote\" back\\ tab\t nl\n nul") + '\0' +
                                         "\x01 caf\xC3\xA9 \xE2\x82\xAC");
  r.seq = 42;
  r.time_us = 1'795'000'000'123'456;
  r.partial = true;
  std::string line;
  EncodeLogRecord(r, &line);
  CHECK(line.find('\n') == std::string::npos);
  // The text holds a newline: escaped (flag e), and its length as written.
  const std::string written = std::string("quote\" back\\\\ tab\t nl\\n nul") + '\0' +
                              "\x01 caf\xC3\xA9 \xE2\x82\xAC";
  CHECK(line == "42 2026-11-18T11:06:40.123456Z v3 web.1 err pe " +
                    std::to_string(written.size()) + " " + written);
  CHECK(LogRecordToJson(r)["time"] == "2026-11-18T11:06:40.123456Z");
  uint64_t seq = 0;
  CHECK(PeekLogSeq(line, &seq));
  CHECK(seq == 42);
  Result<LogRecord> back = DecodeLogRecord(line, "shop");
  REQUIRE(back.ok());
  CHECK(*back == r);

  // Ordinary text is written as it is; empty fields and odd bytes in them
  // are marked.
  LogRecord plain = Rec("", "out", "back\\slash \"q\"", "shop");
  plain.release = "-";
  plain.stream = "o t%";
  plain.seq = 7;
  plain.time_us = 0;
  line.clear();
  EncodeLogRecord(plain, &line);
  CHECK(line == "7 1970-01-01T00:00:00.000000Z %2D - o%20t%25 - 14 back\\slash \"q\"");
  back = DecodeLogRecord(line, "shop");
  REQUIRE(back.ok());
  CHECK(*back == plain);

  // Whatever is cut short or malformed does not decode.
  std::string good;
  EncodeLogRecord(r, &good);
  for (size_t cut = 0; cut < good.size(); ++cut) {
    INFO(cut);
    CHECK(!DecodeLogRecord(good.substr(0, cut), "shop").ok());
  }
  for (const char* bad :
       {"garbage", "x 2026-11-18T11:06:40.123456Z v3 web.1 out - 1 a",
        "1 2026-11-18 v3 web.1 out - 1 a", "1 2026-11-18T11:06:40.123456Z v3 web.1 out q 1 a",
        "1 2026-11-18T11:06:40.123456Z v3 web.1 out pp 1 a",
        "1 2026-11-18T11:06:40.123456Z v3 web.1 out - 2 a",
        "1 2026-11-18T11:06:40.123456Z v3 web.1 out e 2 a\\",
        "1 2026-11-18T11:06:40.123456Z v3 web.1 out e 2 \\x",
        "1 2026-11-18T11:06:40.123456Z %4 web.1 out - 1 a",
        "1 2026-11-18T11:06:40.123456Z  web.1 out - 1 a", "{\"seq\":1}"}) {
    INFO(bad);
    CHECK(!DecodeLogRecord(bad, "shop").ok());
  }

  // The JSON lines of earlier versions are still read; the app is the
  // one whose file it is, whatever the line says (a line put in another
  // app's file must not pass as that app's).
  const std::string json =
      R"({"seq":5,"time":"2026-11-18T11:06:40.123456Z","app":"old","release":"v1",)"
      R"("process":"web.1","stream":"out","text":"hi\nthere","partial":false})";
  CHECK(PeekLogSeq(json, &seq));
  CHECK(seq == 5);
  back = DecodeLogRecord(json, "shop");
  REQUIRE(back.ok());
  CHECK(back->app == "shop");
  CHECK(DecodeLogRecord(json)->app == "old");
  CHECK(back->text == "hi\nthere");
  CHECK(back->time_us == 1'795'000'000'123'456);
  // A year before 1000 keeps its four digits (found by fuzz_log_record).
  back = DecodeLogRecord(R"({"seq":6,"time":"0506-11-18T11:06:40.123456Z","app":"a",)"
                         R"("release":"","process":"","stream":"","text":"","partial":true})");
  REQUIRE(back.ok());
  line.clear();
  EncodeLogRecord(*back, &line);
  CHECK(line == "6 0506-11-18T11:06:40.123456Z - - - p 0 ");
  Result<LogRecord> again = DecodeLogRecord(line, "a");
  REQUIRE(again.ok());
  CHECK(*again == *back);

  // Invalid UTF-8 becomes U+FFFD, so what `ctl logs` prints is valid JSON.
  CHECK(SanitizeUtf8("a\xFF" "b\xC3") == "a\xEF\xBF\xBD" "b\xEF\xBF\xBD");
  CHECK(SanitizeUtf8("\xED\xA0\x80") == "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
  CHECK(IsValidUtf8("caf\xC3\xA9 \xF0\x9F\x98\x80"));
  CHECK(!IsValidUtf8("\xC0\xAF"));  // overlong '/'
  CHECK(LogRecordToJson(Rec("web.1", "out", "x\xFF"))["text"] == "x\xEF\xBF\xBD");
  CHECK(FormatTimeUtcMicros(0) == "1970-01-01T00:00:00.000000Z");

  // ScanText: UTF-8 and newlines found wherever they are (in and around
  // the 8-byte words it reads ASCII in).
  for (size_t len = 0; len < 20; ++len) {
    for (size_t at = 0; at < len; ++at) {
      INFO(len << " " << at);
      std::string t(len, 'a');
      t[at] = '\n';
      CHECK(ScanText(t).newline);
      CHECK(ScanText(t).utf8);
      t[at] = '\x0b';  // '\n' + 1 and its neighbours are not newlines
      CHECK(!ScanText(t).newline);
      t[at] = '\xFF';
      CHECK(!ScanText(t).utf8);
    }
  }
  CHECK(ScanText("caf\xC3\xA9\n").newline);
  CHECK(ScanText("\xFF x \n").newline);
  CHECK(!ScanText("\xFF x \n").utf8);
  CHECK(!ScanText("\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC").newline);
}

TEST_CASE("LogStore appends and assigns seq and time and tails from the file") {
  Fixture f;
  auto store = f.Open();
  struct stat st;
  REQUIRE(stat(f.dir.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0750);
  CHECK(store->LastSeq("shop") == 0);
  auto empty = store->Tail("shop", {}, 10);
  REQUIRE(empty.ok());
  CHECK(empty->empty());

  for (int i = 1; i <= 5; ++i) store->Append(Rec("web.1", "out", "line " + std::to_string(i)));
  LogRecord given = Rec("web.1", "out", "given time");
  given.time_us = 7;
  store->Append(given);
  CHECK(store->LastSeq("shop") == 6);
  CHECK(store->LastSeq("other") == 0);

  // Not flushed yet: Tail writes the buffer out first.
  auto tail = store->Tail("shop", {}, 3);
  REQUIRE(tail.ok());
  CHECK(Seqs(*tail) == std::vector<uint64_t>{4, 5, 6});
  CHECK((*tail)[0].text == "line 4");
  CHECK((*tail)[0].time_us == f.clock.now * 1000);
  CHECK((*tail)[0].app == "shop");
  CHECK((*tail)[0].release == "v3");
  CHECK((*tail)[2].time_us == 7);
  auto all = store->Tail("shop", {}, 100);
  REQUIRE(all.ok());
  CHECK(Seqs(*all) == Range(1, 6));

  store->Append(Rec("web.1", "out", "flushed"));
  store->Flush();
  std::ifstream in(f.AppFile());
  std::string line, last;
  int lines = 0;
  while (std::getline(in, line)) ++lines, last = line;
  CHECK(lines == 7);
  CHECK(last.ends_with(" v3 web.1 out - 7 flushed"));
  CHECK(last.starts_with("7 "));
  REQUIRE(stat(f.AppFile().c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0640);
}

TEST_CASE("LogStore filters by process type and instance and stream") {
  Fixture f;
  auto store = f.Open();
  store->Append(Rec("web.1", "out", "a"));
  store->Append(Rec("web.2", "err", "b"));
  store->Append(Rec("worker.1", "out", "c"));
  store->Append(Rec("webhook.1", "out", "d"));
  store->Append(Rec("web.12", "out", "e"));
  store->Append(Rec("web", "out", "f"));
  auto texts = [&](const LogFilter& filter) {
    std::string out;
    auto t = store->Tail("shop", filter, 100);
    REQUIRE(t.ok());
    for (const LogRecord& r : *t) out += r.text;
    auto s = store->Since("shop", 0, filter, 100);
    REQUIRE(s.ok());
    std::string since;
    for (const LogRecord& r : *s) since += r.text;
    CHECK(since == out);
    return out;
  };
  CHECK(texts({}) == "abcdef");
  CHECK(texts({"web", "", ""}) == "abef");
  CHECK(texts({"web.1", "", ""}) == "a");
  CHECK(texts({"web.2", "", ""}) == "b");
  CHECK(texts({"", "err", ""}) == "b");
  CHECK(texts({"web", "out", ""}) == "aef");
  CHECK(texts({"worker", "err", ""}) == "");
  CHECK(texts({"we", "", ""}) == "");
  // By release: every record here is v3's.
  CHECK(texts({"", "", "v3"}) == "abcdef");
  CHECK(texts({"web", "", "v2"}) == "");
  // Tail counts matching records only.
  auto t = store->Tail("shop", {"web", "", ""}, 2);
  REQUIRE(t.ok());
  CHECK(Seqs(*t) == std::vector<uint64_t>{5, 6});
}

TEST_CASE("LogStore rotates within its size bound and drops the oldest file") {
  Fixture f;
  f.options.max_file_bytes = 4096;
  f.options.max_files = 3;
  auto store = f.Open();
  const std::string text(100, 'x');
  const int kRecords = 1000;
  for (int i = 1; i <= kRecords; ++i) {
    store->Append(Rec(i % 2 ? "web.1" : "worker.1", "out", text));
    if (i % 7 == 0) store->Flush();
  }
  store->Flush();
  uint64_t total = 0;
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(f.dir + "/shop")) {
    names.push_back(e.path().filename().string());
    CHECK(e.file_size() <= f.options.max_file_bytes);
    total += e.file_size();
  }
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{"current.log", "current.log.1", "current.log.2"});
  CHECK(total <= f.options.max_file_bytes * 3);
  CHECK(fs::file_size(f.AppFile(".1")) > 4096 - 300);  // rotated files are full

  auto all = store->Tail("shop", {}, 100'000);
  REQUIRE(all.ok());
  REQUIRE(!all->empty());
  // What is kept is one contiguous run ending at the last record, spanning
  // all three generations; the oldest records are gone.
  const uint64_t first = all->front().seq;
  CHECK(first > 1);
  CHECK(Seqs(*all) == Range(first, kRecords));
  const size_t per_file = 4096 / (all->front().text.size() + 100);
  CHECK(all->size() > 2 * per_file);

  // A tail larger than current.log reaches into current.log.1 and .2.
  size_t in_current = 0;
  {
    std::ifstream in(f.AppFile());
    std::string line;
    while (std::getline(in, line)) ++in_current;
  }
  auto t = store->Tail("shop", {}, in_current + 5);
  REQUIRE(t.ok());
  CHECK(Seqs(*t) == Range(kRecords - in_current - 4, kRecords));
  auto w = store->Tail("shop", {"worker", "", ""}, in_current + 5);
  REQUIRE(w.ok());
  CHECK(w->size() == in_current + 5);
  for (const LogRecord& r : *w) CHECK(r.process == "worker.1");
  CHECK(w->back().seq == kRecords);
}

TEST_CASE("LogStore with max_files 1 keeps one bounded file") {
  Fixture f;
  f.options.max_file_bytes = 2048;
  f.options.max_files = 1;
  auto store = f.Open();
  for (int i = 0; i < 200; ++i) store->Append(Rec("web.1", "out", std::string(50, 'y')));
  store->Flush();
  CHECK(fs::file_size(f.AppFile()) <= 2048);
  CHECK(!fs::exists(f.AppFile(".1")));
  auto all = store->Tail("shop", {}, 1000);
  REQUIRE(all.ok());
  CHECK(all->back().seq == 200);
}

TEST_CASE("LogStore continues seq after a reopen and right after a rotation") {
  Fixture f;
  f.options.max_file_bytes = 1024;
  {
    auto store = f.Open();
    for (int i = 0; i < 10; ++i) store->Append(Rec("web.1", "out", "before"));
    store->Append(Rec("web.1", "out", "x", "blog"));
  }  // the destructor flushes
  {
    auto store = f.Open();
    CHECK(store->LastSeq("shop") == 10);
    CHECK(store->LastSeq("blog") == 1);
    store->Append(Rec("web.1", "out", "after"));
    auto t = store->Tail("shop", {}, 2);
    REQUIRE(t.ok());
    CHECK(Seqs(*t) == std::vector<uint64_t>{10, 11});
    CHECK((*t)[1].text == "after");
  }
  // An empty current.log (rotated just before the daemon stopped): the last
  // seq comes from current.log.1.
  fs::rename(f.AppFile(), f.AppFile(".1"));
  { std::ofstream(f.AppFile()); }
  {
    auto store = f.Open();
    CHECK(store->LastSeq("shop") == 11);
    store->Append(Rec("web.1", "out", "later"));
    CHECK(store->LastSeq("shop") == 12);
  }
}

TEST_CASE("LogStore starts past a directory or a FIFO where a log file should be, "
          "and never waits on one") {
  Fixture f;
  {
    auto store = f.Open();
    for (int i = 0; i < 7; ++i) store->Append(Rec("web.1", "out", "old"));
  }
  // Newest first: current.log (junk), .1 (a directory), .2 (a FIFO nobody
  // writes: an open or read of it that waited would hang this test), .3
  // (the records).
  fs::rename(f.AppFile(), f.AppFile(".3"));
  { std::ofstream(f.AppFile()) << "junk\n"; }
  fs::create_directories(f.AppFile(".1"));
  REQUIRE(::mkfifo(f.AppFile(".2").c_str(), 0600) == 0);
  {
    auto store = f.Open();  // warns and goes on
    CHECK(store->LastSeq("shop") == 7);
    // Readers pass over them as if missing (the start warned of them).
    auto t = store->Tail("shop", {}, 100);
    REQUIRE(t.ok());
    CHECK(Seqs(*t) == Range(1, 7));
    store->Append(Rec("web.1", "out", "new"));
    CHECK(store->LastSeq("shop") == 8);
    CHECK(SinceSeqs(*store, 0, {}, 100) == Range(1, 8));
  }
  // current.log itself a FIFO: its records are dropped (and counted), the
  // open does not wait for a reader.
  fs::remove_all(f.AppFile(".1"));
  fs::remove(f.AppFile(".2"));
  fs::remove(f.AppFile());
  REQUIRE(::mkfifo(f.AppFile().c_str(), 0600) == 0);
  {
    auto store = f.Open();
    store->Append(Rec("web.1", "out", "lost"));
    store->Flush();
    CHECK(store->Counters()["shop"].dropped == 1);
  }
}

TEST_CASE("LogStore skips a torn last line and corrupt lines") {
  Fixture f;
  {
    auto store = f.Open();
    for (int i = 1; i <= 5; ++i) store->Append(Rec("web.1", "out", "line " + std::to_string(i)));
  }
  // The daemon was killed in the middle of writing record 5.
  const auto size = fs::file_size(f.AppFile());
  fs::resize_file(f.AppFile(), size - 10);
  {
    auto store = f.Open();
    CHECK(store->LastSeq("shop") == 4);
    auto t = store->Tail("shop", {}, 10);
    REQUIRE(t.ok());
    CHECK(Seqs(*t) == Range(1, 4));
    // The next record starts on a line of its own and is readable.
    store->Append(Rec("web.1", "out", "new five"));
    store->Flush();
    t = store->Tail("shop", {}, 10);
    REQUIRE(t.ok());
    CHECK(Seqs(*t) == Range(1, 5));
    CHECK(t->back().text == "new five");
  }
  // Garbage in the middle of a file is skipped by every reader.
  {
    std::ofstream out(f.AppFile(), std::ios::app);
    out << "not json\n{\"seq\":99,\"time\":\"bad\"}\n\n";
    // A seq no record can have (past int64, or 0): the next seq must not
    // wrap to 0 or start over.
    out << "18446744073709551615 2026-11-27T10:58:50.123456Z v1 web.1 out - 1 x\n"
        << "0 2026-11-27T10:58:50.123456Z v1 web.1 out - 1 x\n"
        << "{\"seq\":9223372036854775808,\"time\":\"2026-11-27T10:58:50.123456Z\","
           "\"partial\":false,\"app\":\"shop\",\"release\":\"v1\",\"process\":\"web.1\","
           "\"stream\":\"out\",\"text\":\"x\"}\n";
  }
  {
    auto store = f.Open();
    CHECK(store->LastSeq("shop") == 5);
    store->Append(Rec("web.1", "out", "six"));
    auto t = store->Tail("shop", {}, 10);
    REQUIRE(t.ok());
    CHECK(Seqs(*t) == Range(1, 6));
    CHECK(SinceSeqs(*store, 2, {}, 10) == Range(3, 6));  // ring has only 6: from files
  }
  // A torn line only (nothing valid) is an empty log at seq 0.
  fs::create_directories(f.dir + "/torn");
  { std::ofstream(f.AppFile("", "torn")) << "{\"seq\":1,\"ti"; }
  auto store = f.Open();
  CHECK(store->LastSeq("torn") == 0);
  auto t = store->Tail("torn", {}, 10);
  REQUIRE(t.ok());
  CHECK(t->empty());
}

TEST_CASE("LogStore goes on after the last sane seq when a hand edit put a huge one last") {
  Fixture f;
  {
    auto store = f.Open();
    for (int i = 0; i < 3; ++i) store->Append(Rec("web.1", "out", "line"));
  }
  // Decodable (at most kMaxLogSeq), but the seqs after it would run out.
  { std::ofstream(f.AppFile(), std::ios::app) << kMaxLogSeq << " 2026-11-27T10:58:50.123456Z v1 web.1 out - 1 x\n"; }
  auto store = f.Open();
  CHECK(store->LastSeq("shop") == 3);
  store->Append(Rec("web.1", "out", "next"));
  CHECK(store->LastSeq("shop") == 4);
  auto t = store->Tail("shop", {}, 1);
  REQUIRE(t.ok());
  REQUIRE(t->size() == 1);
  CHECK(t->back().seq == 4);
  CHECK(t->back().text == "next");
}

TEST_CASE("Since serves the ring and falls back to the files") {
  Fixture f;
  f.options.ring_lines = 10;
  f.options.max_file_bytes = 512;
  f.options.max_files = 4;
  auto store = f.Open();
  for (int i = 1; i <= 25; ++i)
    store->Append(Rec(i % 2 ? "web.1" : "web.2", i % 5 ? "out" : "err", std::to_string(i)));
  store->Flush();

  CHECK(SinceSeqs(*store, 20, {}, 100) == Range(21, 25));
  CHECK(SinceSeqs(*store, 15, {}, 100) == Range(16, 25));  // the ring is exactly 16..25
  CHECK(SinceSeqs(*store, 16, {}, 3) == Range(17, 19));
  CHECK(SinceSeqs(*store, 16, {"web.2", "", ""}, 3) == std::vector<uint64_t>{18, 20, 22});
  CHECK(SinceSeqs(*store, 25, {}, 100).empty());
  CHECK(SinceSeqs(*store, 1000, {}, 100).empty());

  // Older than the ring: from the files, across generations.
  REQUIRE(fs::exists(f.AppFile(".1")));
  CHECK(SinceSeqs(*store, 3, {}, 100) == Range(4, 25));
  CHECK(SinceSeqs(*store, 0, {}, 7) == Range(1, 7));
  CHECK(SinceSeqs(*store, 2, {"", "err", ""}, 100) == std::vector<uint64_t>{5, 10, 15, 20, 25});

  // Proof of where each came from: without the files the ring still
  // answers, and what the files held before it is passed over (gone), not
  // waited for.
  fs::remove_all(f.dir + "/shop");
  CHECK(SinceSeqs(*store, 20, {}, 100) == Range(21, 25));
  CHECK(SinceSeqs(*store, 3, {}, 100) == Range(16, 25));
}

TEST_CASE("The ring is bounded in bytes as well as lines") {
  Fixture f;
  f.options.ring_lines = 100;
  f.options.ring_bytes = 1000;
  auto store = f.Open();
  for (int i = 1; i <= 20; ++i) store->Append(Rec("web.1", "out", std::string(100, 'a' + i)));
  fs::remove_all(f.dir + "/shop");  // what Since returns now comes from the ring
  CHECK(SinceSeqs(*store, 10, {}, 100) == Range(11, 20));
  // Record 10 left the ring (ring_bytes) and its files are gone: passed over.
  CHECK(SinceSeqs(*store, 9, {}, 100) == Range(11, 20));
}

TEST_CASE("Since after a restart reads the files and then the ring") {
  Fixture f;
  f.options.ring_lines = 100;
  {
    auto store = f.Open();
    for (int i = 0; i < 30; ++i) store->Append(Rec("web.1", "out", "old"));
  }
  auto store = f.Open();
  CHECK(SinceSeqs(*store, 25, {}, 100) == Range(26, 30));
  store->Append(Rec("web.1", "out", "new"));
  CHECK(SinceSeqs(*store, 28, {}, 100) == Range(29, 31));  // the ring starts at 31: files
  auto s = store->Since("shop", 30, {}, 100);  // from the ring
  REQUIRE(s.ok());
  REQUIRE(s->size() == 1);
  CHECK(s->front().text == "new");
  CHECK(s->front().seq == 31);
}

TEST_CASE("LogStore reads the JSON lines of an earlier version and goes on after them") {
  Fixture f;
  fs::create_directories(f.dir + "/shop");
  {
    std::ofstream out(f.AppFile());
    for (int i = 1; i <= 3; ++i)
      out << R"({"seq":)" << i << R"(,"time":"2026-11-18T11:06:40.000000Z","app":"shop",)"
          << R"("release":"v1","process":"web.1","stream":"out","text":"old )" << i
          << R"(","partial":false})" << '\n';
  }
  auto store = f.Open();
  CHECK(store->LastSeq("shop") == 3);
  store->Append(Rec("web.1", "out", "new"));
  auto t = store->Tail("shop", {}, 10);
  REQUIRE(t.ok());
  CHECK(Seqs(*t) == Range(1, 4));
  CHECK((*t)[0].text == "old 1");
  CHECK((*t)[0].release == "v1");
  CHECK((*t)[3].text == "new");
  CHECK((*t)[3].app == "shop");
  CHECK(SinceSeqs(*store, 1, {}, 10) == Range(2, 4));  // files, then the ring
  uint64_t resume = 0;
  auto page = store->Tail("shop", {}, 2, 3, &resume);  // bisection over both forms
  REQUIRE(page.ok());
  CHECK(Seqs(*page) == Range(1, 2));
}

TEST_CASE("A LogStore batch gives its lines one time, counts them, and calls the hook once") {
  Fixture f;
  auto store = f.Open();
  std::vector<std::string> hooked;
  store->set_on_append([&](const std::string& app) { hooked.push_back(app); });
  const LogSource source{"shop", "v3", "web.1"};
  {
    LogStore::Batch batch(*store, source, "out", 0);
    batch.Line("one");
    f.clock.now += 5;  // the batch's time is taken once
    batch.Line("two\xFF", true);
    batch.Line("three");
  }
  { LogStore::Batch empty(*store, source, "err", 0); }  // no lines: no hook, no file
  CHECK(hooked == std::vector<std::string>{"shop"});
  const LogSource other{"other", "v1", "web.1"};
  { LogStore::Batch none(*store, other, "out", 0); }
  CHECK(!fs::exists(f.dir + "/other"));
  auto t = store->Tail("shop", {}, 10);
  REQUIRE(t.ok());
  REQUIRE(t->size() == 3);
  CHECK((*t)[0].time_us == (*t)[2].time_us);
  CHECK((*t)[1].text == "two\xEF\xBF\xBD");
  CHECK((*t)[1].partial);
  CHECK((*t)[2].seq == 3);
  auto counters = store->Counters();
  CHECK(counters["shop"].lines == std::map<std::string, uint64_t>{{"out", 3}});
  // A bad app name drops the batch's lines and counts them.
  {
    const LogSource bad_source{"../etc", "v1", "web.1"};
    LogStore::Batch bad(*store, bad_source, "out", 0);
    bad.Line("a");
    bad.Line("b");
  }
  CHECK(store->Counters()[""].dropped == 2);
  CHECK(hooked.size() == 1);
}

TEST_CASE("LogStore's ring over many chunks answers Since as the files do") {
  Fixture f;
  f.options.ring_lines = 5'000;
  f.options.max_file_bytes = 1 << 20;
  f.options.max_files = 8;
  auto store = f.Open();
  const LogSource source{"shop", "v3", "web.1"};
  // About 12 chunks of records of varied length, a few with newlines.
  std::mt19937 rng(7);
  for (int b = 0; b < 200; ++b) {
    LogStore::Batch batch(*store, source, b % 3 ? "out" : "err", 0);
    for (int i = 0; i < 40; ++i) {
      std::string text(rng() % 300, static_cast<char>('a' + b % 26));
      if (i % 17 == 0) text += "\nsecond";
      batch.Line(text, i % 11 == 0);
    }
  }
  store->Flush();
  const uint64_t last = store->LastSeq("shop");
  REQUIRE(last == 8'000);
  // Every record, from the files (Tail pages back within its budget).
  std::vector<LogRecord> all;
  for (uint64_t before = UINT64_MAX; before != 0;) {
    uint64_t resume = 0;
    auto page = store->Tail("shop", {}, 100'000, before, &resume);
    REQUIRE(page.ok());
    all.insert(all.begin(), page->begin(), page->end());
    before = resume != 0 ? resume : (page->empty() ? 0 : page->front().seq);
    if (!page->empty() && page->front().seq == 1) break;
  }
  REQUIRE(all.size() == last);
  // From the ring (the newest 5,000) and from the files before it: the
  // same records, page by page, as the files hold.
  for (uint64_t after : {0u, 2'999u, 3'000u, 3'001u, 4'321u, 7'990u, 7'999u}) {
    INFO(after);
    uint64_t seq = after;
    size_t pages = 0;
    while (seq < last && pages++ < 100) {
      uint64_t scanned = 0;
      auto page = store->Since("shop", seq, {}, 777, &scanned);
      REQUIRE(page.ok());
      REQUIRE(!page->empty());
      for (const LogRecord& r : *page) {
        REQUIRE(r.seq == seq + 1);
        CHECK(r == all[r.seq - 1]);
        seq = r.seq;
      }
      CHECK(scanned == seq);
    }
    CHECK(seq == last);
  }
}

TEST_CASE("LogStore refuses bad app names and carries on past write errors") {
  Fixture f;
  f.options.journal = true;  // with or without a journald: no effect on files
  auto store = f.Open();
  for (const char* bad : {"", ".", "..", "../etc", "a/b", "x..y"}) {
    CHECK(store->Tail(bad, {}, 1).status().code() == StatusCode::kInvalidArgument);
    CHECK(store->Since(bad, 0, {}, 1).status().code() == StatusCode::kInvalidArgument);
    store->Append(Rec("web.1", "out", "x", bad));
  }
  CHECK(fs::is_empty(f.dir));

  // current.log cannot be opened (it is a directory): Append warns, keeps
  // the records in the ring, and never throws.
  fs::create_directories(f.AppFile("", "broken"));
  for (int i = 0; i < 3; ++i) store->Append(Rec("web.1", "out", "lost", "broken"));
  store->Flush();
  CHECK(store->LastSeq("broken") == 3);
  auto s = store->Since("broken", 1, {}, 10);
  REQUIRE(s.ok());
  CHECK(Seqs(*s) == Range(2, 3));
  // Once it can be opened again, writing resumes.
  fs::remove(f.AppFile("", "broken"));
  store->Append(Rec("web.1", "out", "kept", "broken"));
  store->Flush();
  auto t = store->Tail("broken", {}, 10);
  REQUIRE(t.ok());
  REQUIRE(t->size() == 1);
  CHECK(t->front().seq == 4);

  store->Append(Rec("web.1", "out", "fine"));
  auto ok = store->Tail("shop", {}, 10);
  REQUIRE(ok.ok());
  CHECK(ok->size() == 1);
}

TEST_CASE("LogStore rejects bad options") {
  Fixture f;
  f.options.max_files = 0;
  CHECK(LogStore::Open(f.dir, f.options, f.clock).status().code() ==
        StatusCode::kInvalidArgument);
  f.options.max_files = 2;
  f.options.max_file_bytes = 0;
  CHECK(!LogStore::Open(f.dir, f.options, f.clock).ok());
}

TEST_CASE("LogStore throughput is printed and not asserted") {
  Fixture f;
  f.options.max_file_bytes = 64 << 20;  // disk use bounded; rotation included
  auto store = LogStore::Open(f.dir, f.options, RealClock());
  REQUIRE(store.ok());
  LineSplitter splitter;
  // One read burst: 64 lines of ~100 bytes, as a pipe read would return.
  std::string burst;
  for (int i = 0; i < 64; ++i)
    burst += "GET /items/" + std::to_string(i) + " 200 0.42ms user-agent=curl/7.88 " +
             std::string(40, 'z') + "\n";
  const int kBursts = 3000;
  LogRecord proto = Rec("web.1", "out", "");
  auto cpu_us = [] {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
  };
  const double cpu_start = cpu_us();
  auto start = std::chrono::steady_clock::now();
  const LogSource source{proto.app, proto.release, proto.process};
  for (int b = 0; b < kBursts; ++b) {
    LogStore::Batch batch(**store, source, "out");
    splitter.Feed(burst, [&](std::string_view line, bool partial) { batch.Line(line, partial); });
    (*store)->Flush();
  }
  auto elapsed = std::chrono::duration<double, std::micro>(
                     std::chrono::steady_clock::now() - start)
                     .count();
  const double cpu = cpu_us() - cpu_start;
  const double lines = 64.0 * kBursts;
  // CPU time is the figure that matters on a shared machine; wall time
  // includes waiting for a core.
  std::printf("log store: %.0f lines of %zu bytes (split + a Batch's Line, Flush per 64 lines): "
              "%.2f us/line CPU (%.1f MB/s), %.2f us/line wall\n",
              lines, burst.size() / 64, cpu / lines, burst.size() * kBursts / cpu,
              elapsed / lines);
  CHECK((*store)->LastSeq("shop") == static_cast<uint64_t>(lines));
  auto t = (*store)->Tail("shop", {}, 1);
  REQUIRE(t.ok());
  CHECK(t->front().text.rfind("GET /items/63 ", 0) == 0);
}

TEST_CASE("LogStore filters by time and by an RE2 pattern, in Tail and Since alike") {
  Fixture f;
  auto store = f.Open();
  const int64_t t0 = f.clock.now;
  store->Append(Rec("web.1", "out", "GET /a 200"));
  store->Append(Rec("web.1", "out", "GET /b 500"));
  f.clock.now += 5'000;
  store->Append(Rec("web.1", "out", "POST /c 500"));
  store->Append(Rec("web.1", "err", "get /d 200"));
  auto texts = [&](const LogFilter& filter) {
    std::string out;
    auto t = store->Tail("shop", filter, 100);
    REQUIRE(t.ok());
    for (const LogRecord& r : *t) out += r.text + ";";
    auto s = store->Since("shop", 0, filter, 100);
    REQUIRE(s.ok());
    std::string since;
    for (const LogRecord& r : *s) since += r.text + ";";
    CHECK(since == out);
    return out;
  };
  LogFilter late;
  late.since_us = (t0 + 1) * 1000;
  CHECK(texts(late) == "POST /c 500;get /d 200;");
  LogFilter five;
  five.grep = std::make_shared<const re2::RE2>(" 5\\d\\d$");
  CHECK(texts(five) == "GET /b 500;POST /c 500;");
  LogFilter both = five;
  both.since_us = late.since_us;
  CHECK(texts(both) == "POST /c 500;");
  LogFilter nocase;
  nocase.grep = std::make_shared<const re2::RE2>("(?i)^get");
  nocase.stream = "err";
  CHECK(texts(nocase) == "get /d 200;");
}

TEST_CASE("LogStore bounds the records one Tail or Since looks at, and says where to go on") {
  Fixture f;
  auto store = f.Open();
  const size_t total = LogStore::kScanBudget + 500;
  for (size_t i = 1; i <= total; ++i)
    store->Append(Rec("web.1", "out", i == 10 ? "needle" : "hay " + std::to_string(i)));
  LogFilter needle;
  needle.grep = std::make_shared<const re2::RE2>("needle");
  // Backward: a budget (records or time) ends the first call before the
  // match; each next call, from where the last stopped, goes further back
  // until the one match is found.
  uint64_t resume = 0;
  auto first = store->Tail("shop", needle, 10, UINT64_MAX, &resume);
  REQUIRE(first.ok());
  CHECK(first->empty());
  REQUIRE(resume > 10);
  CHECK(resume >= total - LogStore::kScanBudget + 1);
  std::vector<LogRecord> found;
  for (int calls = 0; resume != 0 && found.empty(); ++calls) {
    REQUIRE(calls < 1000);
    const uint64_t before = resume;
    auto next = store->Tail("shop", needle, 10, before, &resume);
    REQUIRE(next.ok());
    found = *next;
    if (resume != 0) CHECK(resume < before);
  }
  CHECK(Seqs(found) == std::vector<uint64_t>{10});
  // Forward (files, then the ring): `scanned` moves over what did not
  // match, at most kScanBudget a call, until the newest.
  uint64_t scanned = 10;
  for (int calls = 0; scanned < total; ++calls) {
    REQUIRE(calls < 1000);
    const uint64_t before = scanned;
    auto fwd = store->Since("shop", before, needle, 100, &scanned);
    REQUIRE(fwd.ok());
    CHECK(fwd->empty());
    CHECK(scanned > before);
    CHECK(scanned - before <= LogStore::kScanBudget + 10'000);
  }
  CHECK(scanned == total);
}

TEST_CASE("LineBoundary finds where ordered lines turn, by bisection, never past a wanted line") {
  TempDir tmp{"relsupd-lines"};
  const std::string path = tmp.path() + "/lines";
  // "N ..." lines in order, some long (past the 16 KiB window) and some
  // torn (no number): the boundary for K is where line K starts, or a
  // little later when torn lines are near, never before a line < K.
  std::string text;
  std::map<uint64_t, off_t> start;
  std::mt19937 rng(7);
  for (uint64_t n = 1; n <= 3000; ++n) {
    if (n % 97 == 0) text += "torn line\n";
    start[n] = static_cast<off_t>(text.size());
    const size_t pad = n % 500 == 0 ? 40'000 : rng() % 300;
    text += std::to_string(n) + " " + std::string(pad, 'x') + "\n";
  }
  std::ofstream(path) << text;
  const off_t size = static_cast<off_t>(text.size());
  for (uint64_t k : {uint64_t{1}, uint64_t{2}, uint64_t{500}, uint64_t{501}, uint64_t{1234},
                     uint64_t{2999}, uint64_t{3000}, uint64_t{3001}}) {
    INFO("k = " << k);
    auto b = LineBoundary(path, [&](std::string_view line) -> std::optional<bool> {
      if (line.empty() || line[0] < '0' || line[0] > '9') return std::nullopt;
      return std::stoull(std::string(line.substr(0, line.find(' ')))) >= k;
    });
    REQUIRE(b.ok());
    const off_t exact = k > 3000 ? size : start[k];
    CHECK(*b >= exact);
    // At a line start, and no later than a window or a long line past it.
    CHECK((*b == size || text[static_cast<size_t>(*b) - 1] == '\n'));
    CHECK(*b - exact <= 64 * 1024);
    // What lies before it is what a backward read from there gives.
    uint64_t first_back = 0;
    REQUIRE(ForEachLineBackward(path, [&](std::string_view line) {
      if (line[0] < '0' || line[0] > '9') return true;
      const uint64_t n = std::stoull(std::string(line.substr(0, line.find(' '))));
      if (n >= k) return true;  // newer ones, passed over
      first_back = n;
      return false;
    }, *b).ok());
    CHECK(first_back == k - 1);
  }
  auto missing = LineBoundary(tmp.path() + "/none", [](std::string_view) { return true; });
  REQUIRE(missing.ok());
  CHECK(*missing == 0);
}

TEST_CASE("LogStore pages far back over several files read the same as one pass") {
  Fixture f;
  f.options.max_file_bytes = 64 * 1024;
  f.options.max_files = 6;
  auto store = f.Open();
  for (int i = 1; i <= 2'000; ++i) store->Append(Rec("web.1", "out", "line " + std::to_string(i)));
  store->Flush();
  // Up to n records before `before`, going on where a scan budget stopped
  // a call (a loaded machine may hit the time budget).
  auto back = [&](uint64_t before, size_t n) {
    std::vector<LogRecord> got;
    while (got.size() < n) {
      uint64_t resume = 0;
      auto page = store->Tail("shop", LogFilter{}, n - got.size(), before, &resume);
      REQUIRE(page.ok());
      got.insert(got.begin(), page->begin(), page->end());
      if (!page->empty()) before = page->front().seq;
      else if (resume != 0) before = resume;
      else break;
    }
    return got;
  };
  std::vector<LogRecord> all = back(UINT64_MAX, 100'000);
  REQUIRE(all.size() > 500);  // several files' worth kept
  REQUIRE(all.back().seq == 2'000);
  // Every page of 7 going back from a point gives the 7 records before it.
  for (size_t i = 7; i < all.size(); i += 61) {
    auto page = back(all[i].seq, 7);
    REQUIRE(page.size() == 7);
    CHECK(page.front().seq == all[i - 7].seq);
    CHECK(page.back().seq == all[i - 1].seq);
  }
  CHECK(back(all.front().seq, 7).empty());
}

TEST_CASE("LogStore calls its append hook with the app of each record") {
  Fixture f;
  auto store = f.Open();
  std::vector<std::string> seen;
  store->set_on_append([&](const std::string& app) { seen.push_back(app); });
  store->Append(Rec("web.1", "out", "a"));
  store->Append(Rec("web.1", "out", "b", "other"));
  store->Append(Rec("web.1", "out", "c", "../bad"));
  CHECK(seen == std::vector<std::string>{"shop", "other"});
}

TEST_CASE("LogStore's journal records name the app and the process, and each app has its own budget") {
  Fixture f;
  std::vector<std::map<std::string, std::string>> sent;
  f.options.journal = true;
  f.options.journal_burst = 3;
  f.options.journal_interval_ms = 30'000;
  f.options.journal_send = [&](const struct iovec* iov, int n) {
    std::map<std::string, std::string> fields;
    for (int i = 0; i < n; ++i) {
      std::string field(static_cast<const char*>(iov[i].iov_base), iov[i].iov_len);
      fields[field.substr(0, field.find('='))] = field.substr(field.find('=') + 1);
    }
    sent.push_back(std::move(fields));
    return 0;
  };
  auto store = f.Open();
  store->Append(Rec("web.1", "err", "boom"), 4242);
  REQUIRE(sent.size() == 1);
  CHECK(sent[0]["MESSAGE"] == "boom");
  CHECK(sent[0]["SYSLOG_IDENTIFIER"] == "shop");
  CHECK(sent[0]["OBJECT_PID"] == "4242");
  CHECK(sent[0]["PRIORITY"] == "3");
  CHECK(sent[0]["RELSUPD_PROCESS"] == "web.1");
  // shop floods: past 3 in the interval its lines stay out of the journal
  // (not out of its logs); another app's still go.
  for (int i = 0; i < 10; ++i) store->Append(Rec("web.1", "out", "flood"), 4242);
  store->Append(Rec("web.1", "out", "quiet", "blog"), 77);
  REQUIRE(sent.size() == 4);
  CHECK(sent[3]["SYSLOG_IDENTIFIER"] == "blog");
  CHECK(store->LastSeq("shop") == 11);
  // The next interval: first a line saying how many were held back.
  f.clock.now += 30'000;
  store->Append(Rec("web.1", "out", "later"), 4242);
  REQUIRE(sent.size() == 6);
  CHECK(sent[4]["MESSAGE"] ==
        "relsupd: 8 lines of app 'shop' were not sent to the journal (over 3 in 30 s); they are "
        "in its logs: relsupd ctl logs shop");
  CHECK(sent[4]["PRIORITY"] == "4");
  CHECK(sent[4].count("OBJECT_PID") == 0);
  CHECK(sent[5]["MESSAGE"] == "later");
}

TEST_CASE("LogStore's Since moves over records missing between the files and the ring") {
  Fixture f;
  f.options.ring_lines = 10;
  auto store = f.Open();
  for (int i = 1; i <= 30; ++i) store->Append(Rec("web.1", "out", "line " + std::to_string(i)));
  store->Flush();
  // The files are gone (removed by hand); the ring holds 21..30.
  for (const char* suffix : {"", ".1", ".2", ".3"}) ::unlink(f.AppFile(suffix).c_str());
  uint64_t scanned = 0, missed = 0;
  auto gap = store->Since("shop", 5, {}, 100, &scanned, &missed);
  REQUIRE(gap.ok());
  CHECK(Seqs(*gap) == Range(21, 30));
  CHECK(scanned == 30);
  CHECK(missed == 15);  // 6..20
  // A page that ends in the files' part stops there, and the next one
  // goes on.
  auto two = store->Since("shop", 5, {}, 2, &scanned, &missed);
  REQUIRE(two.ok());
  CHECK(Seqs(*two) == Range(21, 22));
  CHECK(scanned == 22);
  CHECK(missed == 15);
  // From the ring on, nothing is missed.
  REQUIRE(store->Since("shop", 22, {}, 100, &scanned, &missed).ok());
  CHECK(missed == 0);
}

TEST_CASE("LogStore's Since counts the records rotated out before a slow follower got to them") {
  Fixture f;
  f.options.ring_lines = 5;
  f.options.max_file_bytes = 1024;
  f.options.max_files = 2;
  auto store = f.Open();
  for (int i = 1; i <= 200; ++i) store->Append(Rec("web.1", "out", "line " + std::to_string(i)));
  store->Flush();
  auto kept = store->Tail("shop", {}, 1000);
  REQUIRE(kept.ok());
  const uint64_t oldest = kept->front().seq;
  REQUIRE(oldest > 20);
  uint64_t scanned = 0, missed = 0;
  // A filter that matches nothing: the gap is counted all the same.
  LogFilter none;
  none.stream = "err";
  auto page = store->Since("shop", 10, none, 100, &scanned, &missed);
  REQUIRE(page.ok());
  CHECK(page->empty());
  CHECK(missed == oldest - 11);
  auto all = store->Since("shop", 10, {}, 1000, &scanned, &missed);
  REQUIRE(all.ok());
  CHECK(all->front().seq == oldest);
  CHECK(Seqs(*all) == Range(oldest, 200));
  CHECK(missed == oldest - 11);
  // A follower that is not behind misses nothing.
  REQUIRE(store->Since("shop", oldest, {}, 1000, &scanned, &missed).ok());
  CHECK(missed == 0);
}

}  // namespace
}  // namespace relsupd
