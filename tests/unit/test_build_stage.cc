// The build stage: relsupd.yaml's build section, the scratch copy, the build
// command and the reproducible tarball (cli/build.cc, daemon/config/
// build_spec.cc). The build command is a real /bin/sh, so these tests spawn.
#include <catch2/catch.hpp>

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "cli/build.h"
#include "daemon/base/sha256.h"
#include "daemon/config/build_spec.h"
#include "tests/support/cli.h"
#include "tests/support/failure.h"
#include "tests/support/fs.h"
#include "tests/support/temp_dir.h"

namespace relsupd {
namespace {

namespace fs = std::filesystem;
using cli::ArchiveFormat;
using cli::BuildArtifact;
using cli::BuildOptions;
using cli::BuildReport;

using support::ReadText;
using support::TempDir;

// Points $TMPDIR at a fresh directory for one test, so the test can see that
// the scratch directory is gone afterwards.
struct ScopedTmpdir {
  TempDir dir;
  std::optional<std::string> old;
  ScopedTmpdir() {
    if (const char* v = std::getenv("TMPDIR")) old = v;
    setenv("TMPDIR", dir.path().c_str(), 1);
  }
  ~ScopedTmpdir() {
    if (old)
      setenv("TMPDIR", old->c_str(), 1);
    else
      unsetenv("TMPDIR");
  }
  bool Empty() const { return fs::is_empty(dir.path()); }
};

void WriteFile(const std::string& path, const std::string& data,
               mode_t mode = 0644) {
  fs::create_directories(fs::path(path).parent_path());
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    REQUIRE(out);
    out << data;
  }
  REQUIRE(chmod(path.c_str(), mode) == 0);
}

void SetMtime(const std::string& path, time_t when) {
  const timespec times[2] = {{when, 0}, {when, 0}};
  REQUIRE(utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW) == 0);
}

// Every path under `root` with its type, mode, size and mtime: a fingerprint
// to show that a build left DIR alone.
std::map<std::string, std::string> Snapshot(const std::string& root) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    struct stat st;
    REQUIRE(lstat(e.path().c_str(), &st) == 0);
    std::string v = std::to_string(st.st_mode) + " " +
                    std::to_string(st.st_size) + " " +
                    std::to_string(st.st_mtim.tv_sec) + "." +
                    std::to_string(st.st_mtim.tv_nsec);
    if (S_ISREG(st.st_mode)) v += " " + Sha256Hex(ReadText(e.path()));
    out[fs::relative(e.path(), root).string()] = v;
  }
  return out;
}

struct Entry {
  std::string name;
  mode_t type = 0;
  mode_t perm = 0;
  int64_t uid = -1, gid = -1;
  std::string uname, gname;
  int64_t mtime = -1;
  bool atime_set = false, ctime_set = false, birthtime_set = false;
  int xattrs = 0;
  int acls = 0;
  std::string symlink;
  std::string data;
};

std::vector<Entry> ReadArchive(const std::string& file) {
  std::vector<Entry> out;
  struct archive* a = archive_read_new();
  archive_read_support_filter_all(a);
  archive_read_support_format_all(a);
  REQUIRE(archive_read_open_filename(a, file.c_str(), 10240) == ARCHIVE_OK);
  archive_entry* ae;
  int rc;
  while ((rc = archive_read_next_header(a, &ae)) == ARCHIVE_OK) {
    Entry e;
    e.name = archive_entry_pathname(ae);
    e.type = archive_entry_filetype(ae);
    e.perm = archive_entry_perm(ae);
    e.uid = archive_entry_uid(ae);
    e.gid = archive_entry_gid(ae);
    if (const char* u = archive_entry_uname(ae)) e.uname = u;
    if (const char* g = archive_entry_gname(ae)) e.gname = g;
    e.mtime = archive_entry_mtime(ae);
    e.atime_set = archive_entry_atime_is_set(ae) != 0;
    e.ctime_set = archive_entry_ctime_is_set(ae) != 0;
    e.birthtime_set = archive_entry_birthtime_is_set(ae) != 0;
    e.xattrs = archive_entry_xattr_count(ae);
    e.acls = archive_entry_acl_count(
        ae, ARCHIVE_ENTRY_ACL_TYPE_ACCESS | ARCHIVE_ENTRY_ACL_TYPE_DEFAULT);
    if (const char* s = archive_entry_symlink(ae)) e.symlink = s;
    char buf[4096];
    la_ssize_t n;
    while ((n = archive_read_data(a, buf, sizeof buf)) > 0)
      e.data.append(buf, static_cast<size_t>(n));
    REQUIRE(n == 0);
    out.push_back(std::move(e));
  }
  CHECK(rc == ARCHIVE_EOF);
  archive_read_free(a);
  return out;
}

