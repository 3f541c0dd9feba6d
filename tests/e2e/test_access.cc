// E2E: rights on the control socket, with the real CLI run as other users.
// Members of socket_group may read, only root / the daemon's uid / members
// of admin_group may change, and a refusal changes and records nothing.
#include <grp.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "tests/e2e/harness.h"

namespace relsupd::e2e {
namespace {

// What `ctl app list`, run as `who`, got from a daemon started with
// `config` as its relsupd.yaml, and that daemon's socket path.
struct Listed {
  ProcResult list;
  std::string socket;
};
Listed ListAs(const TempDir& dir, const std::string& config,
              const Credentials& who) {
  DaemonProcess d(dir, {.config = dir.WriteFile("relsupd.yaml", config)});
  return {RunCtl(d.socket(), {"app", "list"}, {.as = who}), d.socket()};
}

}  // namespace

TEST_CASE(
    "e2e access: a read-only peer may read but is refused a change, "
    "which is neither made nor recorded",
    "[e2e][access]") {
  // nobody's own group (nogroup on Debian) is the socket group, so nobody
  // holds the read right and nothing more.
  std::string group;
  auto nobody = NobodyOrSkip(&group);
  if (!nobody) return;
  REQUIRE(::getgrnam(group.c_str()) != nullptr);

  TempDir dir;
  const std::string cfg =
      dir.WriteFile("relsupd.yaml",
                    "socket_mode: \"0666\"\n"
                    "socket_group: " +
                        group +
                        "\n"
                        "admin_group: relsupd-e2e-no-such-group\n");
  DaemonProcess d(dir, {.config = cfg});
  const RunOptions as_nobody{.as = nobody};

  // Reading is allowed.
  ProcResult list = RunCtl(d.socket(), {"app", "list"}, as_nobody);
  INFO(list.Describe());
  CHECK(list.status.Exited(0));
  CHECK_THAT(list.out, Catch::Contains("NAME"));
  CHECK(CtlJson(d.socket(), {"history"}, as_nobody).empty());
  CHECK(CtlJson(d.socket(), {"info"}, as_nobody)["pid"] == d.pid());

  // Changing is not.
  ProcResult create = RunCtl(d.socket(), {"app", "create", "x"}, as_nobody);
  INFO(create.Describe());
  CHECK(create.status.Exited(1));
  CHECK_THAT(create.err, Catch::Contains("permission denied"));
  CHECK_THAT(create.err, Catch::Contains("change"));
  CHECK_THAT(create.err, Catch::Contains("app.create"));
  CHECK(create.out.empty());

  const std::string spec = dir.WriteFile("x.yaml", "name: x\n");
  ProcResult apply = RunCtl(d.socket(), {"app", "apply", spec}, as_nobody);
  INFO(apply.Describe());
  CHECK(apply.status.Exited(1));
  CHECK_THAT(apply.err, Catch::Contains("permission denied"));
  CHECK_THAT(apply.err, Catch::Contains("change"));

  // Nothing was made, and nothing was recorded.
  ProcResult show = RunCtl(d.socket(), {"app", "show", "x"});
  INFO(show.Describe());
  CHECK(show.status.Exited(1));
  CHECK_THAT(show.err, Catch::Contains("does not exist"));
  CheckNothingRecorded(d.socket());
  // The daemon's log says who was refused.
  CHECK_THAT(d.Log(), Catch::Contains("Refused 'app.create' to uid " +
                                      std::to_string(nobody->uid)));

  // Root still may, and is recorded as the actor.
  CtlOk(d.socket(), {"app", "create", "x"});
  Json history = CtlJson(d.socket(), {"history"});
  REQUIRE(history.size() == 1);
  CHECK(history[0]["actor_uid"] == 0);
  CHECK(history[0]["kind"] == "app-created");
  // And nobody sees it.
  Json seen = CtlJson(d.socket(), {"app", "list"}, as_nobody);
  REQUIRE(seen.size() == 1);
  CHECK(seen[0]["name"] == "x");
}

TEST_CASE("e2e access: a peer in neither group may not even read",
          "[e2e][access]") {
  if (::geteuid() != 0) {
    WARN("not root: cannot run the CLI as another user, skipping");
    return;
  }
  TempDir dir;
  // A uid and gid with no passwd or group entry at all.
  const Credentials stranger{54321, 54321};
  const ProcResult list = ListAs(dir,
                                 "socket_mode: \"0666\"\n"
                                 "socket_group: relsupd-e2e-no-such-group\n"
                                 "admin_group: relsupd-e2e-no-such-group\n",
                                 stranger)
                              .list;
  INFO(list.Describe());
  CHECK(list.status.Exited(1));
  CHECK_THAT(list.err, Catch::Contains("permission denied"));
  CHECK_THAT(list.err, Catch::Contains("read"));
  CHECK_THAT(list.err, Catch::Contains("uid 54321"));
}

TEST_CASE("e2e access: socket_mode 0660 keeps other users off the socket",
          "[e2e][access]") {
  std::string group;
  auto nobody = NobodyOrSkip(&group);
  if (!nobody) return;
  TempDir dir;
  // Root's group owns the socket; nobody is not in it.
  const auto [list, socket] =
      ListAs(dir, "socket_mode: \"0660\"\nsocket_group: root\n", *nobody);
  INFO(list.Describe());
  // connect(2) fails with EACCES: the daemon is unreachable for nobody.
  CHECK(list.status.Exited(3));
  CHECK_THAT(list.err, Catch::Contains("Permission denied"));
  CHECK_THAT(list.err, Catch::Contains(socket));
}

}  // namespace relsupd::e2e
