// E2E: the control protocol on the wire. Bad requests get the JSON-RPC 2.0
// error they deserve and harm nobody; slow and silent clients delay nobody.
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <fstream>
#include <iterator>
#include <memory>
#include <set>
#include <sstream>
#include <thread>

#include "cli/client.h"
#include "daemon/base/sha256.h"
#include "tests/e2e/harness.h"

namespace relsupd::e2e {
namespace {

int ErrorCode(const Json& response) {
  if (!response.is_object() || !response.contains("error")) return 0;
  return response["error"].value("code", 0);
}

std::string ErrorMessage(const Json& response) {
  if (!response.is_object() || !response.contains("error")) return "";
  return response["error"].value("message", "");
}

// An error response must be a well-formed JSON-RPC 2.0 error.
void CheckErrorShape(const Json& r, const Json& id) {
  INFO(r.dump());
  REQUIRE(r.is_object());
  CHECK(r["jsonrpc"] == "2.0");
  REQUIRE(r.contains("id"));
  CHECK(r["id"] == id);
  CHECK_FALSE(r.contains("result"));
  REQUIRE(r["error"].is_object());
  CHECK(r["error"]["code"].is_number_integer());
  CHECK(r["error"]["message"].is_string());
}

void CheckStillServes(RawConn& c, int id) {
  Json r = c.Exchange(R"({"jsonrpc":"2.0","id":)" + std::to_string(id) +
                      R"(,"method":"daemon.info"})");
  INFO(r.dump());
  CHECK(r["id"] == id);
  CHECK(r["result"]["pid"].is_number_integer());
}

// An uncompressed tar (ustar) holding one regular file.
std::string MakeTar(const std::string& name, const std::string& content) {
  std::string header(512, '\0');
  auto put = [&](size_t off, size_t len, const std::string& v) {
    header.replace(off, std::min(len, v.size()), v.substr(0, len));
  };
  auto octal = [](uint64_t v, int digits) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%0*llo", digits,
                  static_cast<unsigned long long>(v));
    return std::string(buf);
  };
  put(0, 100, name);
  put(100, 8, octal(0644, 7));
  put(108, 8, octal(0, 7));
  put(116, 8, octal(0, 7));
  put(124, 12, octal(content.size(), 11));
  put(136, 12, octal(1'700'000'000, 11));
  put(148, 8, "        ");
  header[156] = '0';
  put(257, 6, std::string("ustar\0", 6));
  put(263, 2, "00");
  unsigned sum = 0;
  for (unsigned char ch : header) sum += ch;
  put(148, 8, octal(sum, 6) + std::string("\0 ", 2));
  std::string body =
      content + std::string((512 - content.size() % 512) % 512, '\0');
  return header + body + std::string(1024, '\0');
}

int OpenForPassing(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  return fd;
}

// Polls until the daemon has `want` fds open; returns the last count.
int WaitFdCount(pid_t pid, int want, int timeout_ms = 5'000) {
  int n = -1;
  support::WaitUntil([&] { return (n = OpenFdCount(pid)) == want; }, timeout_ms, 5);
  return n;
}

}  // namespace

TEST_CASE(
    "e2e protocol: malformed, unknown, invalid and wrongly typed "
    "requests get the right JSON-RPC error",
    "[e2e][protocol]") {
  TempDir dir;
  DaemonProcess d(dir);
  RawConn c(d.socket());

  SECTION("malformed JSON: -32700 with id null") {
    for (std::string_view bad :
         {std::string_view("{not json"),
          std::string_view("{\"jsonrpc\":\"2.0\",\"id\":1,"),
          std::string_view("\x01\xff\xfe garbage"),
          std::string_view("nul\0byte", 8)}) {
      Json r = c.Exchange(bad);
      CheckErrorShape(r, nullptr);
      CHECK(ErrorCode(r) == -32700);
    }
  }
  SECTION("unknown method: -32601 naming it") {
    Json r = c.Exchange(R"({"jsonrpc":"2.0","id":1,"method":"nope"})");
    CheckErrorShape(r, 1);
    CHECK(ErrorCode(r) == -32601);
    CHECK_THAT(ErrorMessage(r), Catch::Contains("nope"));
  }
  SECTION("wrong params: -32602 naming the param") {
    Json r = c.Exchange(
        R"({"jsonrpc":"2.0","id":2,"method":"app.show","params":{"name":5}})");
    CheckErrorShape(r, 2);
    CHECK(ErrorCode(r) == -32602);
    CHECK_THAT(ErrorMessage(r), Catch::Contains("name"));
    r = c.Exchange(
        R"({"jsonrpc":"2.0","id":"s","method":"app.show","params":{}})");
    CheckErrorShape(r, "s");
    CHECK(ErrorCode(r) == -32602);
    r = c.Exchange(
        R"({"jsonrpc":"2.0","id":3,"method":"history","params":{"limit":"all"}})");
    CheckErrorShape(r, 3);
    CHECK(ErrorCode(r) == -32602);
    r = c.Exchange(
        R"({"jsonrpc":"2.0","id":4,"method":"app.create","params":{"name":"ok","colour":"red"}})");
    CheckErrorShape(r, 4);
    CHECK(ErrorCode(r) == -32602);
    CHECK_THAT(ErrorMessage(r), Catch::Contains("colour"));
  }
  SECTION("invalid requests: -32600") {
    struct Case {
      const char* line;
      Json id;
    };
    const Case cases[] = {
        {R"({"jsonrpc":"1.0","id":1,"method":"daemon.info"})", 1},
        {R"({"id":2,"method":"daemon.info"})", 2},
        {R"({"jsonrpc":"2.0","id":3,"method":5})", 3},
        {R"({"jsonrpc":"2.0","id":4})", 4},
        {R"({"jsonrpc":"2.0","id":5,"method":"daemon.info","params":"x"})", 5},
        {R"({"jsonrpc":"2.0","id":{"a":1},"method":"daemon.info"})", nullptr},
        {R"(42)", nullptr},
        {R"("daemon.info")", nullptr},
    };
    for (const Case& k : cases) {
      Json r = c.Exchange(k.line);
      INFO(k.line);
      CheckErrorShape(r, k.id);
      CHECK(ErrorCode(r) == -32600);
    }
  }
  SECTION("a batch of 3 with one notification: 2 responses, ids matched") {
    Json r = c.Exchange(R"([{"jsonrpc":"2.0","id":1,"method":"daemon.info"},)"
                        R"({"jsonrpc":"2.0","method":"app.list"},)"
                        R"({"jsonrpc":"2.0","id":"b","method":"app.list"}])");
    INFO(r.dump());
    REQUIRE(r.is_array());
    REQUIRE(r.size() == 2);
    std::set<std::string> ids;
    for (const auto& one : r) {
      CHECK(one["jsonrpc"] == "2.0");
      CHECK(one.contains("result"));
      ids.insert(one["id"].dump());
    }
    CHECK(ids == std::set<std::string>{"1", "\"b\""});
    for (const auto& one : r)
      if (one["id"] == 1)
        CHECK(one["result"]["pid"] == d.pid());
      else
        CHECK(one["result"].is_array());
  }
  SECTION("a batch with an invalid member answers that member with -32600") {
    Json r =
        c.Exchange(R"([1, {"jsonrpc":"2.0","id":9,"method":"daemon.info"}])");
    INFO(r.dump());
    REQUIRE(r.is_array());
    REQUIRE(r.size() == 2);
    CheckErrorShape(r[0], nullptr);
    CHECK(ErrorCode(r[0]) == -32600);
    CHECK(r[1]["id"] == 9);
  }
  SECTION("an all-notification batch gets no response at all") {
    REQUIRE(c.Send(R"([{"jsonrpc":"2.0","method":"daemon.info"},)"
                   R"({"jsonrpc":"2.0","method":"nope"}])"
                   "\n"
                   R"({"jsonrpc":"2.0","id":99,"method":"daemon.info"})"
                   "\n"));
    auto line = c.ReadLine();
    REQUIRE(line);
    Json r = Json::parse(*line);
    INFO(r.dump());
    REQUIRE(r.is_object());
    CHECK(r["id"] == 99);
    CHECK(r.contains("result"));
  }
  SECTION(
      "a single notification, even of an unknown method, gets no response") {
    REQUIRE(
        c.Send("{\"jsonrpc\":\"2.0\",\"method\":\"nope\"}\n"
               "{\"jsonrpc\":\"2.0\",\"method\":\"daemon.info\"}\n"));
    CheckStillServes(c, 100);
  }
  SECTION("a notification still does its work") {
    REQUIRE(c.Send(
        R"({"jsonrpc":"2.0","method":"app.create","params":{"name":"quiet"}})"
        "\n"));
    Json r = c.Exchange(
        R"({"jsonrpc":"2.0","id":5,"method":"app.show","params":{"name":"quiet"}})");
    INFO(r.dump());
    CHECK(r["result"]["name"] == "quiet");
  }
  SECTION("an empty batch: one -32600 error, not an array") {
    Json r = c.Exchange("[]");
    CheckErrorShape(r, nullptr);
    CHECK(ErrorCode(r) == -32600);
  }
  SECTION("CRLF line endings and blank lines are accepted") {
    REQUIRE(c.Send(
        "\n   "
        "\n{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"daemon.info\"}\r\n"));
    auto line = c.ReadLine();
    REQUIRE(line);
    Json r = Json::parse(*line);
    CHECK(r["id"] == 6);
    CHECK(r.contains("result"));
  }
  SECTION(
      "a last request without newline before EOF is answered, then the "
      "connection ends") {
    REQUIRE(c.Send(R"({"jsonrpc":"2.0","id":8,"method":"daemon.info"})"));
    c.CloseWrite();
    auto line = c.ReadLine();
    REQUIRE(line);
    CHECK(Json::parse(*line)["id"] == 8);
    CHECK(c.WaitEnd() == RawConn::End::kEof);
    RawConn other(d.socket());
    CheckStillServes(other, 101);
    return;
  }
  // The same connection keeps working after every bad request above.
  CheckStillServes(c, 100);
  RawConn other(d.socket());
  CheckStillServes(other, 101);
}

TEST_CASE(
    "e2e protocol: an oversized request gets an error naming "
    "max_request_bytes, its connection is closed, others carry on",
    "[e2e][protocol]") {
  TempDir dir;
  const std::string cfg =
      dir.WriteFile("relsupd.yaml", "max_request_bytes: 4096\n");
  DaemonProcess d(dir, {.config = cfg});
  RawConn bystander(d.socket());
  CheckStillServes(bystander, 1);

  SECTION("8 KiB without a newline") {
    RawConn big(d.socket());
    REQUIRE(big.Send(std::string(8 * 1024, '{')));
    auto line = big.ReadLine();
    REQUIRE(line);
    Json r = Json::parse(*line, nullptr, false);
    CheckErrorShape(r, nullptr);
    CHECK_THAT(ErrorMessage(r), Catch::Contains("max_request_bytes"));
    CHECK_THAT(ErrorMessage(r), Catch::Contains("4096"));
    CHECK(big.WaitEnd() == RawConn::End::kEof);
  }
  SECTION("8 KiB in one line, after a good request on the same connection") {
    RawConn big(d.socket());
    CheckStillServes(big, 2);
    std::string pad(8 * 1024, 'x');
    REQUIRE(big.Send(
        R"({"jsonrpc":"2.0","id":3,"method":"daemon.info","params":{"p":")" +
        pad + "\"}}\n"));
    auto line = big.ReadLine();
    REQUIRE(line);
    CHECK_THAT(*line, Catch::Contains("max_request_bytes"));
    CHECK(big.WaitEnd() == RawConn::End::kEof);
  }
  SECTION("1 MiB: the error arrives although the client is still sending") {
    RawConn big(d.socket());
    // The daemon stops reading after 4 KiB and hangs up, so this send may
    // fail part-way (EPIPE); the answer must be there all the same.
    big.Send(std::string(1 << 20, 'x'));
    auto line = big.ReadLine();
    REQUIRE(line);
    CHECK_THAT(*line, Catch::Contains("max_request_bytes"));
    RawConn::End end = big.WaitEnd();
    CHECK((end == RawConn::End::kEof || end == RawConn::End::kReset));
  }
  SECTION("a request under the limit passes") {
    RawConn ok(d.socket());
    std::string pad(3'000, 'x');
    Json r = ok.Exchange(
        R"({"jsonrpc":"2.0","id":4,"method":"daemon.info","params":{"p":")" +
        pad + "\"}}");
    CHECK(r["id"] == 4);
    CHECK(r.contains("result"));
  }
  CheckStillServes(bystander, 5);
  RawConn later(d.socket());
  CheckStillServes(later, 6);
  CHECK(d.running());
}

