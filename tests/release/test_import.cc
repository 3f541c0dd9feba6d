// E2E: `ctl build import` with the real binary. The same bytes give the same
// build and are stored once; every bad artifact is refused at import with a
// message naming what is wrong, and nothing is stored or recorded.
#include <sys/stat.h>

#include <catch2/catch.hpp>

#include "tests/release/release_fixture.h"
#include "tests/support/hostile_artifacts.h"

namespace relsupd::release_test {
namespace {

using e2e::ProcResult;

struct BadArtifact {
  std::string name;
  std::vector<Entry> entries;
  std::vector<std::string> message_has;
  Filter filter = Filter::kGzip;
};

// Imports `file` and checks that it is refused with `message_has` and that
// nothing was stored, recorded or left in tmp/.
void ExpectRefusedImport(Stage& s, const std::string& file,
                         const std::vector<std::string>& message_has) {
  ProcResult r = s.Ctl({"build", "import", s.app(), file});
  INFO(r.Describe());
  CHECK(r.exit_code() == 1);
  CHECK(r.out.empty());
  CHECK_THAT(r.err, Catch::StartsWith("relsupd: "));
  for (const auto& part : message_has) CHECK_THAT(r.err, Catch::Contains(part));
  CHECK(ListDir(s.BuildsDir()).empty());
  CHECK(ListDir(s.TmpDir()).empty());
  CHECK(s.CtlJson({"build", "list", s.app()}).empty());
}

TEST_CASE("release import: the same bytes twice give the same build, stored once",
          "[release][import]") {
  Stage s;
  const std::string file = s.Artifact(
      "app.tar.gz", {Procfile(), Dir("bin"), File("bin/web", "#!/bin/sh\nexec sleep 100\n", 0755)});
  Json first = s.Import(file);
  INFO(first.dump(2));
  CHECK(first["new"] == true);
  const std::string id = first["id"];
  const std::string sha = first["sha256"];
  CHECK(id.size() == 12);
  CHECK(sha.size() == 64);
  CHECK(sha.substr(0, 12) == id);
  CHECK(first["format"] == "tar.gz");
  CHECK(first["entries"] == 3);
  CHECK(first["size"] == static_cast<int64_t>(ReadText(file).size()));

  // The same bytes under another name.
  const std::string copy = s.dir().WriteFile("copy-of-app.tgz", ReadText(file));
  Json again = s.Import(copy);
  CHECK(again["new"] == false);
  CHECK(again["id"] == id);
  CHECK(again["sha256"] == sha);
  // Human output says so too.
  std::string out = s.CtlOk({"build", "import", s.app(), file});
  CHECK_THAT(out, Catch::Contains("Already imported build " + id));

  // One file, read-only, named by digest; one build row.
  CHECK(ListDir(s.BuildsDir()) == std::vector<std::string>{sha + ".tar.gz"});
  CHECK((Lstat(s.BuildsDir() + "/" + sha + ".tar.gz").st_mode & 07777) == 0444);
  CHECK(ReadText(s.BuildsDir() + "/" + sha + ".tar.gz") == ReadText(file));
  Json builds = s.CtlJson({"build", "list", s.app()});
  REQUIRE(builds.size() == 1);
  CHECK(builds[0]["id"] == id);
  CHECK(builds[0]["releases"].empty());
  CHECK(ListDir(s.TmpDir()).empty());

  // Plain tar and zstd are stored under their own format.
  Json plain = s.Import(s.Artifact("app.tar", {Procfile()}, Filter::kNone));
  CHECK(plain["format"] == "tar");
  Json zst = s.Import(s.Artifact("app.tar.zst", {Procfile()}, Filter::kZstd));
  CHECK(zst["format"] == "tar.zst");
  CHECK(ListDir(s.BuildsDir()).size() == 3);
}

TEST_CASE("release import: an unknown app or a missing file is refused",
          "[release][import]") {
  Stage s;
  const std::string file = s.Artifact("app.tar.gz", {Procfile()});
  ProcResult r = s.Ctl({"build", "import", "nosuch", file});
  INFO(r.Describe());
  CHECK(r.exit_code() == 1);
  CHECK_THAT(r.err, Catch::Contains("app 'nosuch' does not exist"));
  CHECK_FALSE(Exists(s.state() + "/apps/nosuch"));

  ProcResult missing = s.Ctl({"build", "import", s.app(), s.dir().Path("nope.tar.gz")});
  INFO(missing.Describe());
  CHECK(missing.exit_code() == 2);
  CHECK_THAT(missing.err, Catch::Contains("nope.tar.gz"));
  CHECK(ListDir(s.BuildsDir()).empty());
  CHECK(ListDir(s.TmpDir()).empty());
}

TEST_CASE("release import: an archive with no entry, or with megabytes after its end, is refused and not stored",
          "[release][import]") {
  Stage s;
  // Two zero blocks and more zeros: a tar that ends at once.
  const std::string zeros = s.dir().WriteFile("zeros.tar", std::string(100 * 1024, '\0'));
  ProcResult empty = s.Ctl({"build", "import", s.app(), zeros});
  INFO(empty.Describe());
  CHECK(empty.exit_code() == 1);
  CHECK_THAT(empty.err, Catch::Contains("holds no entries"));
  // A real archive with 3 MiB of noise after it.
  const std::string file = s.Artifact("app.tar", {Procfile()}, Filter::kNone);
  std::string glued = ReadText(file) + Noise(3 << 20);
  const std::string big = s.dir().WriteFile("glued.tar", glued);
  ProcResult trailing = s.Ctl({"build", "import", s.app(), big});
  INFO(trailing.Describe());
  CHECK(trailing.exit_code() == 1);
  CHECK_THAT(trailing.err, Catch::Contains("bytes after the end of its archive"));
  CHECK(ListDir(s.BuildsDir()).empty());
  CHECK(ListDir(s.TmpDir()).empty());
  // The archive alone is taken.
  CHECK(s.Ctl({"build", "import", s.app(), file}).exit_code() == 0);
}

TEST_CASE("release import: a file that is no artifact is named with what it is, before the daemon sees it",
          "[release][import]") {
  Stage s;
  const std::string fifo = s.dir().Path("pipe");
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {s.dir().Path(""), "' is a directory, not a tar, tar.gz or tar.zst file"},
      {fifo, "FILE '" + fifo + "' is a fifo, not a tar"},  // refused, not waited on
      {"/dev/null", "FILE '/dev/null' is a character device, not a tar"},
  };
  for (const auto& [file, message] : cases) {
    ProcResult r = s.Ctl({"build", "import", s.app(), file});
    INFO(file << ": " << r.Describe());
    CHECK(r.exit_code() == 2);
    CHECK_THAT(r.err, Catch::Contains(message));
  }
  CHECK(ListDir(s.BuildsDir()).empty());
  CHECK(ListDir(s.TmpDir()).empty());
}

// Imports each of `cases` into one daemon (with the caps in `config`) and
// checks every refusal; then that none of them was recorded.
void ExpectRefusedImports(const std::string& config, const std::vector<BadArtifact>& cases) {
  Stage s(config);
  for (const BadArtifact& c : cases) {
    INFO("case: " << c.name);
    ExpectRefusedImport(s, s.Artifact("bad.tar.gz", c.entries, c.filter), c.message_has);
  }
  Json history = s.CtlJson({"history", s.app()});
  for (const auto& e : history) CHECK(e.value("kind", "") != "imported");
}

TEST_CASE("release import: bad paths, links and file types are refused, naming the entry",
          "[release][import][bad-input]") {
  // The same table the store's unit tests run (hostile_artifacts.h).
  std::vector<BadArtifact> cases;
  for (auto& h : support::HostileArtifacts())
    cases.push_back({std::move(h.name), std::move(h.entries), std::move(h.message_has)});
  ExpectRefusedImports("", cases);
}

TEST_CASE("release import: artifacts over the configured caps are refused",
          "[release][import][bad-input]") {
  std::vector<Entry> many = {Procfile()};
  for (int i = 0; i < 25; ++i) many.push_back(File("f" + std::to_string(i), "x"));
  // Small caps so that each can be crossed cheaply.
  ExpectRefusedImports("max_entries: 20\n"
                       "max_unpacked_bytes: 4194304\n"
                       "max_artifact_bytes: 1048576\n",
                       {
                           {"more entries than max_entries", many, {"max_entries", "20"}},
                           {"more unpacked bytes than max_unpacked_bytes",
                            {Procfile(), Zeros("a", 3 << 20), Zeros("b", 3 << 20)},
                            {"max_unpacked_bytes", "4194304"}},
                           {"one file larger than max_unpacked_bytes",
                            {Procfile(), Zeros("big", 5 << 20)},
                            {"'big'", "max_unpacked_bytes"}},
                           {"over max_artifact_bytes",
                            {Procfile(), File("noise", Noise(2 << 20))},
                            {"max_artifact_bytes"}},
                       });
}

TEST_CASE("release import: a truncated, empty or non-archive file is refused",
          "[release][import][bad-input]") {
  Stage s;
  INFO("case: not an archive");
  ExpectRefusedImport(s, s.dir().WriteFile("notes.tar.gz", "these are my notes\n"),
                      {"not a", "tar archive"});
  INFO("case: an empty file");
  ExpectRefusedImport(s, s.dir().WriteFile("empty.tar.gz", ""), {"not a", "tar archive"});
  INFO("case: truncated");
  const std::string whole =
      s.Artifact("whole.tar.gz", {Procfile(), File("a.bin", Noise(600'000))});
  const std::string bytes = ReadText(whole);
  ExpectRefusedImport(s, s.dir().WriteFile("cut.tar.gz", bytes.substr(0, bytes.size() / 3)),
                      {"truncated", "'a.bin'"});
}

// Found by tests/fuzz/fuzz_archive: 200 bytes of corrupt gzip on which
// libarchive's open fails without an error string. At 3c36d97 the importer
// built its message from the null pointer: SIGSEGV, the daemon and every
// app with it.
TEST_CASE("release import: a corrupt gzip with no libarchive message is refused, the daemon lives",
          "[release][import][bad-input]") {
  Stage s;
  const pid_t pid = s.daemon().pid();
  const std::string bytes =
      ReadText(std::string(RELSUPD_SOURCE_DIR) + "/tests/fuzz/corpus/archive/gzip_open_no_message");
  REQUIRE(bytes.size() == 200);
  ExpectRefusedImport(s, s.dir().WriteFile("fuzzed.tar.gz", bytes),
                      {"artifact '", "not a tar archive"});
  CHECK(s.CtlJson({"info"})["pid"] == pid);
  CHECK(s.Ctl({"history", "--verify"}).exit_code() == 0);
}

TEST_CASE("release import: a 1000:1 decompression bomb is refused", "[release][import][bad-input]") {
  Stage s;  // default caps: max_compression_ratio 200
  const std::string bomb = s.Artifact("bomb.tar.gz", {Procfile(), Zeros("zeros", 64 << 20)});
  const auto size = Lstat(bomb).st_size;
  INFO("bomb is " << size << " bytes");
  CHECK(size < (256 << 10));  // 64 MiB in well under 256 KiB
  ExpectRefusedImport(s, bomb, {"decompression bomb", "200"});
}

TEST_CASE("release import: setuid and setgid bits are stripped, not refused",
          "[release][import]") {
  Stage s;
  Json b = s.Import(s.Artifact(
      "suid.tar.gz", {Procfile(), File("bin/su", "#!/bin/sh\n", 06755),
                      File("shared", "x", 0666), Dir("tmp", 01777)}));
  CHECK(s.Create(b["id"]) == "v1");
  const std::string slot = s.Slot(1);
  CHECK((Lstat(slot + "/bin/su").st_mode & 07777) == 0555);
  CHECK((Lstat(slot + "/shared").st_mode & 07777) == 0444);
  CHECK((Lstat(slot + "/tmp").st_mode & 07777) == 0555);
  CHECK(s.Ctl({"release", "verify", s.app(), "v1"}).exit_code() == 0);
}

}  // namespace
}  // namespace relsupd::release_test
