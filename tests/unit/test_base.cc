#include <catch2/catch.hpp>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <netinet/in.h>
#include <sys/un.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <future>
#include <span>
#include <vector>

#include "daemon/base/paths.h"
#include "daemon/base/suggest.h"
#include "daemon/base/byte_size.h"
#include "daemon/base/clock.h"
#include "daemon/base/duration.h"
#include "daemon/base/env_file.h"
#include "daemon/base/event_feed.h"
#include "daemon/base/fd.h"
#include "daemon/base/fd_closer.h"
#include "daemon/base/fd_passing.h"
#include "daemon/base/lock.h"
#include "daemon/base/sha256.h"
#include "daemon/base/socket_address.h"
#include "daemon/base/status.h"
#include "daemon/base/users.h"
#include "daemon/base/uv_work.h"
#include "tests/support/sockets.h"
#include "tests/support/temp_dir.h"

namespace relsupd {
namespace {

using support::Pipe;
using support::TempDir;

Result<int> Half(int x) {
  if (x % 2 != 0) return InvalidArgument("odd");
  return x / 2;
}

Status Quarter(int x, int* out) {
  ASSIGN_OR_RETURN(int h, Half(x));
  ASSIGN_OR_RETURN(*out, Half(h));
  return Status::Ok();
}

TEST_CASE("Status and Result carry codes, messages and context") {
  Status s = NotFound("app 'x' does not exist").WithContext("show");
  CHECK(s.code() == StatusCode::kNotFound);
  CHECK(s.message() == "show: app 'x' does not exist");
  Status e = Status::FromErrno("cannot open 'f'", ENOENT);
  CHECK(e.code() == StatusCode::kNotFound);
  CHECK(e.message() == "cannot open 'f': No such file or directory");
  CHECK(e.error_number() == ENOENT);
  int out = 0;
  CHECK(Quarter(8, &out).ok());
  CHECK(out == 2);
  CHECK(Quarter(6, &out).code() == StatusCode::kInvalidArgument);
}

TEST_CASE("durations parse and format") {
  CHECK(*ParseDurationMs("500ms") == 500);
  CHECK(*ParseDurationMs("10s") == 10'000);
  CHECK(*ParseDurationMs("2m") == 120'000);
  CHECK(*ParseDurationMs("1h") == 3'600'000);
  CHECK(*ParseDurationMs("1m30s") == 90'000);
  CHECK(*ParseDurationMs("7") == 7'000);
  for (const char* bad : {"", "s", "10x", "-1s", "1.5s", "10 s", "5s7", "0s5"})
    CHECK_FALSE(ParseDurationMs(bad).ok());
  CHECK(*ParseDurationMs("1000000000h") == int64_t{3'600'000'000'000'000});
  CHECK(ParseDurationMs("10x").status().message().find("'10x'") !=
        std::string::npos);
  CHECK(FormatDurationMs(90'000) == "1m30s");
  CHECK(FormatDurationMs(500) == "500ms");
  CHECK(FormatDurationMs(3'600'000) == "1h");
}

// Found while writing tests/fuzz/fuzz_duration (its inputs are too short
// to reach it): the sum of many maximal terms overflowed int64 (UBSan:
// signed integer overflow).
TEST_CASE("a duration of many maximal terms is refused, not overflowed") {
  std::string text;
  for (int i = 0; i < 3000; ++i) text += "1000000000h";
  auto r = ParseDurationMs(text);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message().find("longer than 1000000000h") != std::string::npos);
  CHECK(*ParseDurationMs("999999999h60m") == int64_t{3'600'000'000'000'000});
  CHECK_FALSE(ParseDurationMs("999999999h61m").ok());
}

TEST_CASE("env files: comments, export, quotes, and the line of an error") {
  auto pairs = ParseEnvFile(
      "# comment\n\nA=1\n  export B=\"two words\"\r\nC='x'\nD=\nE=\"\nF=a=b\n", "app.env");
  REQUIRE(pairs.ok());
  using P = std::pair<std::string, std::string>;
  CHECK(*pairs == std::vector<P>{{"A", "1"}, {"B", "two words"}, {"C", "x"},
                                 {"D", ""}, {"E", "\""}, {"F", "a=b"}});
  auto bad = ParseEnvFile("A=1\n=x\n", "app.env");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().message() == "app.env:2: expected KEY=VALUE");
  CHECK_FALSE(ParseEnvFile("novalue", "f").ok());
  CHECK(ParseEnvFile("", "f")->empty());
}

// Found by tests/fuzz/fuzz_duration (corpus/duration/format_roundtrip_*):
// a duration over 1,000,000,000 ms and not whole seconds was formatted as
// one number of ms, which ParseDurationMs refuses.
TEST_CASE("every parsed duration formats to text that reads back") {
  auto ms = ParseDurationMs("1h1ms71117112s");
  REQUIRE(ms.ok());
  CHECK(*ms == 71'120'712'001);
  CHECK(FormatDurationMs(*ms) == "19755h45m12s1ms");
  auto back = ParseDurationMs(FormatDurationMs(*ms));
  REQUIRE(back.ok());
  CHECK(*back == *ms);
  CHECK(FormatDurationMs(1'500) == "1500ms");
  CHECK(FormatDurationMs(1'000'000'000 + 1) == "277h46m40s1ms");
}

TEST_CASE("elapsed times format for people in at most two units") {
  CHECK(FormatElapsed(0) == "-");
  CHECK(FormatElapsed(-5) == "-");
  CHECK(FormatElapsed(850) == "850ms");
  CHECK(FormatElapsed(7'999) == "7s");
  CHECK(FormatElapsed(60'000) == "1m");
  CHECK(FormatElapsed(607'563) == "10m7s");  // was "607563 ms" in `ctl info`
  CHECK(FormatElapsed(3 * 3'600'000 + 4 * 60'000 + 59'999) == "3h4m");
  CHECK(FormatElapsed(2 * 86'400'000LL + 5 * 3'600'000) == "2d5h");
  CHECK(FormatElapsed(86'400'000) == "1d");
}

TEST_CASE("files are opened close-on-exec and written atomically") {
  TempDir dir;
  const std::string path = dir.path() + "/state";
  REQUIRE(WriteFileAtomic(path, "hello", 0600).ok());
  CHECK(*ReadFile(path, 100) == "hello");
  CHECK_FALSE(std::filesystem::exists(path + ".new"));
  struct stat st;
  REQUIRE(stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(ReadFile(path, 3).status().code() == StatusCode::kInvalidArgument);
  auto fd = OpenFile(path, O_RDONLY);
  REQUIRE(fd.ok());
  CHECK((fcntl(fd->get(), F_GETFD) & FD_CLOEXEC) != 0);
  CHECK(OpenFile(dir.path() + "/missing", O_RDONLY).status().code() ==
        StatusCode::kNotFound);
}

TEST_CASE("MakeDirs creates parents and refuses a file in the way") {
  TempDir dir;
  CHECK(MakeDirs(dir.path() + "/a/b/c", 0750).ok());
  CHECK(std::filesystem::is_directory(dir.path() + "/a/b/c"));
  CHECK(MakeDirs(dir.path() + "/a/b/c", 0750).ok());
  REQUIRE(WriteFileAtomic(dir.path() + "/f", "", 0600).ok());
  CHECK(MakeDirs(dir.path() + "/f", 0750).code() ==
        StatusCode::kFailedPrecondition);
}

TEST_CASE("a state dir lock is exclusive across processes") {
  TempDir dir;
  auto lock = LockDirectory(dir.path());
  REQUIRE(lock.ok());
  CHECK((fcntl(lock->get(), F_GETFD) & FD_CLOEXEC) != 0);
  // flock locks belong to the open file description, so a second one in
  // the same process conflicts just as another process would.
  auto second = LockDirectory(dir.path());
  REQUIRE_FALSE(second.ok());
  CHECK(second.status().code() == StatusCode::kBusy);
  CHECK(second.status().message().find("pid " + std::to_string(getpid())) !=
        std::string::npos);
  lock->Reset();
  CHECK(LockDirectory(dir.path()).ok());
}

TEST_CASE("sha256 matches the known vector") {
  CHECK(Sha256Hex("abc") ==
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  Sha256 h;
  h.Update("a");
  h.Update("bc");
  CHECK(h.HexDigest() == Sha256Hex("abc"));
}

TEST_CASE("off-loop jobs count as in flight until their done callback returns") {
  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  size_t before = InFlightWork();
  std::promise<void> go;
  std::shared_future<void> released = go.get_future().share();
  std::vector<size_t> seen_in_done;
  for (int i = 0; i < 2; ++i)
    RunOffLoop<int>(
        &loop, [released, i] { released.wait(); return i; },
        [&](int) { seen_in_done.push_back(InFlightWork()); });
  CHECK(InFlightWork() == before + 2);
  // Nothing finishes while the work is held: the loop has nothing to run.
  uv_run(&loop, UV_RUN_NOWAIT);
  CHECK(InFlightWork() == before + 2);
  go.set_value();
  uv_run(&loop, UV_RUN_DEFAULT);  // returns once both done callbacks ran
  REQUIRE(seen_in_done.size() == 2);
  // Each job still counts while its own done runs.
  CHECK(seen_in_done[0] == before + 2);
  CHECK(seen_in_done[1] == before + 1);
  CHECK(InFlightWork() == before);
  CHECK(uv_loop_close(&loop) == 0);
}

TEST_CASE("times format as RFC 3339 UTC") {
  CHECK(FormatTimeUtc(0) == "1970-01-01T00:00:00.000Z");
  CHECK(FormatTimeUtc(1'795'000'000'123) == "2026-11-18T11:06:40.123Z");
}

// The message ParseSocketAddress refuses `text` with ("" when it parses).
std::string AddressError(const std::string& text) {
  return ParseSocketAddress(text).status().message();
}

TEST_CASE("paths join without doubling a slash, and the notify socket lies beside the control socket") {
  CHECK(JoinPath("/a", "b") == "/a/b");
  CHECK(JoinPath("/a/", "b") == "/a/b");
  CHECK(JoinPath("", "b") == "b");
  CHECK(JoinPath(".", "b") == "b");
  CHECK(NotifySocketPath("/run/relsupd/relsupd.sock") == "/run/relsupd/app-notify.sock");
  CHECK(NotifySocketPath("/relsupd.sock") == "/app-notify.sock");
  CHECK(NotifySocketPath("relsupd.sock") == "app-notify.sock");
  CHECK(NotifySocketPath("run/x.sock") == "run/app-notify.sock");
}

TEST_CASE("socket addresses parse into kind, host, port and path") {
  auto v4 = ParseSocketAddress("tcp://0.0.0.0:8080");
  REQUIRE(v4.ok());
  CHECK(v4->kind == SocketAddress::Kind::kTcp);
  CHECK(v4->family == AF_INET);
  CHECK(v4->host == "0.0.0.0");
  CHECK(v4->port == 8080);
  CHECK(v4->ToString() == "tcp://0.0.0.0:8080");
  sockaddr_storage ss{};
  CHECK(v4->ToSockaddr(&ss) == sizeof(sockaddr_in));
  CHECK(ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port) == 8080);

  auto v6 = ParseSocketAddress("tcp://[::1]:80");
  REQUIRE(v6.ok());
  CHECK(v6->family == AF_INET6);
  CHECK(v6->host == "::1");
  CHECK(v6->port == 80);
  CHECK(v6->ToString() == "tcp://[::1]:80");
  CHECK(v6->ToSockaddr(&ss) == sizeof(sockaddr_in6));
  CHECK(ss.ss_family == AF_INET6);

  // A port written with leading zeros prints as its number.
  CHECK(ParseSocketAddress("tcp://127.0.0.1:0080")->ToString() ==
        "tcp://127.0.0.1:80");

  auto un = ParseSocketAddress("unix:/run/shop.sock");
  REQUIRE(un.ok());
  CHECK(un->kind == SocketAddress::Kind::kUnix);
  CHECK(un->path == "/run/shop.sock");
  CHECK(un->ToString() == "unix:/run/shop.sock");
  CHECK(un->ToSockaddr(&ss) == sizeof(sockaddr_un));
  CHECK(std::string(reinterpret_cast<sockaddr_un*>(&ss)->sun_path) ==
        "/run/shop.sock");
  // The longest path sun_path holds with its NUL.
  CHECK(ParseSocketAddress("unix:/" + std::string(106, 'x')).ok());
  // A NUL inside would make the bound path differ from the checked one.
  CHECK(AddressError(std::string("unix:/run/a\0/../relsupd.sock", 28)).find("has a NUL byte") !=
        std::string::npos);
}

TEST_CASE("a bad socket address is refused with a message naming it") {
  // Each row: the address, and what the message says after
  // "socket address 'ADDRESS' ".
  const std::string kMustBe = "must be tcp://HOST:PORT or unix:/PATH";
  const std::string kNotPort = "', not a number from 1 to 65535";
  const std::string kNotV4 =
      "', not an IPv4 address or a bracketed IPv6 address";
  auto [address, why] = GENERATE_COPY(table<std::string, std::string>({
      {"", kMustBe},
      {"ftp://x:1", kMustBe},
      {"udp://1.2.3.4:5", kMustBe},
      {"unix:", "needs an absolute path"},
      {"unix:relative", "needs an absolute path"},
      {"unix:/" + std::string(107, 'x'), "has a path longer than 107 bytes"},
      {"unix:/run/./relsupd.sock", "has a '.' component in its path"},
      {"unix:/run/shop/../relsupd/relsupd.sock", "has a '..' component in its path"},
      {"unix:/..", "has a '..' component in its path"},
      {"unix:/run/shop/", "names a directory, not a socket file"},
      {"unix:/", "names a directory, not a socket file"},
      {"tcp://0.0.0.0", "has no port"},
      {"tcp://0.0.0.0:", "has port '" + kNotPort},
      {"tcp://0.0.0.0:0", "has port '0" + kNotPort},
      {"tcp://0.0.0.0:65536", "has port '65536" + kNotPort},
      {"tcp://0.0.0.0:123456", "has port '123456" + kNotPort},
      {"tcp://0.0.0.0:-1", "has port '-1" + kNotPort},
      {"tcp://example.com:80", "has host 'example.com" + kNotV4},
      {"tcp://::1:80", "has host '::1" + kNotV4},
      {"tcp://[1.2.3.4]:80", "has host '[1.2.3.4]', not an IPv6 address"},
  }));
  INFO(address);
  CHECK(AddressError(address) == "socket address '" + address + "' " + why);
}

// A connected pair of Unix sockets of `type`.
std::pair<Fd, Fd> SocketPair(int type) {
  int sp[2];
  REQUIRE(::socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sp) == 0);
  return {Fd(sp[0]), Fd(sp[1])};
}

bool SameFile(int a, int b) {
  struct stat sa, sb;
  REQUIRE(::fstat(a, &sa) == 0);
  REQUIRE(::fstat(b, &sb) == 0);
  return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

bool Cloexec(int fd) { return (::fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0; }

TEST_CASE("SendFds and ReceiveFds pass open files, in order, close-on-exec") {
  auto type = GENERATE(SOCK_STREAM, SOCK_SEQPACKET, SOCK_DGRAM);
  INFO("socket type " << type);
  auto [a, b] = SocketPair(type);
  Pipe p1, p2;
  // Sent without FD_CLOEXEC: the received ones get it from the receiver.
  const int sent_fds[] = {p1.write_end.get(), p2.write_end.get(), p1.read_end.get()};
  REQUIRE(::fcntl(p2.write_end.get(), F_SETFD, 0) == 0);
  Result<size_t> sent =
      SendFds(a.get(), "hello", sent_fds, MSG_NOSIGNAL, "the test line");
  REQUIRE(sent.ok());
  CHECK(*sent == 5);

  char buf[16];
  std::vector<Fd> fds;
  fds.emplace_back();  // received fds are appended after what is there
  Result<ReceivedFds> got = ReceiveFds(b.get(), buf, MSG_DONTWAIT, 3, &fds);
  REQUIRE(got.ok());
  CHECK(got->bytes == 5);
  CHECK(std::string_view(buf, got->bytes) == "hello");
  CHECK_FALSE(got->truncated);
  REQUIRE(fds.size() == 4);
  CHECK_FALSE(fds[0].valid());
  for (size_t i = 0; i < 3; ++i) {
    INFO("fd " << i);
    CHECK(fds[i + 1].get() != sent_fds[i]);  // a new number for the same file
    CHECK(SameFile(fds[i + 1].get(), sent_fds[i]));
    CHECK(Cloexec(fds[i + 1].get()));
  }
  // A received write end writes into the sender's pipe.
  REQUIRE(::write(fds[2].get(), "x", 1) == 1);
  char c = 0;
  CHECK(::read(p2.read_end.get(), &c, 1) == 1);
  CHECK(c == 'x');
}

TEST_CASE("ReceiveFds: data without files, the end of a stream, and errors") {
  auto [a, b] = SocketPair(SOCK_STREAM);
  char buf[16];
  std::vector<Fd> fds;
  // Nothing there yet: EAGAIN, named.
  Result<ReceivedFds> none = ReceiveFds(b.get(), buf, MSG_DONTWAIT, 4, &fds);
  REQUIRE_FALSE(none.ok());
  CHECK(none.status().error_number() == EAGAIN);
  CHECK(none.status().message() == "cannot receive on fd " +
                                       std::to_string(b.get()) + ": " +
                                       std::strerror(EAGAIN));

  REQUIRE(SendFds(a.get(), "ab", {}, MSG_NOSIGNAL, "x").ok());
  Result<ReceivedFds> got = ReceiveFds(b.get(), buf, MSG_DONTWAIT, 4, &fds);
  REQUIRE(got.ok());
  CHECK(got->bytes == 2);
  CHECK_FALSE(got->truncated);
  CHECK(fds.empty());

  a.Reset();
  got = ReceiveFds(b.get(), buf, MSG_DONTWAIT, 4, &fds);
  REQUIRE(got.ok());
  CHECK(got->bytes == 0);
  // The peer is gone: EPIPE (and no SIGPIPE), named.
  Pipe p;
  const int one[] = {p.write_end.get()};
  Result<size_t> sent = SendFds(b.get(), "z", one, MSG_NOSIGNAL, "to the peer");
  REQUIRE_FALSE(sent.ok());
  CHECK(sent.status().error_number() == EPIPE);
  CHECK(sent.status().message() ==
        std::string("cannot send to the peer: ") + std::strerror(EPIPE));
}

TEST_CASE(
    "ReceiveFds refuses a message with too many files whole, and closes them") {
  // max_fds 1 leaves room for 2 in the control buffer (CMSG_SPACE rounds
  // up): the kernel installs both, the count refuses them. max_fds 2 has
  // room for exactly 2: the kernel truncates (MSG_CTRUNC) and closes the
  // third itself. Either way no fd of the message is kept, and each is
  // closed: the pipes' write ends, sent and then closed by the sender,
  // are closed everywhere.
  auto [max_fds, count] =
      GENERATE(table<size_t, size_t>({{1, 2}, {2, 3}, {0, 1}}));
  INFO(max_fds << " taken, " << count << " sent");
  auto [a, b] = SocketPair(SOCK_STREAM);
  std::vector<Pipe> pipes(count);
  std::vector<int> sent_fds;
  for (auto& p : pipes) sent_fds.push_back(p.write_end.get());
  REQUIRE(SendFds(a.get(), "m", sent_fds, MSG_NOSIGNAL, "x").ok());
  for (auto& p : pipes) p.write_end.Reset();
  for (auto& p : pipes) CHECK_FALSE(p.HungUp());  // in flight

  char buf[4];
  std::vector<Fd> fds;
  Result<ReceivedFds> got =
      ReceiveFds(b.get(), buf, MSG_DONTWAIT, max_fds, &fds);
  REQUIRE(got.ok());
  CHECK(got->bytes == 1);
  CHECK(got->truncated);
  CHECK(fds.empty());
  for (auto& p : pipes) CHECK(p.HungUp());
}

TEST_CASE("ReceiveFds hands the files it refuses to a closer when given one") {
  auto [a, b] = SocketPair(SOCK_SEQPACKET);
  std::vector<Pipe> pipes(3);
  std::vector<int> sent_fds;
  for (auto& p : pipes) sent_fds.push_back(p.write_end.get());
  REQUIRE(SendFds(a.get(), "m", sent_fds, MSG_NOSIGNAL, "x").ok());
  for (auto& p : pipes) p.write_end.Reset();
  std::vector<Fd> fds;
  {
    FdCloser closer;
    char buf[4];
    Result<ReceivedFds> got =
        ReceiveFds(b.get(), buf, MSG_DONTWAIT, 2, &fds, &closer);
    REQUIRE(got.ok());
    CHECK(got->truncated);
    CHECK(fds.empty());
  }  // the closer finishes its queue
  for (auto& p : pipes) CHECK(p.HungUp());
}

TEST_CASE("ReceiveFds with MSG_PEEK gives copies and leaves the files queued") {
  auto [a, b] = SocketPair(SOCK_STREAM);
  Pipe p;
  const int one[] = {p.write_end.get()};
  REQUIRE(SendFds(a.get(), "line\n", one, MSG_NOSIGNAL, "x").ok());
  p.write_end.Reset();
  char buf[16];
  {
    std::vector<Fd> copies;
    Result<ReceivedFds> peeked =
        ReceiveFds(b.get(), buf, MSG_DONTWAIT | MSG_PEEK, 1, &copies);
    REQUIRE(peeked.ok());
    CHECK(peeked->bytes == 5);
    REQUIRE(copies.size() == 1);
    CHECK(Cloexec(copies[0].get()));
  }
  CHECK_FALSE(p.HungUp());  // the socket still holds it
  std::vector<Fd> fds;
  Result<ReceivedFds> got = ReceiveFds(b.get(), buf, MSG_DONTWAIT, 1, &fds);
  REQUIRE(got.ok());
  CHECK(std::string_view(buf, got->bytes) == "line\n");
  REQUIRE(fds.size() == 1);
  fds.clear();
  CHECK(p.HungUp());
}

}  // namespace
}  // namespace relsupd

namespace relsupd {
namespace {

TEST_CASE("byte sizes read as systemd's MemoryMax= does, and every bad one says why") {
  CHECK(*ParseByteSize("65536") == 65536);
  CHECK(*ParseByteSize("512K") == 512u << 10);
  CHECK(*ParseByteSize("64M") == 64u << 20);
  CHECK(*ParseByteSize("64MiB") == 64u << 20);
  CHECK(*ParseByteSize("64mb") == 64u << 20);
  CHECK(*ParseByteSize("1G") == uint64_t{1} << 30);
  CHECK(*ParseByteSize("1.5G") == uint64_t{3} << 29);
  CHECK(*ParseByteSize("2T") == uint64_t{2} << 40);
  CHECK(*ParseByteSize("100B") == 100);
  for (const char* bad : {"", "M", "-1", "0", "0M", "1.5", "12X", "1..5G", "1.G", "1Gx",
                          "2048T", "99999999999999999999"}) {
    INFO(bad);
    auto r = ParseByteSize(bad);
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.status().message(), Catch::StartsWith("'" + std::string(bad) + "' is not a size ("));
  }
  CHECK(FormatByteSize(64u << 20) == "64M");
  CHECK(FormatByteSize(uint64_t{1} << 30) == "1G");
  CHECK(FormatByteSize(1000) == "1000");
  CHECK(FormatByteSize(1536) == "1536");
  CHECK(*ParseByteSize(FormatByteSize(uint64_t{3} << 40)) == uint64_t{3} << 40);
}

}  // namespace
}  // namespace relsupd

namespace relsupd {
namespace {

TEST_CASE("ParseSince takes a duration back from now, or an RFC 3339 or local time") {
  const int64_t now = 1'795'000'000'000;  // 2026-11-18T11:06:40Z
  CHECK(ParseSince("2s", now).value() == now - 2'000);
  CHECK(ParseSince("1h30m", now).value() == now - 5'400'000);
  CHECK(ParseSince("90", now).value() == now - 90'000);
  CHECK(ParseSince("2026-11-18T11:06:40Z", now).value() == now);
  CHECK(ParseSince("2026-11-18T11:06:40.25Z", now).value() == now + 250);
  CHECK(ParseSince("2026-11-18t12:06:40+01:00", now).value() == now);
  CHECK(ParseSince("2026-11-18T10:36:40-00:30", now).value() == now);
  // Local time: the same wall time mktime gives.
  struct tm tm{};
  tm.tm_year = 126;
  tm.tm_mon = 10;
  tm.tm_mday = 18;
  tm.tm_hour = 9;
  tm.tm_min = 5;
  tm.tm_isdst = -1;
  const int64_t local = static_cast<int64_t>(mktime(&tm)) * 1000;
  CHECK(ParseSince("2026-11-18 09:05", now).value() == local);
  CHECK(ParseSince("2026-11-18 09:05:00", now).value() == local);
  tm.tm_hour = 0;
  tm.tm_min = 0;
  tm.tm_isdst = -1;
  CHECK(ParseSince("2026-11-18", now).value() == static_cast<int64_t>(mktime(&tm)) * 1000);
  for (const char* bad : {"", "yesterday", "-5s", "2026-13-01", "2026-11-18T25:00", "2026-11-18T10",
                          "2026-11-18T10:00:00+5", "2026-11-18T10:00:00.Z", "5 s", "2026/11/18"}) {
    INFO(bad);
    Result<int64_t> r = ParseSince(bad, now);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == StatusCode::kInvalidArgument);
    CHECK(r.status().message().find("'" + std::string(bad) + "' is neither a duration") == 0);
  }
}

FeedEntry Entry(std::string app, std::string kind = "instance") {
  FeedEntry e;
  e.app = std::move(app);
  e.kind = std::move(kind);
  return e;
}

TEST_CASE("EventFeed numbers its entries, keeps the newest, and pages after a cursor") {
  EventFeed feed("image-1");
  std::vector<uint64_t> added;
  feed.set_on_add([&](const FeedEntry& e) { added.push_back(e.seq); });
  for (int i = 0; i < 5; ++i)
    feed.Add(Entry(i % 2 == 0 ? "shop" : "blog"), 1000 + i);
  CHECK(added == std::vector<uint64_t>{1, 2, 3, 4, 5});
  CHECK(feed.last_seq() == 5);
  CHECK(feed.id() == "image-1");
  uint64_t scanned = 0;
  auto shop = feed.After(1, "shop", 100, &scanned);
  REQUIRE(shop.size() == 2);
  CHECK(shop[0].seq == 3);
  CHECK(shop[0].time_ms == 1002);
  CHECK(shop[1].seq == 5);
  CHECK(scanned == 5);
  // A page: the cursor stops at the last entry given.
  auto one = feed.After(0, "", 1, &scanned);
  CHECK(one.size() == 1);
  CHECK(scanned == 1);
  // Nothing new, and a cursor from a longer feed (another image): "now".
  CHECK(feed.After(5, "", 100, &scanned).empty());
  CHECK(scanned == 5);
  CHECK(feed.After(99, "", 100, &scanned).empty());
  CHECK(scanned == 5);
  auto newest = feed.Newest("blog", 1);
  REQUIRE(newest.size() == 1);
  CHECK(newest[0].seq == 4);
  // Bounded: the oldest go.
  for (size_t i = 0; i < EventFeed::kCapacity; ++i) feed.Add(Entry("shop"), 1);
  auto all = feed.After(0, "", EventFeed::kCapacity + 10, &scanned);
  CHECK(all.size() == EventFeed::kCapacity);
  CHECK(all.front().seq == 6);
  CHECK(scanned == feed.last_seq());
}

TEST_CASE("ReadProcIds reads a process's four uids and gids, and UidHasProcesses finds them") {
  ProcIds ids;
  REQUIRE(ReadProcIds("/proc/self", &ids));
  for (uid_t u : ids.uid) CHECK(u == ::getuid());
  for (gid_t g : ids.gid) CHECK(g == ::getgid());
  CHECK_FALSE(ReadProcIds("/proc/999999999", &ids));
  CHECK(UidHasProcesses(::getuid()));
  // A child that changed its effective uid only is still found by it.
  if (::getuid() == 0) {
    int ready[2];
    REQUIRE(::pipe2(ready, O_CLOEXEC) == 0);
    const uid_t other = 3'999'123;
    CHECK_FALSE(UidHasProcesses(other));
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      ::close(ready[0]);
      if (::setresuid(0, other, 0) != 0) ::_exit(1);
      char c = 'x';
      if (::write(ready[1], &c, 1) != 1) ::_exit(1);
      ::pause();
      ::_exit(0);
    }
    ::close(ready[1]);
    char c;
    REQUIRE(::read(ready[0], &c, 1) == 1);
    ::close(ready[0]);
    ProcIds child;
    REQUIRE(ReadProcIds("/proc/" + std::to_string(pid), &child));
    CHECK(child.uid[0] == 0);
    CHECK(child.uid[1] == other);
    CHECK(UidHasProcesses(other));
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    CHECK_FALSE(UidHasProcesses(other));
  }
}

TEST_CASE("Excerpt quotes at most 64 bytes of a peer's text, cut between characters") {
  CHECK(Excerpt("web") == "web");
  CHECK(Excerpt(std::string(64, 'x')) == std::string(64, 'x'));
  CHECK(Excerpt(std::string(500'000, 'x')) == std::string(64, 'x') + "...");
  // 63 bytes, then a 2-byte character across the 64th: cut before it.
  CHECK(Excerpt(std::string(63, 'x') + "\xC3\xA9yyy") == std::string(63, 'x') + "...");
}

}  // namespace
}  // namespace relsupd
