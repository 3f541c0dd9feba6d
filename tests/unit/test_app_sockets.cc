// activate/app_sockets: the walk of a unix socket's directories, which
// makes the missing ones (WalkSocketDirs), on a temporary directory. The
// binds themselves are tested end to end (tests/run/test_isolation.cc).

#include <catch2/catch.hpp>

#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "daemon/activate/app_sockets.h"
#include "tests/support/temp_dir.h"

namespace relsupd {
namespace {

namespace fs = std::filesystem;

// The calling thread's umask set to `mask` for the scope.
struct Umask {
  mode_t old;
  explicit Umask(mode_t mask) : old(::umask(mask)) {}
  ~Umask() { ::umask(old); }
};

mode_t ModeOf(const std::string& path) {
  struct stat st{};
  REQUIRE(::lstat(path.c_str(), &st) == 0);
  return st.st_mode;
}

TEST_CASE("the missing directories of a socket's path are made 0755 whatever the umask") {
  support::TempDir tmp;
  const std::string top = tmp.path() + "/run";
  const std::string dir = top + "/a/b";
  const std::string address = "unix:" + dir + "/web.sock";
  {
    Umask tight(077);
    // kCheck makes nothing and says what is missing.
    Result<Fd> checked = WalkSocketDirs(dir, {}, address, SocketDirs::kCheck);
    REQUIRE_FALSE(checked.ok());
    CHECK(checked.status().code() == StatusCode::kNotFound);
    CHECK_THAT(checked.status().message(), Catch::Contains("'" + top + "' does not exist"));
    CHECK_FALSE(fs::exists(top));

    Result<Fd> made = WalkSocketDirs(dir, {}, address, SocketDirs::kMake);
    REQUIRE(made.ok());
    CHECK(made->valid());
    // The umask of the thread is as it was.
    CHECK(::umask(077) == 077);
  }
  for (const std::string& d : {top, top + "/a", dir}) {
    INFO(d);
    CHECK(S_ISDIR(ModeOf(d)));
    CHECK((ModeOf(d) & 07777) == 0755);
  }
  // All there: the same walk makes nothing and finds it.
  CHECK(WalkSocketDirs(dir, {}, address, SocketDirs::kCheck).ok());
  CHECK(WalkSocketDirs(dir + "//", {}, address, SocketDirs::kMake).ok());
}

TEST_CASE("the walk of a socket's directories follows no link and makes nothing beyond one") {
  support::TempDir tmp;
  const std::string real = tmp.path() + "/real";
  fs::create_directories(real);
  fs::create_directory_symlink(real, tmp.path() + "/lnk");
  fs::create_symlink(tmp.path() + "/nowhere", tmp.path() + "/dangling");
  for (const std::string& dir : {tmp.path() + "/lnk/new", tmp.path() + "/lnk",
                                 tmp.path() + "/dangling/new"}) {
    INFO(dir);
    Result<Fd> r = WalkSocketDirs(dir, {}, "unix:" + dir + "/x.sock", SocketDirs::kMake);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == StatusCode::kFailedPrecondition);
    CHECK_THAT(r.status().message(), Catch::Contains("is or goes through a symbolic link"));
  }
  CHECK_FALSE(fs::exists(real + "/new"));
  CHECK_FALSE(fs::exists(tmp.path() + "/nowhere"));
}

TEST_CASE("the walk of a socket's directories makes nothing in the state dir") {
  support::TempDir tmp;
  UnixSocketGuard guard;
  guard.state_dir = tmp.path() + "/state";
  fs::create_directories(guard.state_dir);
  const std::string dir = guard.state_dir + "/apps/new";
  for (SocketDirs mode : {SocketDirs::kCheck, SocketDirs::kMake}) {
    Result<Fd> r = WalkSocketDirs(dir, guard, "unix:" + dir + "/x.sock", mode);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == StatusCode::kFailedPrecondition);
    CHECK_THAT(r.status().message(),
               Catch::Contains("is inside the daemon's state directory '" + guard.state_dir + "'"));
  }
  CHECK_FALSE(fs::exists(guard.state_dir + "/apps"));
  // Beside it is fine.
  CHECK(WalkSocketDirs(tmp.path() + "/run/x", guard, "unix:" + tmp.path() + "/run/x/s.sock",
                       SocketDirs::kMake)
            .ok());
}

TEST_CASE("a socket's directory with a '.' or '..' component, or not absolute, is refused") {
  support::TempDir tmp;
  for (const std::string& dir : {tmp.path() + "/./x", tmp.path() + "/x/..", std::string("run/x")}) {
    INFO(dir);
    Result<Fd> r = WalkSocketDirs(dir, {}, "unix:" + dir + "/s.sock", SocketDirs::kMake);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == StatusCode::kInvalidArgument);
  }
  CHECK_FALSE(fs::exists(tmp.path() + "/x"));
}

// The packaged unit's ProtectSystem=strict leaves the daemon little to
// write: a socket in a read-only place is refused at app create, saying
// where it can go. A read-only bind mount in a mount namespace of this
// test process's own stands in for the unit's.
TEST_CASE("a socket's directory on a read-only file system is refused early, saying where to put it") {
  support::TempDir tmp;
  const std::string ro = tmp.path() + "/ro";
  fs::create_directories(ro);
  if (::unshare(CLONE_NEWNS) != 0 || ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
      ::mount(ro.c_str(), ro.c_str(), nullptr, MS_BIND, nullptr) != 0 ||
      ::mount(nullptr, ro.c_str(), nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr) != 0) {
    WARN("cannot make a read-only bind mount here (needs root): not tested");
    return;
  }
  const std::string hint = "under the packaged unit only /run/relsupd and the state dir are writable";
  // Missing directories under it: refused by app create's walk.
  Result<Fd> checked = WalkSocketDirs(ro + "/new", {}, "unix:" + ro + "/new/s.sock", SocketDirs::kCheck);
  REQUIRE_FALSE(checked.ok());
  CHECK(checked.status().code() == StatusCode::kFailedPrecondition);
  CHECK_THAT(checked.status().message(),
             Catch::Contains("its directory '" + ro + "' is on a read-only file system"));
  CHECK_THAT(checked.status().message(), Catch::Contains(hint));
  // The directory itself: refused by app create too.
  Status direct = CheckUnixSocketPath("unix:" + ro + "/s.sock", {});
  CHECK(direct.code() == StatusCode::kFailedPrecondition);
  CHECK_THAT(direct.message(), Catch::Contains(hint));
  // And at the bind, making the directory.
  Result<Fd> made = WalkSocketDirs(ro + "/new", {}, "unix:" + ro + "/new/s.sock", SocketDirs::kMake);
  REQUIRE_FALSE(made.ok());
  CHECK_THAT(made.status().message(), Catch::Contains("cannot create its directory '" + ro + "/new'"));
  CHECK_THAT(made.status().message(), Catch::Contains(hint));
  CHECK(::umount2(ro.c_str(), MNT_DETACH) == 0);
  CHECK_FALSE(fs::exists(ro + "/new"));
}

}  // namespace
}  // namespace relsupd