std::vector<std::string> Names(const std::vector<Entry>& entries) {
  std::vector<std::string> names;
  for (const Entry& e : entries) names.push_back(e.name);
  return names;
}

const Entry* Find(const std::vector<Entry>& entries, const std::string& name) {
  for (const Entry& e : entries)
    if (e.name == name) return &e;
  return nullptr;
}

// A small app: files with odd modes, an executable, a nested directory, a
// symlink, a .git directory and a nested .git file (as submodules have).
void MakeApp(const std::string& dir) {
  WriteFile(dir + "/README", "hello\n", 0600);
  WriteFile(dir + "/bin/server", "#!/bin/sh\necho serving\n", 0700);
  WriteFile(dir + "/lib/z.txt", "z\n", 0664);
  WriteFile(dir + "/lib/a-b.txt", "ab\n");
  WriteFile(dir + "/lib/sub/deep.txt", "deep\n", 0444);
  WriteFile(dir + "/.git/HEAD", "ref: refs/heads/main\n");
  WriteFile(dir + "/.git/objects/ab/cdef", "blob");
  WriteFile(dir + "/vendor/mod/.git", "gitdir: ../../.git/modules/mod\n");
  WriteFile(dir + "/vendor/mod/mod.txt", "mod\n");
  REQUIRE(symlink("bin/server", (dir + "/run").c_str()) == 0);
}

Result<std::string> Build(const std::string& dir, const std::string& file,
                          BuildReport* report = nullptr,
                          ArchiveFormat format = ArchiveFormat::kTarGz,
                          std::optional<int64_t> mtime = 0) {
  BuildOptions o;
  o.dir = dir;
  o.output_file = file;
  o.format = format;
  o.mtime = mtime;
  return BuildArtifact(o, report);
}

// Runs the real binary with `args`, its stdout written to `out_file`;
// returns its exit code (or -1 if killed).
int RunRelsupd(const std::vector<std::string>& args,
               const std::string& out_file) {
  support::RunOptions options;
  options.timeout_ms = 120'000;
  support::ProcResult r = support::RunRelsupd(args, options);
  support::WriteText(out_file, r.out);
  return r.exit_code();
}

// A temp dir `tmp` with the sample app (MakeApp) in tmp/app.
struct AppFixture {
  TempDir tmp;
  const std::string app = tmp / "app";

  AppFixture() { MakeApp(app); }
};

// ---- relsupd.yaml: the build section ----------------------------------------

std::string SpecError(const std::string& yaml) {
  return support::RefusalMessage(ParseBuildSpec(yaml, "app/relsupd.yaml").status());
}

TEST_CASE("a relsupd.yaml without a build section gives the defaults") {
  for (const char* text : {"", "# nothing\n", "build:\n",
                           "processes:\n  web:\n    command: ./x\n"}) {
    auto s = ParseBuildSpec(text, "relsupd.yaml");
    REQUIRE(s.ok());
    CHECK(s->command.empty());
    CHECK(s->output == ".");
  }
}

TEST_CASE("the build section's command and output are read") {
  auto s = ParseBuildSpec(
      "build:\n"
      "  command: make dist\n"
      "  output: ./dist//bin/\n"
      "processes: {web: {command: ./bin/server, nonsense: checked-later}}\n"
      "whatever: other keys belong to the release stage\n",
      "relsupd.yaml");
  REQUIRE(s.ok());
  CHECK(s->command == "make dist");
  CHECK(s->output == "dist/bin");
  auto dot = ParseBuildSpec("build: {output: ./}\n", "relsupd.yaml");
  REQUIRE(dot.ok());
  CHECK(dot->output == ".");
}

