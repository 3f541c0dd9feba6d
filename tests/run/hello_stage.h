#pragma once
// HelloStage: a daemon with app "shop" serving the example app
// (examples/hello) on a daemon-held loopback socket, for the run tests.
// Header-only: the including test target defines RELSUPD_HELLO_BIN. Test
// thread only.

#include <string>
#include <vector>

#include "tests/run/run_fixture.h"
#include "tests/support/fs.h"

namespace relsupd::run_test {

inline constexpr auto& Slurp = support::ReadFileOrEmpty;

inline constexpr char kHelloYaml[] =
    "processes:\n"
    "  web:\n"
    "    command: ./bin/hello\n"
    "    scale: 2\n"
    "    sockets: [http]\n"
    "    ready: notify\n"
    "    stop_timeout: 5s\n";

// A daemon with app "shop" serving hello on a free loopback port, and
// releases v1 and v2 of the same build (v2 with `v2_set` config).
struct HelloStage {
  int port = FreePort();
  Stage stage;
  std::string build;
  explicit HelloStage(std::vector<std::string> app_args = {}, std::vector<std::string> env = {},
                      std::string config = FastConfig(), std::string binary = "")
      : stage(std::move(config), std::move(env), "shop", WithSocket(port, std::move(app_args)),
              std::move(binary)) {
    std::string file = stage.Artifact(
        "hello.tar.gz", {release_test::File("relsupd.yaml", kHelloYaml),
                         release_test::File("bin/hello", Slurp(RELSUPD_HELLO_BIN), 0755)});
    build = stage.Import(file)["id"].get<std::string>();
  }
  static std::vector<std::string> WithSocket(int port, std::vector<std::string> args) {
    args.push_back("--socket");
    args.push_back("http=tcp://127.0.0.1:" + std::to_string(port));
    return args;
  }
  std::string Release(std::vector<std::string> set = {}) {
    std::vector<std::string> args;
    for (auto& kv : set) {
      args.push_back("--set");
      args.push_back(kv);
    }
    return stage.Create(build, args);
  }
  std::string Version() { return Get(port, "/version"); }
};

}  // namespace relsupd::run_test
