// BaseRelease (daemon/store/release_service.h): which release a new one
// starts from. The live release; the newest only while none was ever live.
// Pure; no loop, no files.
#include <catch2/catch.hpp>
#include <vector>

#include "daemon/ledger/ledger.h"
#include "daemon/store/release_service.h"

namespace relsupd {
namespace {

// Releases v1..vN of app "shop", oldest first, as ListReleases gives them.
std::vector<ReleaseRow> Releases(int n) {
  std::vector<ReleaseRow> out;
  for (int i = 1; i <= n; ++i) {
    ReleaseRow r;
    r.app = "shop";
    r.number = i;
    r.build = "build-" + std::to_string(i);
    out.push_back(r);
  }
  return out;
}

}  // namespace

TEST_CASE("BaseRelease: none for an app without releases", "[store][base]") {
  CHECK(BaseRelease({}, 0) == nullptr);
}

TEST_CASE("BaseRelease: the newest while none was ever live", "[store][base]") {
  const auto releases = Releases(3);
  const ReleaseRow* base = BaseRelease(releases, 0);
  REQUIRE(base != nullptr);
  CHECK(base->number == 3);
}

TEST_CASE("BaseRelease: the live release, newer ones or not", "[store][base]") {
  const auto releases = Releases(3);
  // Rolled back to v1 (v2 and v3 newer): v1.
  for (int64_t live : {1, 2, 3}) {
    INFO("live v" << live);
    const ReleaseRow* base = BaseRelease(releases, live);
    REQUIRE(base != nullptr);
    CHECK(base->number == live);
    CHECK(base->build == "build-" + std::to_string(live));
  }
}

TEST_CASE(
    "BaseRelease: a live release missing from the list is none, not the newest",
    "[store][base]") {
  CHECK(BaseRelease(Releases(3), 7) == nullptr);
  CHECK(BaseRelease({}, 1) == nullptr);
}

}  // namespace relsupd