TEST_CASE("bad build sections are errors naming file, line and column") {
  CHECK(SpecError("build:\n  command: make\n  outptu: dist\n") ==
        "app/relsupd.yaml:3:3: unknown key 'outptu' (did you mean 'output'?)");
  CHECK(SpecError("build:\n  command: make\n  zzz: dist\n") ==
        "app/relsupd.yaml:3:3: unknown key 'zzz' (known keys: command, output)");
  CHECK(SpecError("build:\n  command: [make, dist]\n") ==
        "app/relsupd.yaml:2:12: 'command' must be a string");
  CHECK(SpecError("build:\n  output: {a: b}\n") ==
        "app/relsupd.yaml:2:11: 'output' must be a string");
  CHECK(SpecError("build:\n  command: ''\n") ==
        "app/relsupd.yaml:2:12: 'command' must not be empty");
  // Each spec and how its error begins.
  for (const auto& [yaml, begins] : std::vector<std::pair<std::string, std::string>>{
           {"build:\n  output: /srv/dist\n",
            "app/relsupd.yaml:2:11: output path '/srv/dist' is absolute"},
           {"build:\n  output: dist/../../x\n",
            "app/relsupd.yaml:2:11: output path 'dist/../../x' contains '..'"},
           {"build:\n  output: ''\n", "app/relsupd.yaml:2:11:"},
           {"build: make dist\n", "app/relsupd.yaml:1:8: 'build' must be a mapping"},
           {"build: [\n", "app/relsupd.yaml:"},
           {"- a list\n", "app/relsupd.yaml:1:1:"}})
    CHECK_THAT(SpecError(yaml), Catch::StartsWith(begins));
}

TEST_CASE_METHOD(AppFixture,
                 "a bad process file fails the build before its command runs, "
                 "listing every error and writing nothing") {
  const std::string marker = tmp / "command-ran";
  WriteFile(app + "/relsupd.yaml",
            "biuld:\n"
            "  command: touch " + marker + "\n"
            "processes:\n"
            "  web:\n"
            "    command: ./server\n"
            "    scael: 2\n"
            "    restart: sometimes\n");
  const std::string out = tmp / "a.tar.gz";
  auto sha = Build(app, out);
  REQUIRE_FALSE(sha.ok());
  const std::string& m = sha.status().message();
  CHECK(m ==
        "the process file of '" + app + "' is not valid:\n" +
        app + "/relsupd.yaml:1:1: unknown key 'biuld' (did you mean 'build'?)\n" +
        app + "/relsupd.yaml:6:5: unknown key 'scael' (did you mean 'scale'?)\n" +
        app + "/relsupd.yaml:7:14: 'restart' must be always, on-failure or never, not "
        "'sometimes'");
  CHECK_FALSE(fs::exists(out));
  CHECK_FALSE(fs::exists(out + ".tmp"));
  CHECK_FALSE(fs::exists(marker));

  // A Procfile is checked too, every bad line.
  fs::remove(app + "/relsupd.yaml");
  WriteFile(app + "/Procfile", "web ./server\nWeb: x\nworker: ./w\n");
  sha = Build(app, out);
  REQUIRE_FALSE(sha.ok());
  CHECK_THAT(sha.status().message(),
             Catch::EndsWith("not valid:\n" + app + "/Procfile:1:1: expected 'name: command'\n" +
                             app + "/Procfile:2:1: process type 'Web' is not valid (use "
                             "[a-z0-9][a-z0-9_-]{0,31})"));
  CHECK_FALSE(fs::exists(out));
}

