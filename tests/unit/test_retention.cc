// Retention (ReleaseService::Prune) on a real loop, a real ledger and real
// slots. Activation arrives with a later issue; until then the activation
// events it will write are appended to the ledger directly.
#include <catch2/catch.hpp>
#include <fcntl.h>
#include <uv.h>

#include <filesystem>
#include <optional>
#include <set>

#include "daemon/base/uv_handle.h"
#include "daemon/base/release_id.h"
#include "daemon/control/release_json.h"
#include "daemon/ledger/ledger.h"
#include "daemon/store/release_service.h"
#include "daemon/store/slots.h"
#include "tests/support/tar.h"
#include "tests/support/temp_dir.h"

namespace relsupd {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// A tar with a process file and one file whose body is `body`.
std::string WriteArtifact(const std::string& dir, const std::string& name,
                          const std::string& body) {
  const std::string path = dir + "/" + name;
  support::WriteArchive(path,
                        {support::File("Procfile", "web: ./server\n"),
                         support::File("body.txt", body)},
                        support::Filter::kNone);
  return path;
}

AppSpec Shop(int keep) {
  AppSpec a;
  a.name = "shop";
  a.user = "root";
  a.group = "root";
  a.keep_releases = keep;
  return a;
}

struct Fixture {
  support::TempDir tmp{"relsupd-retention"};
  std::string dir = tmp.path();
  uv_loop_t loop;
  std::unique_ptr<Ledger> ledger;
  std::unique_ptr<ReleaseService> service;
  Actor root{0, "root"};