TEST_CASE("e2e protocol: silent and slow clients do not delay another client",
          "[e2e][protocol][latency]") {
  TempDir dir;
  DaemonProcess d(dir);

  // Fifty clients that connect and say nothing.
  std::vector<std::unique_ptr<RawConn>> silent;
  for (int i = 0; i < 50; ++i)
    silent.push_back(std::make_unique<RawConn>(d.socket()));
  // A client that sends one byte every 50 ms, from its own thread.
  RawConn slow(d.socket());
  const std::string slow_request =
      R"({"jsonrpc":"2.0","id":77,"method":"daemon.info"})"
      "\n";
  std::atomic<size_t> slow_sent{0};
  std::atomic<bool> slow_ok{true};
  std::thread slow_thread([&] {
    for (char ch : slow_request) {
      if (!slow.Send(std::string(1, ch))) {
        slow_ok = false;
        return;
      }
      ++slow_sent;
      // The slow client's pace; nothing waits on this for correctness.
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  struct Joiner {
    std::thread& t;
    ~Joiner() {
      if (t.joinable()) t.join();
    }
  } joiner{slow_thread};

  // Start once the slow client is part-way into its request.
  const int64_t deadline = NowMs() + 5'000;
  while (slow_sent < 2 && NowMs() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  REQUIRE(slow_sent >= 2);

  auto client = Client::Connect(d.socket());
  REQUIRE(client.ok());
  int64_t worst = 0;
  for (int i = 0; i < 100; ++i) {
    const int64_t start = NowMs();
    auto r = client->Call("daemon.info");
    const int64_t took = NowMs() - start;
    worst = std::max(worst, took);
    INFO("call " << i << " took " << took << " ms");
    REQUIRE(r.ok());
    CHECK(took < 200);
  }
  INFO("worst daemon.info latency: " << worst << " ms");
  // The calls really overlapped the slow request.
  CHECK(slow_sent < slow_request.size());

  slow_thread.join();
  CHECK(slow_ok);
  auto line = slow.ReadLine(5'000);
  REQUIRE(line);
  Json r = Json::parse(*line);
  CHECK(r["id"] == 77);
  CHECK(r["result"]["pid"] == d.pid());
  // The silent ones are still connected and served when they speak.
  for (auto& s : silent) CheckStillServes(*s, 78);
}

}  // namespace relsupd::e2e

namespace relsupd::e2e {

TEST_CASE(
    "e2e protocol: files passed over the socket are closed by the "
    "daemon, and too many end the connection",
    "[e2e][protocol][fds]") {
  TempDir dir;
  DaemonProcess d(dir);
  // A connection that stays open, so the baseline counts one connection.
  RawConn probe(d.socket());
  CheckStillServes(probe, 1);
  const int baseline = OpenFdCount(d.pid());
  const std::string file = dir.WriteFile("payload", "x");
  const std::string info = R"({"jsonrpc":"2.0","id":2,"method":"daemon.info"})"
                           "\n";

  SECTION("files sent with a request that takes none") {
    {
      RawConn c(d.socket());
      std::vector<int> fds = {OpenForPassing(file), OpenForPassing(file),
                              OpenForPassing(file)};
      REQUIRE(c.SendWithFds(info, fds));
      for (int fd : fds) ::close(fd);
      auto line = c.ReadLine();
      REQUIRE(line);
      CHECK(Json::parse(*line)["id"] == 2);
    }
    // Once the client is gone, nothing of it stays open in the daemon.
    CHECK(WaitFdCount(d.pid(), baseline) == baseline);
  }
  SECTION("more files than a connection may hold") {
    for (int count : {9, 40}) {
      RawConn c(d.socket());
      std::vector<int> fds;
      for (int i = 0; i < count; ++i) fds.push_back(OpenForPassing(file));
      c.SendWithFds(info, fds);
      for (int fd : fds) ::close(fd);
      // Dropped without an answer, or after one: either way it ends.
      while (c.ReadLine(2'000)) {
      }
      RawConn::End end = c.WaitEnd(2'000);
      INFO(count << " fds");
      CHECK((end == RawConn::End::kEof || end == RawConn::End::kReset));
      CHECK(WaitFdCount(d.pid(), baseline) == baseline);
    }
  }
  CheckStillServes(probe, 3);
}

// Passed files used to queue per connection: a request refused before it
// took its file left it queued, and the next request on the connection
// imported that stale file instead of its own.
TEST_CASE(
    "e2e protocol: a file passed with a refused request is never "
    "used by a later request",
    "[e2e][protocol][fds]") {
  TempDir dir;
  DaemonProcess d(dir);
  CtlOk(d.socket(), {"app", "create", "shop"});
  const std::string a_tar = MakeTar("file", "A\n");
  const std::string b_tar = MakeTar("file", "B\n");
  const std::string a = dir.WriteFile("a.tar", a_tar);
  const std::string b = dir.WriteFile("b.tar", b_tar);

  RawConn c(d.socket());
  int fd_a = OpenForPassing(a);
  REQUIRE(c.SendWithFds(R"({"jsonrpc":"2.0","id":1,"method":"build.import",)"
                        R"("params":{"app":"shop","typo":1}})"
                        "\n",
                        {fd_a}));
  ::close(fd_a);
  auto refused = c.ReadLine();
  REQUIRE(refused);
  INFO(*refused);
  CHECK(ErrorCode(Json::parse(*refused)) == -32602);

  int fd_b = OpenForPassing(b);
  REQUIRE(c.SendWithFds(R"({"jsonrpc":"2.0","id":2,"method":"build.import",)"
                        R"("params":{"app":"shop"}})"
                        "\n",
                        {fd_b}));
  ::close(fd_b);
  auto imported = c.ReadLine(10'000);
  REQUIRE(imported);
  Json r = Json::parse(*imported);
  INFO(r.dump());
  REQUIRE(r.contains("result"));
  CHECK(r["result"]["sha256"] == Sha256Hex(b_tar));
  CHECK(r["result"]["sha256"] != Sha256Hex(a_tar));
}

}  // namespace relsupd::e2e

namespace relsupd::e2e {
namespace {

// User + system CPU time of `pid` so far, in milliseconds.
int64_t CpuTimeMs(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)),
                   std::istreambuf_iterator<char>());
  // Fields after "(comm)": state is field 3; utime and stime are 14 and 15.
  std::istringstream rest(stat.substr(stat.rfind(')') + 2));
  std::vector<std::string> fields((std::istream_iterator<std::string>(rest)),
                                  std::istream_iterator<std::string>());
  REQUIRE(fields.size() > 12);
  const int64_t ticks = std::stoll(fields[11]) + std::stoll(fields[12]);
  return ticks * 1000 / ::sysconf(_SC_CLK_TCK);
}

size_t CountOccurrences(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t pos = text.find(what); pos != std::string::npos;
       pos = text.find(what, pos + what.size()))
    ++n;
  return n;
}

}  // namespace

// FIXME: fails today. When accept4 fails with EMFILE the pending connection
// stays in the backlog, the level-triggered listener poll fires again at
// once, and the loop spins at full CPU writing one warning per turn.
TEST_CASE(
    "e2e protocol: out of fds, the daemon neither spins nor floods its "
    "log, keeps serving its connections, and recovers",
    "[e2e][protocol][limits]") {
  TempDir dir;
  DaemonProcess d(dir, {.max_open_files = 64});
  RawConn early(d.socket());
  CheckStillServes(early, 1);

  // Far more clients than the daemon has fds for; the surplus waits in the
  // listen backlog.
  std::vector<std::unique_ptr<RawConn>> flood;
  for (int i = 0; i < 100; ++i)
    flood.push_back(std::make_unique<RawConn>(d.socket()));

  const int64_t cpu_before = CpuTimeMs(d.pid());
  const int64_t start = NowMs();
  // The connection accepted before still gets answers meanwhile.
  for (int i = 0; i < 10; ++i) CheckStillServes(early, 2 + i);
  while (NowMs() - start < 500)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  const int64_t cpu_used = CpuTimeMs(d.pid()) - cpu_before;
  const int64_t wall = NowMs() - start;
  INFO("daemon used " << cpu_used << " ms of CPU in " << wall << " ms");
  CHECK(cpu_used < wall / 4);
  const size_t warnings = CountOccurrences(d.Log(), "accept failed");
  INFO(warnings << " accept warnings");
  CHECK(warnings < 20);

  // Once clients leave, new ones are served again.
  flood.clear();
  RawConn later(d.socket());
  REQUIRE(later.Send(R"({"jsonrpc":"2.0","id":50,"method":"daemon.info"})"
                     "\n"));
  auto line = later.ReadLine(5'000);
  REQUIRE(line);
  CHECK(Json::parse(*line)["id"] == 50);
}

}  // namespace relsupd::e2e