TEST_CASE_METHOD(AppFixture,
                 "the process file in build.output is checked after the build command") {
  // DIR's own file is fine; the one the build command puts in dist is not.
  WriteFile(app + "/relsupd.yaml",
            "build:\n  command: mkdir -p dist && cp later.yaml dist/relsupd.yaml\n"
            "  output: dist\n");
  WriteFile(app + "/later.yaml", "processes:\n  web: {comand: x}\n");
  const std::string out = tmp / "a.tar.gz";
  auto sha = Build(app, out);
  REQUIRE_FALSE(sha.ok());
  CHECK_THAT(sha.status().message(),
             Catch::StartsWith("the process file of build output 'dist' after the build "
                               "command ran is not valid:\ndist/relsupd.yaml:2:9: unknown key "
                               "'comand' (did you mean 'command'?)"));
  CHECK_FALSE(fs::exists(out));
}

TEST_CASE("LoadBuildSpec reads DIR/relsupd.yaml and tolerates its absence") {
  TempDir dir;
  auto none = LoadBuildSpec(dir.path());
  REQUIRE(none.ok());
  CHECK(*none == BuildSpec{});
  WriteFile(dir / "relsupd.yaml", "build:\n  command: true\n  output: out\n");
  auto some = LoadBuildSpec(dir.path());
  REQUIRE(some.ok());
  CHECK(some->command == "true");
  CHECK(some->output == "out");
}

// ---- Formats and SOURCE_DATE_EPOCH ------------------------------------------

TEST_CASE("the archive format comes from --format or the file's suffix") {
  using cli::ArchiveFormatFromFileName;
  CHECK(ArchiveFormatFromFileName("a.tar.gz") == ArchiveFormat::kTarGz);
  CHECK(ArchiveFormatFromFileName("dir/a.tgz") == ArchiveFormat::kTarGz);
  CHECK(ArchiveFormatFromFileName("a.tar.zst") == ArchiveFormat::kTarZst);
  CHECK(ArchiveFormatFromFileName("a.tzst") == ArchiveFormat::kTarZst);
  CHECK(ArchiveFormatFromFileName("a.tar") == ArchiveFormat::kTar);
  CHECK_FALSE(ArchiveFormatFromFileName("a.zip").has_value());
  CHECK_FALSE(ArchiveFormatFromFileName(".tar").has_value());
  CHECK(*cli::ParseArchiveFormat("tar.zst") == ArchiveFormat::kTarZst);
  CHECK_FALSE(cli::ParseArchiveFormat("zip").ok());
}

TEST_CASE("SOURCE_DATE_EPOCH sets the mtime and must be a number") {
  std::optional<std::string> old;
  if (const char* v = std::getenv("SOURCE_DATE_EPOCH")) old = v;
  unsetenv("SOURCE_DATE_EPOCH");
  CHECK(*cli::SourceDateEpoch() == 0);
  setenv("SOURCE_DATE_EPOCH", "1700000000", 1);
  CHECK(*cli::SourceDateEpoch() == 1700000000);
  setenv("SOURCE_DATE_EPOCH", "-5", 1);
  CHECK_FALSE(cli::SourceDateEpoch().ok());
  setenv("SOURCE_DATE_EPOCH", "12abc", 1);
  CHECK_FALSE(cli::SourceDateEpoch().ok());

  // Without BuildOptions::mtime, the build takes it from the environment.
  TempDir tmp;
  WriteFile(tmp / "app/f", "f\n");
  setenv("SOURCE_DATE_EPOCH", "1234567890", 1);
  BuildOptions o;
  o.dir = tmp / "app";
  o.output_file = tmp / "a.tar";
  o.format = ArchiveFormat::kTar;
  REQUIRE(BuildArtifact(o).ok());
  auto entries = ReadArchive(tmp / "a.tar");
  REQUIRE(entries.size() == 1);
  CHECK(entries[0].mtime == 1234567890);
  setenv("SOURCE_DATE_EPOCH", "soon", 1);
  auto bad = BuildArtifact(o);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().message().find("SOURCE_DATE_EPOCH 'soon'") !=
        std::string::npos);

  if (old)
    setenv("SOURCE_DATE_EPOCH", old->c_str(), 1);
  else
    unsetenv("SOURCE_DATE_EPOCH");
}

// ---- Reproducibility
// ----------------------------------------------------------