  // A ledger with the app shop, which keeps `keep_releases` releases.
  explicit Fixture(int keep_releases) {
    uv_loop_init(&loop);
    auto l = Ledger::Open(dir + "/ledger.db", RealClock());
    REQUIRE(l.ok());
    ledger = std::move(l).value();
    service = std::make_unique<ReleaseService>(&loop, ledger.get(), dir, StoreLimits{});
    REQUIRE(ledger->CreateApp(Shop(keep_releases), root).ok());
  }
  ~Fixture() {
    service.reset();
    ledger.reset();
    CloseLoop(&loop);
  }
  // Runs an async service call to completion.
  template <typename T>
  Result<T> Wait(const std::function<void(ReleaseService::Done<T>)>& call) {
    std::optional<Result<T>> out;
    call([&](Result<T> r) { out.emplace(std::move(r)); });
    while (!out) uv_run(&loop, UV_RUN_ONCE);
    // The loop holds no handles: this returns once follow-up work (the
    // automatic prune after a release) is done too.
    uv_run(&loop, UV_RUN_DEFAULT);
    return std::move(*out);
  }
  std::string Import(const std::string& body) {
    std::string path = WriteArtifact(dir, "a-" + body + ".tar", body);
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    auto r = Wait<ImportedBuild>(
        [&](auto done) { service->ImportBuild("shop", Fd(fd), root, done); });
    REQUIRE(r.ok());
    return r->build.id();
  }
  std::string Release(const std::string& build) {
    auto r = Wait<CreatedRelease>([&](auto done) {
      service->CreateRelease("shop", build, ReleaseService::ConfigChange{}, root, done);
    });
    REQUIRE(r.ok());
    return ReleaseId(r->release.number).ToString();
  }
  void Activate(const std::string& release) {
    REQUIRE(ledger->AppendEvent("shop", EventKind::kActivated, *ReleaseId::Parse(release), root, "{}").ok());
  }
  json Prune() {
    auto r = Wait<PruneReport>([&](auto done) { service->Prune("shop", root, done); });
    INFO(r.status().message());
    REQUIRE(r.ok());
    return PruneReportToJson(*r);
  }
  bool SlotExists(int n) { return fs::exists(SlotPath(dir, "shop", n)); }
};

TEST_CASE("retention counts only activated releases and keeps the newest") {
  Fixture f(/*keep_releases=*/2);
  std::string b1 = f.Import("one");
  for (int i = 1; i <= 6; ++i) CHECK(f.Release(b1) == "v" + std::to_string(i));
  // Nothing was activated: nothing counts, nothing goes.
  CHECK(f.Prune()["pruned"].empty());
  for (const char* v : {"v1", "v2", "v3", "v4", "v5"}) f.Activate(v);
  // v6 was never activated: it does not count and stays.
  json r = f.Prune();
  CHECK(r["pruned"] == json({"v3", "v2", "v1"}));
  for (int n : {1, 2, 3}) {
    CHECK_FALSE(f.SlotExists(n));
    auto row = f.ledger->GetRelease("shop", n);
    REQUIRE(row.ok());  // the ledger row stays
    CHECK(row->pruned);
  }
  for (int n : {4, 5, 6}) CHECK(f.SlotExists(n));
  auto events = f.ledger->History(std::string("shop"), 100);
  int pruned_events = 0;
  for (const Event& e : *events) pruned_events += e.kind == "pruned";
  CHECK(pruned_events == 3);
  CHECK(f.Prune()["pruned"].empty());  // idempotent
  CHECK(f.ledger->VerifyHistory()->ok());
}

TEST_CASE("the active release and the rollback target are never pruned") {
  Fixture f(/*keep_releases=*/1);
  std::string b1 = f.Import("one");
  std::string b2 = f.Import("two");
  CHECK(f.Release(b1) == "v1");
  for (int i = 2; i <= 4; ++i) f.Release(b2);
  for (const char* v : {"v1", "v2", "v3", "v4", "v2"}) f.Activate(v);  // rolled back to v2
  auto activation = f.ledger->ActivationOf("shop");
  CHECK(activation->active == 2);
  CHECK(activation->previous == 4);
  std::string b1_path = f.dir + "/apps/shop/builds/" +
                        f.ledger->FindBuild("shop", b1)->sha256 + ".tar";
  REQUIRE(fs::exists(b1_path));
  json r = f.Prune();
  CHECK(r["pruned"] == json({"v3", "v1"}));
  CHECK(f.SlotExists(2));
  CHECK(f.SlotExists(4));
  // Build one served only v1, now pruned: its artifact goes; build two stays.
  CHECK(r["builds_removed"] == json({b1}));
  CHECK_FALSE(fs::exists(b1_path));
  CHECK(fs::exists(f.dir + "/apps/shop/builds/" + f.ledger->FindBuild("shop", b2)->sha256 + ".tar"));
  // The pruned releases' objects went with them; the live ones verify.
  auto v = VerifySlot(SlotPath(f.dir, "shop", 2), f.ledger->GetRelease("shop", 2)->digest,
                      f.ledger->GetRelease("shop", 2)->build);
  REQUIRE(v.ok());
  CHECK(v->ok());
}

TEST_CASE("retention runs after each new release") {
  Fixture f(/*keep_releases=*/1);
  std::string b1 = f.Import("one");
  f.Release(b1);
  f.Release(b1);
  f.Release(b1);
  for (const char* v : {"v1", "v2", "v3"}) f.Activate(v);
  f.Release(b1);  // v4: its creation applies keep_releases
  CHECK(f.ledger->GetRelease("shop", 1)->pruned);
  CHECK_FALSE(f.SlotExists(1));
  CHECK(f.SlotExists(2));  // the rollback target
  CHECK(f.SlotExists(3));  // active
}

// Tree objects (the stored manifests) are collected like file bodies: a
// pruned slot's trees go unless a kept slot links them too.
std::set<std::string> TreeObjects(const std::string& dir) {
  std::set<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir + "/objects"))
    if (e.is_regular_file() && e.path().extension() == ".tree")
      out.insert(e.path().stem().string());
  return out;
}

TEST_CASE("prune removes the tree objects only pruned releases used") {
  Fixture f(/*keep_releases=*/1);
  std::string b1 = f.Import("one");
  std::string b2 = f.Import("two");
  CHECK(f.Release(b1) == "v1");
  CHECK(f.Release(b2) == "v2");
  CHECK(f.Release(b2) == "v3");
  auto tree_of = [&](int n) {
    auto t = ReadSlotTree(SlotPath(f.dir, "shop", n));
    REQUIRE(t.ok());
    return *t;
  };
  const std::string t1 = tree_of(1), t2 = tree_of(2);
  CHECK(t1 != t2);
  CHECK(tree_of(3) == t2);  // the same content: the same root tree, shared
  CHECK(TreeObjects(f.dir) == std::set<std::string>{t1, t2});
  for (const char* v : {"v1", "v2", "v3"}) f.Activate(v);
  json r = f.Prune();
  CHECK(r["pruned"] == json({"v1"}));
  // v1's root tree and its own body.txt went; Procfile is shared.
  CHECK(r["objects_removed"] == 2);
  CHECK(TreeObjects(f.dir) == std::set<std::string>{t2});
  for (int n : {2, 3}) {
    auto row = f.ledger->GetRelease("shop", n);
    auto v = VerifySlot(SlotPath(f.dir, "shop", n), row->digest, row->build);
    REQUIRE(v.ok());
    CHECK(v->ok());
  }
}

}  // namespace
}  // namespace relsupd