TEST_CASE(
    "the same input gives byte-identical artifacts, whatever the mtimes") {
  for (ArchiveFormat format :
       {ArchiveFormat::kTarGz, ArchiveFormat::kTarZst, ArchiveFormat::kTar}) {
    std::string ext(cli::ArchiveFormatName(format));
    DYNAMIC_SECTION("format " << ext) {
      TempDir tmp;
      const std::string app = tmp / "app";
      MakeApp(app);
      // A name too long for a plain ustar header needs a pax header.
      const std::string long_name(180, 'n');
      WriteFile(app + "/lib/" + long_name, "long\n");
      WriteFile(app + "/relsupd.yaml",
                "build:\n  command: date +%s%N > /dev/null && echo built\n");

      auto first = Build(app, tmp / ("one." + ext), nullptr, format);
      REQUIRE(first.ok());
      // Touch everything (and the directories) between the two builds.
      for (const auto& e : fs::recursive_directory_iterator(app))
        SetMtime(e.path(), 1000000000 + static_cast<time_t>(rand() % 100000));
      SetMtime(app, 42);
      auto second = Build(app, tmp / ("two." + ext), nullptr, format);
      REQUIRE(second.ok());

      const std::string one = ReadText(tmp / ("one." + ext));
      const std::string two = ReadText(tmp / ("two." + ext));
      CHECK(one == two);
      CHECK(*first == *second);
      CHECK(*first == Sha256Hex(one));
      CHECK(first->size() == 64);
      CHECK_FALSE(fs::exists(tmp / ("one." + ext + ".tmp")));

      auto entries = ReadArchive(tmp / ("one." + ext));
      CHECK(Find(entries, "lib/" + long_name) != nullptr);
      // A content change changes the digest.
      WriteFile(app + "/lib/z.txt", "z2\n");
      auto third = Build(app, tmp / ("three." + ext), nullptr, format);
      REQUIRE(third.ok());
      CHECK(*third != *first);
    }
  }
}

TEST_CASE("gzip output carries no timestamp or file name") {
  TempDir tmp;
  MakeApp(tmp / "app");
  REQUIRE(Build(tmp / "app", tmp / "a.tar.gz").ok());
  const std::string gz = ReadText(tmp / "a.tar.gz");
  REQUIRE(gz.size() > 10);
  CHECK(static_cast<unsigned char>(gz[0]) == 0x1f);
  CHECK(static_cast<unsigned char>(gz[1]) == 0x8b);
  CHECK(gz[3] == 0);  // FLG: no FNAME, FCOMMENT or FEXTRA
  CHECK(gz.substr(4, 4) == std::string(4, '\0'));  // MTIME
}

TEST_CASE_METHOD(AppFixture,
                 "entries are sorted with fixed owner, mtime and normalized modes") {
  BuildReport report;
  auto sha =
      Build(app, tmp / "a.tar.gz", &report, ArchiveFormat::kTarGz, 1700000000);
  REQUIRE(sha.ok());
  auto entries = ReadArchive(tmp / "a.tar.gz");
  const std::vector<std::string> expected = {
      "README",      "bin/",     "bin/server",       "lib/",
      "lib/a-b.txt", "lib/sub/", "lib/sub/deep.txt", "lib/z.txt",
      "run",         "vendor/",  "vendor/mod/",      "vendor/mod/mod.txt"};
  CHECK(Names(entries) == expected);
  CHECK(report.entries == expected.size());
  CHECK_FALSE(report.has_process_file);
  std::vector<std::string> sorted = Names(entries);
  std::sort(sorted.begin(), sorted.end());
  CHECK(sorted == Names(entries));
  for (const Entry& e : entries) {
    INFO(e.name);
    CHECK(e.uid == 0);
    CHECK(e.gid == 0);
    CHECK(e.uname.empty());
    CHECK(e.gname.empty());
    CHECK(e.mtime == 1700000000);
    CHECK_FALSE(e.atime_set);
    CHECK_FALSE(e.ctime_set);
    CHECK_FALSE(e.birthtime_set);
    CHECK(e.xattrs == 0);
    CHECK(e.acls == 0);
    if (e.type == AE_IFDIR) CHECK(e.perm == 0755);
  }
  CHECK(Find(entries, "README")->perm == 0644);            // was 0600
  CHECK(Find(entries, "lib/z.txt")->perm == 0644);         // was 0664
  CHECK(Find(entries, "lib/sub/deep.txt")->perm == 0644);  // was 0444
  CHECK(Find(entries, "bin/server")->perm == 0755);        // was 0700
  CHECK(Find(entries, "bin/server")->data == "#!/bin/sh\necho serving\n");
  const Entry* run = Find(entries, "run");
  REQUIRE(run != nullptr);
  CHECK(run->type == AE_IFLNK);
  CHECK(run->symlink == "bin/server");
}

TEST_CASE_METHOD(AppFixture, ".git is left out of the copy and the artifact") {
  // The build sees no .git either.
  WriteFile(app + "/relsupd.yaml",
            "build:\n  command: test ! -e .git && test ! -e vendor/mod/.git\n");
  REQUIRE(Build(app, tmp / "a.tar.gz").ok());
  for (const std::string& name : Names(ReadArchive(tmp / "a.tar.gz"))) {
    INFO(name);
    CHECK(name.find(".git") == std::string::npos);
  }
  CHECK(fs::exists(app + "/.git/HEAD"));
}

// ---- The build command
// ----------------------------------------------------------

TEST_CASE_METHOD(AppFixture,
                 "build.command runs in a scratch copy, DIR stays unchanged") {
  ScopedTmpdir scratch_parent;
  WriteFile(app + "/relsupd.yaml",
            "build:\n"
            "  command: >-\n"
            "    pwd > where.txt &&\n"
            "    echo built > product.txt &&\n"
            "    echo changed > README &&\n"
            "    rm lib/a-b.txt &&\n"
            "    chmod 0555 lib/sub\n");
  const auto before = Snapshot(app);
  BuildReport report;
  auto sha = Build(app, tmp / "a.tar.gz", &report);
  REQUIRE(sha.ok());
  CHECK_FALSE(report.command_exit_code.has_value());
  CHECK(report.has_process_file);
  CHECK(Snapshot(app) == before);

  auto entries = ReadArchive(tmp / "a.tar.gz");
  REQUIRE(Find(entries, "product.txt") != nullptr);
  CHECK(Find(entries, "product.txt")->data == "built\n");
  CHECK(Find(entries, "README")->data == "changed\n");
  CHECK(Find(entries, "lib/a-b.txt") == nullptr);
  CHECK(Find(entries, "lib/sub/")->perm == 0755);
  // The command ran in a directory named like DIR inside the scratch dir.
  const std::string where = Find(entries, "where.txt")->data;
  CHECK(where.rfind(scratch_parent.dir.path() + "/relsupd-build.", 0) == 0);
  CHECK(where.size() > 5);
  CHECK(where.substr(where.size() - 5) == "/app\n");
  // The scratch directory is gone, read-only subdirectory and all.
  CHECK(scratch_parent.Empty());
}

TEST_CASE_METHOD(AppFixture,
                 "build.output selects the directory packed as the artifact root") {
  WriteFile(app + "/relsupd.yaml",
            "build:\n"
            "  command: mkdir -p dist/bin && cp bin/server dist/bin/ && "
            "cp relsupd.yaml dist/\n"
            "  output: dist\n");
  auto sha = Build(app, tmp / "a.tar.gz");
  REQUIRE(sha.ok());
  CHECK(Names(ReadArchive(tmp / "a.tar.gz")) ==
        std::vector<std::string>{"bin/", "bin/server", "relsupd.yaml"});
  CHECK_FALSE(fs::exists(app + "/dist"));
}

TEST_CASE_METHOD(AppFixture,
                 "a failing build command fails the stage and leaves no file") {
  ScopedTmpdir scratch_parent;
  const std::string out = tmp / "a.tar.gz";

  SECTION("a non-zero exit status is passed on") {
    WriteFile(app + "/relsupd.yaml",
              "build:\n  command: echo partial > product.txt; exit 3\n");
    BuildReport report;
    auto sha = Build(app, out, &report);
    REQUIRE_FALSE(sha.ok());
    CHECK(sha.status().message() == "build command failed with exit status 3");
    REQUIRE(report.command_exit_code.has_value());
    CHECK(*report.command_exit_code == 3);
  }
  SECTION("death by a signal is exit code 1") {
    WriteFile(app + "/relsupd.yaml", "build:\n  command: kill -KILL $$\n");
    BuildReport report;
    auto sha = Build(app, out, &report);
    REQUIRE_FALSE(sha.ok());
    CHECK(sha.status().message().find("killed by signal 9") !=
          std::string::npos);
    REQUIRE(report.command_exit_code.has_value());
    CHECK(*report.command_exit_code == 1);
  }
  CHECK_FALSE(fs::exists(out));
  CHECK_FALSE(fs::exists(out + ".tmp"));
  CHECK_FALSE(fs::exists(app + "/product.txt"));
  CHECK(scratch_parent.Empty());
}

TEST_CASE_METHOD(AppFixture,
                 "SIGTERM to the builder is passed on to the build command") {
  ScopedTmpdir scratch_parent;
  // The shell signals its parent, the builder, which must survive, pass the
  // signal on and clean up.
  WriteFile(app + "/relsupd.yaml",
            "build:\n  command: kill -TERM $PPID; exec sleep 30\n");
  struct sigaction before {};
  REQUIRE(sigaction(SIGTERM, nullptr, &before) == 0);
  BuildReport report;
  auto sha = Build(app, tmp / "a.tar.gz", &report);
  REQUIRE_FALSE(sha.ok());
  CHECK(sha.status().message().find("killed by signal 15") !=
        std::string::npos);
  CHECK(report.command_exit_code == 1);
  CHECK_FALSE(fs::exists(tmp / "a.tar.gz"));
  CHECK(scratch_parent.Empty());
  // The builder's own disposition is back in place.
  struct sigaction after {};
  REQUIRE(sigaction(SIGTERM, nullptr, &after) == 0);
  CHECK(after.sa_handler == before.sa_handler);
}

TEST_CASE_METHOD(AppFixture,
                 "the relsupd binary exits with the build command's status") {
  const std::string out = tmp / "a.tar.gz";
  const std::string stdout_file = tmp / "stdout";

  WriteFile(app + "/relsupd.yaml", "build:\n  command: exit 5\n");
  CHECK(RunRelsupd({"build", app, "-o", out}, stdout_file) == 5);
  CHECK_FALSE(fs::exists(out));
  CHECK_FALSE(fs::exists(out + ".tmp"));
  CHECK(ReadText(stdout_file).empty());

  // On success, stdout is the digest line and nothing else: the command's
  // own stdout goes to stderr.
  WriteFile(app + "/relsupd.yaml", "build:\n  command: echo noise\n");
  CHECK(RunRelsupd({"build", app, "-o", out}, stdout_file) == 0);
  CHECK(ReadText(stdout_file) ==
        "sha256:" + Sha256Hex(ReadText(out)) + "  " + out + "\n");

  // Other failures are exit code 1; usage errors 2.
  CHECK(RunRelsupd({"build", tmp / "missing", "-o", out}, stdout_file) == 1);
  CHECK(RunRelsupd({"build", app, "-o", out, "--format", "zip"}, stdout_file) ==
        2);
  CHECK(RunRelsupd({"build", app}, stdout_file) == 2);
}

// ---- Bad input
// -------------------------------------------------------------------

TEST_CASE_METHOD(AppFixture,
                 "an invalid relsupd.yaml fails the build naming file:line:col") {
  WriteFile(app + "/relsupd.yaml", "build:\n  command: make\n  ouput: dist\n");
  auto sha = Build(app, tmp / "a.tar.gz");
  REQUIRE_FALSE(sha.ok());
  CHECK_THAT(sha.status().message(),
             Catch::Contains("\n" + app + "/relsupd.yaml:3:3: unknown key 'ouput'"));
  CHECK_FALSE(fs::exists(tmp / "a.tar.gz"));
}

TEST_CASE_METHOD(AppFixture, "a fifo in DIR is an error naming it") {
  REQUIRE(mkfifo((app + "/lib/pipe").c_str(), 0644) == 0);
  auto sha = Build(app, tmp / "a.tar.gz");
  REQUIRE_FALSE(sha.ok());
  CHECK(sha.status().message() ==
        "'" + app +
            "/lib/pipe' is a fifo; only regular files, directories "
            "and symlinks can go into an artifact");
  CHECK_FALSE(fs::exists(tmp / "a.tar.gz"));
  CHECK_FALSE(fs::exists(tmp / "a.tar.gz.tmp"));
}

TEST_CASE_METHOD(
    AppFixture,
    "a fifo, escaping symlink or reserved name made by the build is an error") {
  SECTION("fifo") {
    WriteFile(app + "/relsupd.yaml",
              "build:\n  command: mkdir -p out/x && mkfifo out/x/p\n"
              "  output: out\n");
    auto sha = Build(app, tmp / "a.tar.gz");
    REQUIRE_FALSE(sha.ok());
    CHECK(sha.status().message().rfind("'out/x/p' is a fifo", 0) == 0);
  }
  SECTION("absolute symlink") {
    WriteFile(app + "/relsupd.yaml",
              "build:\n  command: ln -s /etc/passwd pw\n");
    auto sha = Build(app, tmp / "a.tar.gz");
    REQUIRE_FALSE(sha.ok());
    CHECK(sha.status().message().rfind(
              "symlink 'pw' -> '/etc/passwd' is absolute", 0) == 0);
  }
  SECTION("the reserved .relsupd at the root") {
    WriteFile(app + "/relsupd.yaml", "build:\n  command: mkdir .relsupd\n");
    auto sha = Build(app, tmp / "a.tar.gz");
    REQUIRE_FALSE(sha.ok());
    CHECK(sha.status().message().rfind("'.relsupd' is a name reserved", 0) ==
          0);
  }
  SECTION("symlink climbing out") {
    WriteFile(app + "/relsupd.yaml",
              "build:\n  command: ln -s ../../x lib/up\n");
    auto sha = Build(app, tmp / "a.tar.gz");
    REQUIRE_FALSE(sha.ok());
    CHECK(sha.status().message() ==
          "symlink 'lib/up' -> '../../x' points outside the artifact");
  }
  CHECK_FALSE(fs::exists(tmp / "a.tar.gz"));
  CHECK_FALSE(fs::exists(tmp / "a.tar.gz.tmp"));
}

TEST_CASE("a missing DIR or build output is a clear error") {
  TempDir tmp;
  auto missing = Build(tmp / "nope", tmp / "a.tar.gz");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.status().code() == StatusCode::kNotFound);
  CHECK(missing.status().message() ==
        "source directory '" + tmp / "nope" + "' does not exist");

  const std::string app = tmp / "app";
  MakeApp(app);
  WriteFile(app + "/relsupd.yaml",
            "build:\n  command: 'true'\n  output: dist\n");
  auto no_output = Build(app, tmp / "a.tar.gz");
  REQUIRE_FALSE(no_output.ok());
  CHECK(no_output.status().message() ==
        "build output 'dist' does not exist in '" + app +
            "' after the build command ran");

  auto no_parent = Build(app, tmp / "no/such/dir/a.tar.gz");
  REQUIRE_FALSE(no_parent.ok());
  CHECK(no_parent.status().message().find("does not exist") !=
        std::string::npos);
  CHECK_FALSE(fs::exists(tmp / "a.tar.gz"));
}

TEST_CASE_METHOD(AppFixture,
                 "an artifact written inside DIR is not packed into the next one") {
  const std::string out = app + "/app.tar.gz";
  auto first = Build(app, out);
  REQUIRE(first.ok());
  auto second = Build(app, out);
  REQUIRE(second.ok());
  CHECK(*first == *second);
  CHECK(Find(ReadArchive(out), "app.tar.gz") == nullptr);
}

}  // namespace
}  // namespace relsupd
