// The artifact store (daemon/store/): ArchiveReader's checks of every entry,
// BuildSlot's staging, sealing and content store, tree objects (the stored
// manifest), VerifySlot and CleanStaging. Archives are crafted with libarchive's writer, which writes
// whatever it is told: "../x", "/etc/x", hard links, fifos, device nodes.
//
// After every refusal the state dir must hold no slot, nothing in tmp/ and
// no object that no slot links (a refused build removes what it added).
#include <archive.h>
#include <archive_entry.h>
#include <catch2/catch.hpp>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "daemon/base/fd.h"
#include "daemon/base/release_id.h"
#include "daemon/base/sha256.h"
#include "daemon/store/archive_reader.h"
#include "daemon/store/fs.h"
#include "daemon/store/layout.h"
#include "daemon/store/manifest.h"
#include "daemon/store/objects.h"
#include "daemon/store/slots.h"
#include "daemon/store/tree.h"
#include "tests/support/fs.h"
#include "tests/support/hostile_artifacts.h"
#include "tests/support/tar.h"
#include "tests/support/temp_dir.h"

namespace relsupd {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// --- temp dirs and crafted archives ---

using support::Dir;
using support::Entry;
using support::File;
using support::Filter;
using support::HardLink;
using support::Noise;
using support::Procfile;
using support::ReadText;
using support::Special;
using support::Symlink;
using support::TempDir;
using support::WriteArchive;
using support::WriteText;

// Reads every entry (and every file's data) as the importer does. Returns
// the first refusal, or Ok with the entries in `out`.
Status ReadArchive(const std::string& file, const StoreLimits& limits,
                   std::vector<ArchiveEntry>* out = nullptr,
                   std::string* format = nullptr) {
  ASSIGN_OR_RETURN(Fd fd, OpenFile(file, O_RDONLY));
  struct stat st;
  REQUIRE(::fstat(fd.get(), &st) == 0);
  ASSIGN_OR_RETURN(auto reader, ArchiveReader::Open(fd.get(), "app.tar.gz",
                                                    static_cast<uint64_t>(st.st_size),
                                                    limits));
  for (;;) {
    ASSIGN_OR_RETURN(std::optional<ArchiveEntry> e, reader->Next());
    if (!e) break;
    if (e->type == EntryType::kFile) {
      std::string body;
      RETURN_IF_ERROR(reader->ReadData([&](std::string_view d) {
        if (body.size() < (1 << 20)) body.append(d.substr(0, (1 << 20) - body.size()));
        return Status::Ok();
      }));
    }
    if (out) out->push_back(*e);
  }
  if (format) *format = reader->format();
  return Status::Ok();
}

// --- a state dir with BuildSlot on it ---

struct State {
  TempDir dir{"relsupd-test-store"};
  std::string state = dir / "state";
  int artifacts = 0;

  // Writes `entries` as an artifact and returns its path.
  std::string Artifact(const std::vector<Entry>& entries, Filter f = Filter::kGzip) {
    std::string p = dir / ("artifact-" + std::to_string(++artifacts) + ".tar");
    WriteArchive(p, entries, f);
    return p;
  }
  Result<SlotResult> Build(const std::string& artifact, int64_t number,
                           json env = json{{"DATABASE_URL", "postgres://x"}},
                           StoreLimits limits = {}) {
    SlotRequest req;
    req.state_dir = state;
    req.app = "shop";
    req.number = number;
    req.artifact_path = artifact;
    req.build_sha256 = Sha256Hex(ReadText(artifact));
    req.env = std::move(env);
    req.metadata = {{"app", "shop"}, {"release", ReleaseId(number).ToString()}};
    req.limits = limits;
    return BuildSlot(req);
  }
  std::string Slot(int64_t n) const { return SlotPath(state, "shop", n); }

  std::vector<std::string> TmpEntries() const {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(state + "/tmp", ec))
      out.push_back(e.path().filename().string());
    return out;
  }
  // The tree objects slot vN links, by hash.
  std::set<std::string> SlotTrees(int64_t n) const {
    std::set<std::string> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(Slot(n) + "/.relsupd/trees", ec))
      out.insert(e.path().filename().string());
    return out;
  }
  // Files under objects/ whose name ends in `suffix`.
  std::set<std::string> StoreFiles(const std::string& suffix = "") const {
    std::set<std::string> out;
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(state + "/objects", ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      const std::string name = it->path().filename().string();
      if (it->is_regular_file() && name.ends_with(suffix)) out.insert(name);
    }
    return out;
  }
  // Regular files under objects/ with a link count of 1: bodies no slot uses.
  int OrphanObjects() const { return support::OrphanObjects(state + "/objects"); }
  // No slot vN, nothing in tmp/, and no object that no slot links: a
  // refused build removes what it added to the store.
  void ExpectNothingLeft(int64_t n) {
    CHECK_FALSE(fs::exists(fs::symlink_status(Slot(n))));
    CHECK(TmpEntries().empty());
    CHECK(OrphanObjects() == 0);
  }
};

// How many regular files there are under `dir`, at any depth.
int RegularFilesUnder(const std::string& dir) {
  int files = 0;
  for (auto it = fs::recursive_directory_iterator(dir);
       it != fs::recursive_directory_iterator(); ++it)
    files += it->is_regular_file();
  return files;
}

mode_t ModeOf(const std::string& path) {
  struct stat st;
  REQUIRE(::lstat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}
ino_t InodeOf(const std::string& path) {
  struct stat st;
  REQUIRE(::lstat(path.c_str(), &st) == 0);
  return st.st_ino;
}

// One bad input: what the archive holds and what the refusal must say.
struct BadCase {
  std::string name;
  std::vector<Entry> entries;
  std::vector<std::string> message_has;
  StoreLimits limits = {};
  Filter filter = Filter::kGzip;
};

StoreLimits Limits(uint64_t max_entries, uint64_t max_unpacked) {
  StoreLimits l;
  l.max_entries = max_entries;
  l.max_unpacked_bytes = max_unpacked;
  return l;
}

// The hostile entries every layer refuses (hostile_artifacts.h), then the
// limits only the store's own options set.
std::vector<BadCase> BadArchives() {
  Entry bomb = File("zeros.bin", "");
  bomb.zeros = uint64_t{64} << 20;  // 64 MiB of zeros: ~64 KiB gzipped, ~1000:1
  std::vector<BadCase> cases;
  for (auto& h : support::HostileArtifacts())
    cases.push_back({std::move(h.name), std::move(h.entries), std::move(h.message_has)});
  for (BadCase& c : std::vector<BadCase>{
           {"more entries than max_entries",
            {Procfile(), File("a", "1"), File("b", "2"), File("c", "3"), File("d", "4")},
            {"max_entries", "4"},
            Limits(4, uint64_t{1} << 30)},
           {"a file larger than max_unpacked_bytes",
            {Procfile(), File("big", std::string(5000, 'x'))},
            {"'big'", "max_unpacked_bytes"},
            Limits(100, 4096)},
           {"files that together exceed max_unpacked_bytes",
            {Procfile(), File("a", std::string(3000, 'a')), File("b", std::string(3000, 'b'))},
            {"max_unpacked_bytes", "4096"},
            Limits(100, 4096)},
           {"a 1000:1 decompression bomb", {Procfile(), bomb}, {"decompression bomb", "200"}},
       })
    cases.push_back(std::move(c));
  return cases;
}

// --- ArchiveReader ---

TEST_CASE("NormalizeEntryPath strips ./ and trailing slashes and refuses escapes",
          "[store][reader]") {
  CHECK(*NormalizeEntryPath("./a/b/", 1024) == "a/b");
  CHECK(*NormalizeEntryPath("a//./b", 1024) == "a/b");
  CHECK(*NormalizeEntryPath("./", 1024) == "");
  CHECK_FALSE(NormalizeEntryPath("/a", 1024).ok());
  CHECK_FALSE(NormalizeEntryPath("a/../b", 1024).ok());
  CHECK_FALSE(NormalizeEntryPath("..", 1024).ok());
  CHECK_FALSE(NormalizeEntryPath(".relsupd", 1024).ok());
  CHECK_FALSE(NormalizeEntryPath("./.relsupd/x", 1024).ok());
  CHECK(NormalizeEntryPath("a/.relsupd", 1024).ok());  // only the top level is reserved
  CHECK_FALSE(NormalizeEntryPath(std::string(2000, 'a'), 1024).ok());
  CHECK_FALSE(NormalizeEntryPath(std::string(300, 'a'), 1024).ok());  // NAME_MAX
}

TEST_CASE("SymlinkStaysInside judges the target lexically", "[store][reader]") {
  CHECK(SymlinkStaysInside("a", "b"));
  CHECK(SymlinkStaysInside("a/b", "../c"));
  CHECK(SymlinkStaysInside("s", "."));
  CHECK_FALSE(SymlinkStaysInside("a", ".."));
  CHECK_FALSE(SymlinkStaysInside("a/b", "../../c"));
  CHECK_FALSE(SymlinkStaysInside("a", "/etc"));
  CHECK_FALSE(SymlinkStaysInside("a", ""));
  CHECK_FALSE(SymlinkStaysInside("a", "b/../../c"));
}

TEST_CASE("ArchiveReader refuses each bad entry with a message naming it",
          "[store][reader]") {
  for (const BadCase& c : BadArchives()) {
    DYNAMIC_SECTION(c.name) {
      TempDir dir;
      const std::string file = dir / "app.tar.gz";
      WriteArchive(file, c.entries, c.filter);
      Status s = ReadArchive(file, c.limits);
      INFO(s.message());
      REQUIRE_FALSE(s.ok());
      CHECK(s.code() == StatusCode::kInvalidArgument);
      CHECK_THAT(s.message(), Catch::Contains("app.tar.gz"));
      for (const std::string& part : c.message_has)
        CHECK_THAT(s.message(), Catch::Contains(part));
    }
  }
}

TEST_CASE("ArchiveReader refuses an artifact over max_artifact_bytes before reading",
          "[store][reader]") {
  TempDir dir;
  const std::string file = dir / "app.tar.gz";
  WriteArchive(file, {Procfile(), File("a", std::string(10000, 'a'))}, Filter::kNone);
  StoreLimits l;
  l.max_artifact_bytes = 1000;
  Status s = ReadArchive(file, l);
  INFO(s.message());
  REQUIRE_FALSE(s.ok());
  CHECK_THAT(s.message(), Catch::Contains("over the limit of 1000"));
}

TEST_CASE("ArchiveReader refuses what is not a tar archive", "[store][reader]") {
  TempDir dir;
  SECTION("text") {
    WriteText(dir / "app.tar.gz", "this is not an archive, just some text\n");
  }
  SECTION("random bytes") {
    std::string junk;
    for (int i = 0; i < 4096; ++i) junk.push_back(static_cast<char>((i * 7919 + 13) % 251));
    WriteText(dir / "app.tar.gz", junk);
  }
  SECTION("an empty file") { WriteText(dir / "app.tar.gz", ""); }
  SECTION("gzip of text") {
    // A valid gzip stream around something that is not tar.
    struct archive* a = archive_write_new();
    REQUIRE(archive_write_set_format_raw(a) == ARCHIVE_OK);
    REQUIRE(archive_write_add_filter_gzip(a) == ARCHIVE_OK);
    REQUIRE(archive_write_open_filename(a, (dir / "app.tar.gz").c_str()) == ARCHIVE_OK);
    struct archive_entry* ae = archive_entry_new();
    archive_entry_set_pathname(ae, "x");
    archive_entry_set_filetype(ae, AE_IFREG);
    const std::string text(3000, 'q');
    archive_entry_set_size(ae, static_cast<la_int64_t>(text.size()));
    REQUIRE(archive_write_header(a, ae) == ARCHIVE_OK);
    REQUIRE(archive_write_data(a, text.data(), text.size()) ==
            static_cast<la_ssize_t>(text.size()));
    archive_entry_free(ae);
    REQUIRE(archive_write_close(a) == ARCHIVE_OK);
    archive_write_free(a);
  }
  Status s = ReadArchive(dir / "app.tar.gz", {});
  INFO(s.message());
  REQUIRE_FALSE(s.ok());
  CHECK(s.code() == StatusCode::kInvalidArgument);
  CHECK_THAT(s.message(), Catch::Contains("app.tar.gz"));
  CHECK_THAT(s.message(), Catch::Contains("not a") && Catch::Contains("tar archive"));
}

// Found by tests/fuzz/fuzz_archive (corpus/archive/gzip_open_no_message):
// a corrupt gzip stream (a mutation of the zeros.tar.gz seed) fails
// archive_read_open_fd with no error string, and the message built from the null pointer was a
// SIGSEGV in the importer (strlen(NULL)).
TEST_CASE("ArchiveReader refuses a corrupt gzip that libarchive gives no message for",
          "[store][reader]") {
  static const unsigned char kInput[] = {
      0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x03, 0xed, 0xcd,
      0xb1, 0x09, 0x80, 0x30, 0x14, 0x04, 0xd0, 0x8c, 0xe2, 0x08, 0x41, 0x3e,
      0x3a, 0x8f, 0x85, 0xb5, 0x90, 0x68, 0xe3, 0xf4, 0x06, 0xd1, 0x22, 0x03,
      0x68, 0xf5, 0x5e, 0x73, 0xc7, 0x35, 0x77, 0xae, 0x65, 0xab, 0xe9, 0x5b,
      0xb9, 0x99, 0x22, 0xee, 0x6c, 0xba, 0x8c, 0x7e, 0x7b, 0xfa, 0x9c, 0xc7,
      0x48, 0x43, 0x4e, 0x3f, 0x38, 0xea, 0xbe, 0x94, 0x76, 0x99, 0x00, 0x00,
      0xdb, 0xdb, 0xdb, 0xdb, 0xdb, 0xdb, 0xdb, 0xdb, 0xdb, 0xdb, 0xdb, 0xdb,
      0xdb, 0xdb, 0xdb, 0xdb, 0xdb, 0xdb, 0xdb, 0xdb, 0xdb, 0xdb, 0xdb, 0xdb,
      0xdb, 0xdb, 0xdb, 0xdb, 0xdb, 0xdb, 0xdb, 0xdb, 0xdb, 0xdb, 0xdb, 0xdb,
      0xdb, 0xdb, 0xdb, 0xdb, 0xdb, 0xdb, 0xdb, 0xdb, 0xdb, 0xdb, 0xdb, 0xdb,
      0xdb, 0xdb, 0xdb, 0xdb, 0xdb, 0xdb, 0xdb, 0xdb, 0xdb, 0xdb, 0xdb, 0xdb,
      0xdb, 0xdb, 0xdb, 0xdb, 0xdb, 0xdb, 0xdb, 0xdb, 0xdb, 0xdb, 0x00, 0x00,
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
      0x00, 0x00, 0xf7, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xfa, 0xd7, 0x05,
      0x86, 0xb8, 0xe6, 0xc0, 0x00, 0x18, 0x10, 0x00
  };
  TempDir dir;
  WriteText(dir / "app.tar.gz",
             std::string_view(reinterpret_cast<const char*>(kInput), sizeof kInput));
  Status s = ReadArchive(dir / "app.tar.gz", {});
  INFO(s.message());
  REQUIRE_FALSE(s.ok());
  CHECK(s.code() == StatusCode::kInvalidArgument);
  CHECK_THAT(s.message(), Catch::Contains("app.tar.gz"));
}

TEST_CASE("ArchiveReader refuses a truncated archive", "[store][reader]") {
  TempDir dir;
  const std::string whole = dir / "whole.tar";
  // Bodies that do not compress (nor repeat: zstd would find the copy), so
  // a cut lands inside the data.
  Filter filter = GENERATE(Filter::kNone, Filter::kGzip, Filter::kZstd);
  WriteArchive(whole, {Procfile(), File("a.bin", Noise(200'000, 1)), File("b.bin", Noise(200'000, 2))},
               filter);
  const std::string bytes = ReadText(whole);
  REQUIRE(bytes.size() > 300'000);
  // A third of the way: inside a.bin's data.
  const std::string cut = dir / "app.tar.gz";
  WriteText(cut, std::string_view(bytes).substr(0, bytes.size() / 3));
  Status s = ReadArchive(cut, {});
  INFO(s.message());
  REQUIRE_FALSE(s.ok());
  CHECK(s.code() == StatusCode::kInvalidArgument);
  CHECK_THAT(s.message(), Catch::Contains("truncated"));
  CHECK_THAT(s.message(), Catch::Contains("'a.bin'") || Catch::Contains("'b.bin'"));
}

TEST_CASE("ArchiveReader masks modes: no setuid, setgid, sticky or group/other write",
          "[store][reader]") {
  TempDir dir;
  const std::string file = dir / "app.tar.gz";
  WriteArchive(file, {Procfile(), File("suid", "x", 04755), File("sgid", "x", 02755),
                      File("world", "x", 0666), File("private", "x", 0600),
                      Dir("sticky", 01777), Dir("closed", 0500)});
  std::vector<ArchiveEntry> entries;
  Status s = ReadArchive(file, {}, &entries);
  INFO(s.message());
  REQUIRE(s.ok());
  std::map<std::string, uint32_t> modes;
  for (const auto& e : entries) modes[e.path] = e.mode;
  CHECK(modes.at("suid") == 0755);
  CHECK(modes.at("sgid") == 0755);
  CHECK(modes.at("world") == 0644);
  CHECK(modes.at("private") == 0600);
  CHECK(modes.at("sticky") == 0755);
  CHECK((modes.at("closed") & 0700) == 0700);  // the owner can always enter
}

TEST_CASE("ArchiveReader reads plain, gzip and zstd tar", "[store][reader]") {
  auto [filter, name] = GENERATE(table<Filter, std::string>({{Filter::kNone, "tar"},
                                                             {Filter::kGzip, "tar.gz"},
                                                             {Filter::kZstd, "tar.zst"}}));
  TempDir dir;
  const std::string file = dir / "app";
  WriteArchive(file, {Dir("./"), Procfile(), Dir("bin"), File("bin/web", "#!/bin/sh\n", 0755),
                      Symlink("web", "bin/web"), Symlink("bin/self", "../bin")},
               filter);
  std::vector<ArchiveEntry> entries;
  std::string format;
  Status s = ReadArchive(file, {}, &entries, &format);
  INFO(s.message());
  REQUIRE(s.ok());
  CHECK(format == name);
  REQUIRE(entries.size() == 5);  // "./" itself is not an entry
  CHECK(entries[0].path == "Procfile");
  CHECK(entries[2].path == "bin/web");
  CHECK(entries[2].size == 10);
  CHECK(entries[3].type == EntryType::kSymlink);
  CHECK(entries[3].target == "bin/web");
}

TEST_CASE("ArchiveReader and BuildSlot keep a sparse file's full size, a trailing hole included",
          "[store][reader][sparse]") {
  // Data at 4 KiB and 64 KiB, holes before, between and after: 1 MiB in all.
  const uint64_t size = 1 << 20;
  Entry tail = File("data/tail-hole.bin", "");
  tail.zeros = size;
  tail.sparse = {{4096, std::string(4096, 'a')}, {65536, std::string(100, 'b')}};
  // Data at the end: no trailing hole (read right before the fix too).
  Entry end = File("data/end.bin", "");
  end.zeros = 10000;
  end.sparse = {{9000, std::string(1000, 'c')}};
  auto expected = [](const Entry& e) {
    std::string body(e.zeros, '\0');
    for (const auto& [offset, data] : e.sparse) body.replace(offset, data.size(), data);
    return body;
  };
  auto filter = GENERATE(Filter::kNone, Filter::kGzip);
  State st;
  const std::string artifact = st.Artifact({Procfile(), Dir("data"), tail, end}, filter);

  // What the reader streams: every byte, holes as zeros.
  auto fd = OpenFile(artifact, O_RDONLY);
  REQUIRE(fd.ok());
  auto reader = ArchiveReader::Open(fd->get(), "sparse", fs::file_size(artifact), {});
  REQUIRE(reader.ok());
  std::map<std::string, std::string> bodies;
  std::map<std::string, uint64_t> sizes;
  for (;;) {
    auto e = (*reader)->Next();
    INFO(e.status().message());
    REQUIRE(e.ok());
    if (!*e) break;
    if ((*e)->type != EntryType::kFile) continue;
    sizes[(*e)->path] = (*e)->size;
    std::string& body = bodies[(*e)->path];
    REQUIRE((*reader)->ReadData([&](std::string_view d) {
      body.append(d);
      return Status::Ok();
    }).ok());
  }
  CHECK(sizes["data/tail-hole.bin"] == size);
  CHECK(bodies["data/tail-hole.bin"].size() == size);
  CHECK(bodies["data/tail-hole.bin"] == expected(tail));
  CHECK(bodies["data/end.bin"] == expected(end));
  CHECK((*reader)->unpacked_bytes() == size + 10000 + 15);

  // What the slot holds, and the slot verifies.
  auto slot = st.Build(artifact, 1);
  INFO(slot.status().message());
  REQUIRE(slot.ok());
  CHECK(fs::file_size(st.Slot(1) + "/data/tail-hole.bin") == size);
  CHECK(ReadText(st.Slot(1) + "/data/tail-hole.bin") == expected(tail));
  CHECK(ReadText(st.Slot(1) + "/data/end.bin") == expected(end));
  auto manifest = ReadSlotManifest(st.Slot(1));
  REQUIRE(manifest.ok());
  CHECK(manifest->entries.at("data/tail-hole.bin").size == size);
  auto verify = VerifySlot(st.Slot(1), slot->digest, Sha256Hex(ReadText(artifact)));
  REQUIRE(verify.ok());
  CHECK(verify->ok());
}

// --- BuildSlot ---

TEST_CASE("BuildSlot refuses each bad artifact and leaves nothing behind",
          "[store][slot]") {
  for (const BadCase& c : BadArchives()) {
    DYNAMIC_SECTION(c.name) {
      State st;
      auto r = st.Build(st.Artifact(c.entries, c.filter), 1, json::object(), c.limits);
      INFO(r.status().message());
      REQUIRE_FALSE(r.ok());
      CHECK(r.status().code() == StatusCode::kInvalidArgument);
      for (const std::string& part : c.message_has)
        CHECK_THAT(r.status().message(), Catch::Contains(part));
      st.ExpectNothingLeft(1);
    }
  }
}

TEST_CASE("BuildSlot refuses a symlink that escapes through an earlier symlink",
          "[store][slot]") {
  // Each link is inside the slot when read alone (the reader lets it
  // pass); together they resolve outside.
  auto [name, entries, culprit] = GENERATE(table<std::string, std::vector<Entry>, std::string>({
      {"s -> . then t -> s/..", {Procfile(), Symlink("s", "."), Symlink("t", "s/..")}, "'t'"},
      {"a/s -> .. then t -> a/s/..",
       {Procfile(), Dir("a"), Symlink("a/s", ".."), Symlink("t", "a/s/..")},
       "'t'"},
      {"through a chain, to a file outside",
       {Procfile(), Symlink("s", "."), Symlink("u", "s/s/s/../etc/passwd")},
       "'u'"},
  }));
  INFO(name);
  State st;
  const std::string artifact = st.Artifact(entries);
  // The first layer (lexical) admits it...
  CHECK(ReadArchive(artifact, {}).ok());
  // ...the second (where it really resolves) does not.
  auto r = st.Build(artifact, 1);
  INFO(r.status().message());
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == StatusCode::kInvalidArgument);
  CHECK_THAT(r.status().message(), Catch::Contains(culprit));
  CHECK_THAT(r.status().message(), Catch::Contains("leaves the slot"));
  st.ExpectNothingLeft(1);
}

TEST_CASE("BuildSlot refuses a truncated or non-archive artifact and leaves nothing behind",
          "[store][slot]") {
  State st;
  std::string artifact;
  SECTION("not an archive") {
    artifact = st.dir / "junk.tar.gz";
    WriteText(artifact, "#!/bin/sh\necho not a tarball\n");
  }
  SECTION("truncated") {
    const std::string whole = st.Artifact({Procfile(), File("a.bin", Noise(300'000, 3))});
    const std::string bytes = ReadText(whole);
    artifact = st.dir / "cut.tar.gz";
    WriteText(artifact, std::string_view(bytes).substr(0, bytes.size() * 2 / 3));
  }
  auto r = st.Build(artifact, 1);
  INFO(r.status().message());
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == StatusCode::kInvalidArgument);
  CHECK_THAT(r.status().message(),
             Catch::Contains("not a") || Catch::Contains("truncated"));
  st.ExpectNothingLeft(1);
}

TEST_CASE("BuildSlot refuses a bad process file naming file, line and column",
          "[store][slot][process-file]") {
  // Each artifact holds one file: `file` with `text`.
  struct Case {
    const char* name;
    const char* file;
    const char* text;
    std::vector<std::string> expect;  // parts of the message
  };
  const Case cases[] = {
      {"YAML syntax error", "relsupd.yaml", "processes:\n  web:\n    command: [./bin/web\n",
       {"relsupd.yaml:", "invalid YAML"}},
      {"unknown key in a process", "relsupd.yaml",
       "processes:\n  web:\n    command: ./bin/web\n    colour: red\n",
       {"relsupd.yaml:4:5", "unknown key 'colour'"}},
      {"unknown top-level key", "relsupd.yaml", "deploy: yes\nprocesses:\n  web:\n    command: x\n",
       {"relsupd.yaml:1:1", "unknown key 'deploy'"}},
      {"a bad value", "relsupd.yaml",
       "processes:\n  web:\n    command: x\n    restart: sometimes\n",
       {"relsupd.yaml:4:14", "restart"}},
      {"a broken Procfile", "Procfile", "web ./bin/web\n", {"Procfile:1:", "expected 'name: command'"}},
      {"no process file at all", "README", "hello\n", {"no process file", "relsupd.yaml", "Procfile"}},
      {"a relsupd.yaml without processes and no Procfile", "relsupd.yaml",
       "build:\n  command: make\n", {"no process file"}},
  };
  for (const Case& c : cases) {
    DYNAMIC_SECTION(c.name) {
      State st;
      auto r = st.Build(st.Artifact({File(c.file, c.text)}), 1);
      INFO(r.status().message());
      REQUIRE_FALSE(r.ok());
      CHECK(r.status().code() == StatusCode::kInvalidArgument);
      for (const auto& part : c.expect) CHECK_THAT(r.status().message(), Catch::Contains(part));
      st.ExpectNothingLeft(1);
    }
  }
}

TEST_CASE("BuildSlot accepts a Procfile alone, or relsupd.yaml", "[store][slot][process-file]") {
  State st;
  auto a = st.Build(st.Artifact({File("Procfile", "# comment\nweb: ./bin/web\nworker: ./w\n")}), 1);
  INFO(a.status().message());
  REQUIRE(a.ok());
  auto meta = ReadFile(st.Slot(1) + "/.relsupd/release.json", 1 << 20);
  REQUIRE(meta.ok());
  CHECK(json::parse(*meta)["process_file"] == "Procfile");

  auto b = st.Build(st.Artifact({File("relsupd.yaml", "processes:\n  web:\n    command: ./x\n"),
                                 File("Procfile", "ignored: yes\n")}),
                    2);
  INFO(b.status().message());
  REQUIRE(b.ok());
  meta = ReadFile(st.Slot(2) + "/.relsupd/release.json", 1 << 20);
  REQUIRE(meta.ok());
  CHECK(json::parse(*meta)["process_file"] == "relsupd.yaml");
}

TEST_CASE("BuildSlot seals a good artifact read-only with its manifest and config",
          "[store][slot]") {
  State st;
  const std::string artifact = st.Artifact({
      Dir("./"),
      Procfile(),
      Dir("bin", 0775),
      File("bin/web", "#!/bin/sh\nexec sleep 1000\n", 04775),  // setuid, group write
      File("bin/tool", "#!/bin/sh\n", 02755),                   // setgid
      Dir("public", 01777),                                     // sticky, world write
      File("public/index.html", "<h1>hi</h1>\n", 0666),
      File("public/empty", "", 0644),
      Symlink("public/web", "../bin/web"),
      File("deep/er/file.txt", "implied parents\n"),  // parents not in the archive
  });
  const json env = {{"DATABASE_URL", "postgres://db/shop"}, {"SECRET", "s3cret"}};
  auto r = st.Build(artifact, 1, env);
  INFO(r.status().message());
  REQUIRE(r.ok());
  const std::string slot = st.Slot(1);
  CHECK(r->files == 6);
  CHECK(r->digest.size() == 64);

  // Modes on disk: files 0444/0555, no special bits; directories 0555.
  CHECK(ModeOf(slot) == 0555);
  CHECK(ModeOf(slot + "/bin") == 0555);
  CHECK(ModeOf(slot + "/public") == 0555);
  CHECK(ModeOf(slot + "/deep") == 0555);
  CHECK(ModeOf(slot + "/deep/er") == 0555);
  CHECK(ModeOf(slot + "/bin/web") == 0555);
  CHECK(ModeOf(slot + "/bin/tool") == 0555);
  CHECK(ModeOf(slot + "/public/index.html") == 0444);
  CHECK(ModeOf(slot + "/public/empty") == 0444);
  CHECK(ModeOf(slot + "/Procfile") == 0444);
  CHECK(ModeOf(slot + "/deep/er/file.txt") == 0444);
  CHECK(fs::read_symlink(slot + "/public/web") == "../bin/web");
  // Ownership is not restored: everything belongs to whoever unpacked it.
  struct stat sb;
  REQUIRE(::lstat((slot + "/bin/web").c_str(), &sb) == 0);
  CHECK(sb.st_uid == ::geteuid());

  // Metadata.
  CHECK(ModeOf(slot + "/.relsupd") == 0555);
  CHECK(ModeOf(slot + "/.relsupd/env.json") == 0400);
  CHECK(ModeOf(slot + "/.relsupd/release.json") == 0444);
  // The manifest is stored as tree objects, not as one flat file: one
  // tree per directory (root, bin, public, deep, deep/er), each linked
  // from the store.
  CHECK_FALSE(fs::exists(slot + "/.relsupd/manifest.json"));
  CHECK(ModeOf(slot + "/.relsupd/trees") == 0555);
  CHECK(st.SlotTrees(1).size() == 5);
  for (const std::string& t : st.SlotTrees(1)) {
    const std::string in_store = st.state + "/objects/" + t.substr(0, 2) + "/" + t + ".tree";
    CHECK(InodeOf(slot + "/.relsupd/trees/" + t) == InodeOf(in_store));
    CHECK(ModeOf(in_store) == 0444);
    CHECK(Sha256Hex(ReadText(in_store)) == t);
  }
  auto stored_env = ReadSlotEnv(slot);
  REQUIRE(stored_env.ok());
  CHECK(*stored_env == env);
  auto meta = ReadFile(slot + "/.relsupd/release.json", 1 << 20);
  REQUIRE(meta.ok());
  CHECK(json::parse(*meta)["digest"] == r->digest);
  CHECK(json::parse(*meta)["tree"] == r->tree);
  CHECK(st.SlotTrees(1).count(r->tree));

  // The stored manifest is what a scan of the slot finds.
  auto manifest = ReadSlotManifest(slot);
  REQUIRE(manifest.ok());
  auto scanned = ScanSlot(slot);
  REQUIRE(scanned.ok());
  CHECK(manifest->entries == scanned->entries);
  CHECK(manifest->Serialize() == scanned->Serialize());
  CHECK(manifest->entries.count("deep/er"));
  CHECK(manifest->entries.at("bin/web").mode == 0555);
  CHECK(manifest->entries.at("public/index.html").sha256 == Sha256Hex("<h1>hi</h1>\n"));
  CHECK_FALSE(manifest->entries.count(".relsupd"));

  const std::string build = Sha256Hex(ReadText(artifact));
  auto v = VerifySlot(slot, r->digest, build);
  REQUIRE(v.ok());
  CHECK(v->ok());
  // The digest covers config and build too.
  auto wrong = VerifySlot(slot, r->digest, std::string(64, '0'));
  REQUIRE(wrong.ok());
  CHECK_FALSE(wrong->digest_ok);

  // Staging is gone, every object is in use.
  CHECK(st.TmpEntries().empty());
  CHECK(st.OrphanObjects() == 0);
}

TEST_CASE("BuildSlot: the same content gives the same digest, a different config another",
          "[store][slot]") {
  State st;
  const std::string artifact = st.Artifact({Procfile(), File("a", "1")});
  auto one = st.Build(artifact, 1, {{"K", "1"}});
  auto two = st.Build(artifact, 2, {{"K", "1"}});
  auto three = st.Build(artifact, 3, {{"K", "2"}});
  REQUIRE(one.ok());
  REQUIRE(two.ok());
  REQUIRE(three.ok());
  CHECK(one->digest == two->digest);
  CHECK(one->digest != three->digest);
}

TEST_CASE("BuildSlot shares unchanged file bodies across releases (same inode)",
          "[store][slot][objects]") {
  State st;
  const std::string big(100'000, 'z');
  auto v1 = st.Build(st.Artifact({Procfile(), File("a.txt", "alpha\n"), File("b.txt", "beta\n"),
                                  File("bin/run", "#!/bin/sh\n", 0755), File("big", big)}),
                     1);
  REQUIRE(v1.ok());
  auto v2 = st.Build(st.Artifact({Procfile(), File("a.txt", "alpha\n"), File("b.txt", "BETA\n"),
                                  File("bin/run", "#!/bin/sh\n", 0755), File("big", big),
                                  File("same-body-other-mode", "alpha\n", 0755)}),
                     2);
  REQUIRE(v2.ok());
  const std::string s1 = st.Slot(1), s2 = st.Slot(2);
  CHECK(InodeOf(s1 + "/a.txt") == InodeOf(s2 + "/a.txt"));
  CHECK(InodeOf(s1 + "/bin/run") == InodeOf(s2 + "/bin/run"));
  CHECK(InodeOf(s1 + "/big") == InodeOf(s2 + "/big"));
  CHECK(InodeOf(s1 + "/Procfile") == InodeOf(s2 + "/Procfile"));
  CHECK(InodeOf(s1 + "/b.txt") != InodeOf(s2 + "/b.txt"));
  // The mode is part of an object: the same body with another mode is not shared.
  CHECK(InodeOf(s2 + "/same-body-other-mode") != InodeOf(s2 + "/a.txt"));
  struct stat sb;
  REQUIRE(::lstat((s1 + "/a.txt").c_str(), &sb) == 0);
  CHECK(sb.st_nlink == 3);  // the object and two slots
  // Both still verify.
  CHECK(VerifySlot(s1, v1->digest, Sha256Hex(ReadText(st.dir / "artifact-1.tar")))->ok());
  CHECK(VerifySlot(s2, v2->digest, Sha256Hex(ReadText(st.dir / "artifact-2.tar")))->ok());
  // Garbage collection keeps everything a slot uses.
  auto objects = ObjectStore::Open(st.state + "/objects");
  REQUIRE(objects.ok());
  CHECK(*objects->CollectGarbage() == 0);
}

TEST_CASE("VerifySlot names a changed, an added and a removed file", "[store][slot]") {
  State st;
  const std::string artifact = st.Artifact(
      {Procfile(), File("app.txt", "v1\n"), File("other.txt", "other\n"), Dir("d")});
  auto r = st.Build(artifact, 1);
  REQUIRE(r.ok());
  const std::string slot = st.Slot(1);
  const std::string build = Sha256Hex(ReadText(artifact));
  REQUIRE(::chmod(slot.c_str(), 0755) == 0);
  SECTION("changed") {
    // Replace, not write in place: the body is shared with the object store.
    REQUIRE(::unlink((slot + "/app.txt").c_str()) == 0);
    WriteText(slot + "/app.txt", "tampered\n");
    auto v = VerifySlot(slot, r->digest, build);
    REQUIRE(v.ok());
    CHECK_FALSE(v->ok());
    CHECK(v->diff.changed == std::vector<std::string>{"app.txt"});
  }
  SECTION("added") {
    WriteText(slot + "/extra.txt", "x");
    auto v = VerifySlot(slot, r->digest, build);
    REQUIRE(v.ok());
    CHECK(v->diff.added == std::vector<std::string>{"extra.txt"});
  }
  SECTION("removed") {
    REQUIRE(::unlink((slot + "/other.txt").c_str()) == 0);
    auto v = VerifySlot(slot, r->digest, build);
    REQUIRE(v.ok());
    CHECK(v->diff.removed == std::vector<std::string>{"other.txt"});
  }
  SECTION("mode changed") {
    REQUIRE(::chmod((slot + "/d").c_str(), 0755) == 0);
    auto v = VerifySlot(slot, r->digest, build);
    REQUIRE(v.ok());
    CHECK(v->diff.changed == std::vector<std::string>{"d"});
  }
  SECTION("a tree object changed") {
    // In place, as a careless root would: the slot and the store share it.
    const std::string tree = slot + "/.relsupd/trees/" + r->tree;
    REQUIRE(::chmod(tree.c_str(), 0644) == 0);
    std::string text = ReadText(tree);
    const size_t at = text.find("7:app.txt");
    REQUIRE(at != std::string::npos);
    text.replace(at, 9, "7:App.txt");
    WriteText(tree, text);
    auto v = VerifySlot(slot, r->digest, build);
    REQUIRE(v.ok());
    CHECK_FALSE(v->ok());
    CHECK_FALSE(v->digest_ok);
    REQUIRE(v->problems.size() == 1);
    CHECK_THAT(v->problems[0], Catch::Contains(r->tree) && Catch::Contains("does not match"));
    auto m = ReadSlotManifest(slot);
    REQUIRE_FALSE(m.ok());
    CHECK(m.status().code() == StatusCode::kCorruption);
  }
  SECTION("a tree object missing") {
    REQUIRE(::chmod((slot + "/.relsupd").c_str(), 0755) == 0);
    REQUIRE(::chmod((slot + "/.relsupd/trees").c_str(), 0755) == 0);
    const auto trees = st.SlotTrees(1);
    REQUIRE(trees.size() == 2);  // the root and d
    std::string d_tree;
    for (const auto& t : trees)
      if (t != r->tree) d_tree = t;
    REQUIRE(::unlink((slot + "/.relsupd/trees/" + d_tree).c_str()) == 0);
    auto v = VerifySlot(slot, r->digest, build);
    REQUIRE(v.ok());
    CHECK_FALSE(v->ok());
    REQUIRE(v->problems.size() == 1);
    CHECK_THAT(v->problems[0], Catch::Contains(d_tree) && Catch::Contains("directory 'd'"));
  }
  SECTION("config changed") {
    REQUIRE(::chmod((slot + "/.relsupd").c_str(), 0755) == 0);
    REQUIRE(::unlink((slot + "/.relsupd/env.json").c_str()) == 0);
    WriteText(slot + "/.relsupd/env.json", "{\"DATABASE_URL\":\"evil\"}\n");
    auto v = VerifySlot(slot, r->digest, build);
    REQUIRE(v.ok());
    CHECK_FALSE(v->ok());
    CHECK_FALSE(v->digest_ok);
  }
}

TEST_CASE("BuildSlot entries beneath a symlink: refused, or the slot verifies",
          "[store][slot][symlink]") {
  // "d -> sub" followed by "d/f": the file lands in sub/ through the link.
  // Either the artifact is refused (naming the entry), or the slot it
  // makes must match its own manifest.
  State st;
  const std::string artifact =
      st.Artifact({Procfile(), Dir("sub"), Symlink("d", "sub"), File("d/f", "through\n")});
  auto r = st.Build(artifact, 1);
  if (!r.ok()) {
    INFO(r.status().message());
    CHECK(r.status().code() == StatusCode::kInvalidArgument);
    CHECK_THAT(r.status().message(), Catch::Contains("'d/f'"));
    st.ExpectNothingLeft(1);
    return;
  }
  auto v = VerifySlot(st.Slot(1), r->digest, Sha256Hex(ReadText(artifact)));
  REQUIRE(v.ok());
  std::string diff;
  for (const auto& p : v->diff.added) diff += " +" + p;
  for (const auto& p : v->diff.removed) diff += " -" + p;
  for (const auto& p : v->diff.changed) diff += " ~" + p;
  INFO("a fresh slot does not match its manifest:" << diff);
  CHECK(v->ok());
}

TEST_CASE("BuildSlot refuses entries that collide with what earlier entries made",
          "[store][slot]") {
  auto [name, entries, culprit] = GENERATE(table<std::string, std::vector<Entry>, std::string>({
      {"a file where a directory was made",
       {Procfile(), File("bin/web", "web\n"), File("bin", "a file body no one else has\n")},
       "'bin'"},
      {"a symlink where a directory was made",
       {Procfile(), Dir("sub"), File("d/f", "f\n"), Symlink("d", "sub")},
       "'d'"},
      {"a directory where a file was made",
       {Procfile(), File("x", "x body\n"), File("x/y", "y body\n")},
       "'x"},  // 'x' or 'x/y'
  }));
  INFO(name);
  State st;
  auto r = st.Build(st.Artifact(entries), 1);
  INFO(r.status().message());
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r.status().message(), Catch::Contains(culprit));
  st.ExpectNothingLeft(1);
}

TEST_CASE("BuildSlot never replaces an existing slot", "[store][slot]") {
  State st;
  const std::string artifact = st.Artifact({Procfile(), File("a", "1")});
  auto first = st.Build(artifact, 1);
  REQUIRE(first.ok());
  const ino_t before = InodeOf(st.Slot(1));
  auto second = st.Build(st.Artifact({Procfile(), File("a", "2")}), 1);
  INFO(second.status().message());
  REQUIRE_FALSE(second.ok());
  CHECK_THAT(second.status().message(), Catch::Contains("v1"));
  CHECK(InodeOf(st.Slot(1)) == before);
  CHECK(st.TmpEntries().empty());
  CHECK(VerifySlot(st.Slot(1), first->digest, Sha256Hex(ReadText(artifact)))->ok());
}

TEST_CASE("CleanStaging removes sealed staging leftovers", "[store][slot]") {
  State st;
  const std::string tmp = st.state + "/tmp";
  REQUIRE(MakeDirs(tmp + "/shop-v1-abcdef/bin", 0755).ok());
  WriteText(tmp + "/shop-v1-abcdef/bin/x", "x");
  WriteText(tmp + "/import-123456", "partial");
  REQUIRE(::chmod((tmp + "/shop-v1-abcdef/bin").c_str(), 0555) == 0);
  REQUIRE(::chmod((tmp + "/shop-v1-abcdef").c_str(), 0555) == 0);
  REQUIRE(CleanStaging(st.state).ok());
  CHECK(st.TmpEntries().empty());
  CHECK(fs::exists(tmp));
  // A state dir without tmp/ is fine too.
  State fresh;
  CHECK(CleanStaging(fresh.state).ok());
}

// --- ObjectStore ---

// The directory `path`, made and opened to link objects into.
Result<Fd> MakeAndOpenDir(const std::string& path) {
  RETURN_IF_ERROR(MakeDirs(path, 0755));
  return OpenFile(path, O_RDONLY | O_DIRECTORY);
}

// An object store in DIR/objects and an open directory DIR/slot to link its
// objects into.
struct ObjectsFixture {
  TempDir dir;
  Result<ObjectStore> store = ObjectStore::Open(dir / "objects");
  Result<Fd> slot = MakeAndOpenDir(dir / "slot");

  ObjectsFixture() {
    INFO(store.status().message());
    REQUIRE(store.ok());
    INFO(slot.status().message());
    REQUIRE(slot.ok());
  }
};

TEST_CASE_METHOD(ObjectsFixture,
                 "ObjectStore stores a body once, links it, and removes what no slot links",
                 "[store][objects]") {
  auto put = [&](const std::string& body, uint32_t mode, const std::string& link) {
    auto o = store->PutAndLink(
        mode, [&](const ObjectStore::Sink& sink) { return sink(body); }, slot->get(), link);
    INFO(o.status().message());
    REQUIRE(o.ok());
    return *o;
  };
  auto count_files = [&] { return RegularFilesUnder(dir / "objects"); };
  ObjectStore::Object a = put("hello", 0644, "a.txt");
  ObjectStore::Object b = put("hello", 0644, "b.txt");
  ObjectStore::Object c = put("hello", 04755, "c.txt");
  CHECK(a.created);
  CHECK_FALSE(b.created);  // reused
  CHECK(c.created);        // another mode is another object
  CHECK(a.sha256 == Sha256Hex("hello"));
  CHECK(a.name == b.name);
  CHECK(a.name == a.sha256.substr(0, 2) + "/" + a.sha256 + ".0444");
  CHECK(c.name == a.sha256.substr(0, 2) + "/" + a.sha256 + ".0555");
  CHECK(ModeOf(dir / ("objects/" + c.name)) == 0555);
  CHECK(ModeOf(dir / "slot/c.txt") == 0555);
  CHECK(InodeOf(dir / "slot/a.txt") == InodeOf(dir / ("objects/" + a.name)));
  CHECK(InodeOf(dir / "slot/b.txt") == InodeOf(dir / ("objects/" + a.name)));
  CHECK(*store->CollectGarbage() == 0);

  // Once no slot links c, it is garbage; a is still linked by b.txt.
  REQUIRE(::unlink((dir / "slot/c.txt").c_str()) == 0);
  REQUIRE(::unlink((dir / "slot/a.txt").c_str()) == 0);
  store->RemoveIfUnused({a.name, c.name});
  CHECK(fs::exists(dir / ("objects/" + a.name)));
  CHECK_FALSE(fs::exists(dir / ("objects/" + c.name)));

  // A failing fill leaves nothing, not even a named temp file.
  auto bad = store->PutAndLink(
      0644,
      [](const ObjectStore::Sink& sink) -> Status {
        RETURN_IF_ERROR(sink("part"));
        return InvalidArgument("stop");
      },
      slot->get(), "bad.txt");
  CHECK_FALSE(bad.ok());
  CHECK_FALSE(fs::exists(dir / "slot/bad.txt"));
  CHECK(count_files() == 1);

  // Nor does a link that cannot be made (the name is taken).
  auto taken = store->PutAndLink(
      0644, [](const ObjectStore::Sink& sink) { return sink("a new body"); }, slot->get(),
      "b.txt");
  CHECK_FALSE(taken.ok());
  CHECK(count_files() == 1);
}

// A file system that allows kLinkMax links per inode, as ext4 allows
// 65,000: linkat(2) fails with EMLINK on an inode that has them all.
constexpr nlink_t kLinkMax = 3;
int LinkAtWithLimit(int olddirfd, const char* oldpath, int newdirfd, const char* newpath,
                    int flags) {
  struct stat st;
  const int follow = (flags & AT_SYMLINK_FOLLOW) ? 0 : AT_SYMLINK_NOFOLLOW;
  if (::fstatat(olddirfd, oldpath, &st, follow) == 0 && st.st_nlink >= kLinkMax) {
    errno = EMLINK;
    return -1;
  }
  return ::linkat(olddirfd, oldpath, newdirfd, newpath, flags);
}

TEST_CASE("ObjectStore: a body at the file system's link limit gets another copy",
          "[store][objects][emlink]") {
  TempDir dir;
  auto store = ObjectStore::Open(dir / "objects", &LinkAtWithLimit);
  REQUIRE(store.ok());
  // Bodies held in memory, a spilled one, and a tree object, each linked
  // 5 times into each of 3 slots: 15 links, 2 per copy (the store's own
  // name is the third).
  const std::string big(ObjectStore::kMemoryBodyBytes + 1, 'z');
  struct Body {
    std::string text;
    bool tree = false;
  };
  const std::vector<Body> bodies = {{""}, {"x = 1\n"}, {big}, {"tree text\n", true}};
  std::vector<std::string> names;
  for (int s = 1; s <= 3; ++s) {
    const std::string slot_dir = dir / ("slot" + std::to_string(s));
    REQUIRE(MakeDirs(slot_dir, 0755).ok());
    auto slot = OpenFile(slot_dir, O_RDONLY | O_DIRECTORY);
    REQUIRE(slot.ok());
    for (size_t b = 0; b < bodies.size(); ++b) {
      for (int i = 0; i < 5; ++i) {
        const std::string link = std::to_string(b) + "-" + std::to_string(i);
        auto o = bodies[b].tree
                     ? store->PutTreeAndLink(bodies[b].text, slot->get(), link)
                     : store->PutAndLink(
                           0644,
                           [&](const ObjectStore::Sink& sink) { return sink(bodies[b].text); },
                           slot->get(), link);
        INFO("slot " << s << ", body " << b << ", link " << i << ": " << o.status().message());
        REQUIRE(o.ok());
        CHECK(o->sha256 == Sha256Hex(bodies[b].text));
        names.push_back(o->name);
        const std::string in_slot = slot_dir + "/" + link;
        CHECK(InodeOf(in_slot) == InodeOf(dir / ("objects/" + o->name)));
        CHECK(ReadText(in_slot) == bodies[b].text);
      }
    }
  }
  // Per body: the object and copies .1 to .7, none past the limit.
  for (const Body& b : bodies) {
    const std::string h = Sha256Hex(b.text);
    const std::string first = h.substr(0, 2) + "/" + h + (b.tree ? ".tree" : ".0444");
    for (int copy = 0; copy < 8; ++copy) {
      const std::string name = copy == 0 ? first : first + "." + std::to_string(copy);
      INFO(name);
      struct stat st;
      REQUIRE(::lstat((dir / ("objects/" + name)).c_str(), &st) == 0);
      CHECK(st.st_nlink == (copy < 7 ? kLinkMax : 2));  // 7 x 2 + 1 = 15 links
      CHECK((st.st_mode & 07777) == 0444);
    }
    CHECK_FALSE(fs::exists(dir / ("objects/" + first + ".8")));
  }
  CHECK(*store->CollectGarbage() == 0);
  // Each copy is garbage on its own once no slot links it.
  std::error_code ec;
  fs::remove_all(dir / "slot1", ec);
  fs::remove_all(dir / "slot2", ec);
  CHECK(*store->CollectGarbage() == 4 * 5);  // copies 0 to 4 of each body
  fs::remove_all(dir / "slot3", ec);
  CHECK(*store->CollectGarbage() == 4 * 3);
  CHECK(RegularFilesUnder(dir / "objects") == 0);
}

// --- tree objects ---

TEST_CASE("BuildTrees and LoadTrees round-trip any name, type and mode", "[store][tree]") {
  Manifest m;
  auto file = [](std::string body, uint32_t mode) {
    return ManifestEntry{EntryType::kFile, mode, body.size(), Sha256Hex(body), ""};
  };
  const ManifestEntry dir{EntryType::kDir, 0555, 0, "", ""};
  m.entries["Procfile"] = file("web: x\n", 0444);
  m.entries["a"] = dir;
  m.entries["a b"] = dir;  // sorts between "a" and "a/..." by full path
  m.entries["a b/x"] = file("x", 0555);
  m.entries["a/new\nline"] = file("nl", 0444);
  m.entries["a/10:colon"] = file("c", 0444);
  m.entries["a/\xff\xfe not utf-8"] = file("bin", 0444);
  m.entries["a/empty"] = dir;
  m.entries["a/link"] = ManifestEntry{EntryType::kSymlink, 0777, 0, "", "../a b/x"};
  m.entries["a-"] = file("", 0444);
  auto trees = BuildTrees(m);
  REQUIRE(trees.ok());
  CHECK(trees->trees.size() == 4);  // root, a, "a b", a/empty
  std::map<std::string, std::string> stored;
  for (const auto& t : trees->trees) {
    CHECK(Sha256Hex(t.text) == t.hash);
    stored[t.hash] = t.text;
  }
  auto read = [&](const std::string& h) -> Result<std::string> {
    auto it = stored.find(h);
    if (it == stored.end()) return NotFound("no tree " + h);
    return it->second;
  };
  auto back = LoadTrees(trees->root, read);
  INFO(back.status().message());
  REQUIRE(back.ok());
  CHECK(back->entries == m.entries);
  // Deterministic: the same manifest gives the same root.
  CHECK(BuildTrees(m)->root == trees->root);
  // Any change anywhere changes the root.
  for (const auto& [path, e] : m.entries) {
    Manifest changed = m;
    changed.entries[path].mode ^= 0100;
    CHECK(BuildTrees(changed)->root != trees->root);
  }

  SECTION("a changed tree is refused, naming it") {
    std::string& text = stored.begin()->second;
    text[text.size() - 2] ^= 1;
    auto r = LoadTrees(trees->root, read);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == StatusCode::kCorruption);
    CHECK_THAT(r.status().message(), Catch::Contains(stored.begin()->first));
  }
  SECTION("a missing tree is refused") {
    stored.erase(trees->root);
    auto r = LoadTrees(trees->root, read);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == StatusCode::kCorruption);
    CHECK_THAT(r.status().message(), Catch::Contains("the slot root"));
  }
  SECTION("a hash that is no hash is never used as a file name") {
    auto r = LoadTrees("../../etc/passwd", read);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == StatusCode::kCorruption);
  }
}

TEST_CASE("LoadTrees refuses malformed trees even when their hash matches", "[store][tree]") {
  const std::string f = "f 0444 1 " + Sha256Hex("x") + " ";
  auto [name, text] = GENERATE_COPY(table<std::string, std::string>({
      {"no header", f + "1:a\n"},
      {"a name with a slash", "relsupd-tree 1\n" + f + "3:a/b\n"},
      {"the name ..", "relsupd-tree 1\n" + f + "2:..\n"},
      {"out of order", "relsupd-tree 1\n" + f + "1:b\n" + f + "1:a\n"},
      {"twice", "relsupd-tree 1\n" + f + "1:a\n" + f + "1:a\n"},
      {"a short name", "relsupd-tree 1\n" + f + "5:a\n"},
      {"a bad sub-tree hash", "relsupd-tree 1\nd 0555 xyz 1:a\n"},
      {"an unknown type", "relsupd-tree 1\nq 0444 1:a\n"},
  }));
  INFO(name);
  const std::string hash = Sha256Hex(text);
  // A copy: clang 14 cannot capture a structured binding.
  auto r = LoadTrees(hash, [body = text](const std::string&) -> Result<std::string> {
    return body;
  });
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == StatusCode::kCorruption);
  CHECK_THAT(r.status().message(), Catch::Contains("malformed"));
}

// An app with nested directories; `changed` alters one file deep inside.
std::vector<Entry> NestedApp(const std::string& changed) {
  std::vector<Entry> e = {Procfile(), File("bin/web", "#!/bin/sh\n", 0755),
                          File("lib/a/b/c/deep.txt", changed),
                          File("lib/a/b/other.txt", "other\n"),
                          File("lib/z/z.txt", "z\n"),
                          File("public/index.html", "<h1>hi</h1>\n"),
                          Symlink("public/web", "../bin/web")};
  for (int i = 0; i < 20; ++i)
    e.push_back(File("assets/" + std::to_string(i) + ".css", "body" + std::to_string(i)));
  return e;
}

TEST_CASE("a release that changes one file adds only that body and the trees on its path",
          "[store][tree][objects]") {
  State st;
  auto v1 = st.Build(st.Artifact(NestedApp("v1\n")), 1);
  REQUIRE(v1.ok());
  // root, bin, lib, lib/a, lib/a/b, lib/a/b/c, lib/z, public, assets
  CHECK(st.SlotTrees(1).size() == 9);
  const auto bodies_before = st.StoreFiles(".0444");
  const auto trees_before = st.StoreFiles(".tree");
  CHECK(trees_before.size() == 9);

  auto v2 = st.Build(st.Artifact(NestedApp("v2\n")), 2);
  REQUIRE(v2.ok());
  CHECK(v2->tree != v1->tree);
  // New in the store: the changed body and the trees of lib/a/b/c,
  // lib/a/b, lib/a, lib and the root; nothing else.
  std::set<std::string> new_trees, new_bodies;
  for (const auto& t : st.StoreFiles(".tree"))
    if (!trees_before.count(t)) new_trees.insert(t);
  for (const auto& b : st.StoreFiles(".0444"))
    if (!bodies_before.count(b)) new_bodies.insert(b);
  CHECK(new_trees.size() == 5);
  CHECK(new_bodies == std::set<std::string>{Sha256Hex("v2\n") + ".0444"});
  CHECK(st.StoreFiles(".0555").size() == 1);  // bin/web, shared
  // The other four trees are shared: the same inode in both slots.
  const auto t1 = st.SlotTrees(1), t2 = st.SlotTrees(2);
  int shared = 0;
  for (const auto& t : t2) {
    if (!t1.count(t)) continue;
    ++shared;
    CHECK(InodeOf(st.Slot(1) + "/.relsupd/trees/" + t) ==
          InodeOf(st.Slot(2) + "/.relsupd/trees/" + t));
  }
  CHECK(shared == 4);
  CHECK(t2.size() == 9);

  // Both read back as what is on disk, and diff names just the file.
  auto m1 = ReadSlotManifest(st.Slot(1));
  auto m2 = ReadSlotManifest(st.Slot(2));
  REQUIRE(m1.ok());
  REQUIRE(m2.ok());
  CHECK(m1->entries == ScanSlot(st.Slot(1))->entries);
  CHECK(m2->entries == ScanSlot(st.Slot(2))->entries);
  ManifestDiff d = DiffManifests(*m1, *m2);
  CHECK(d.changed == std::vector<std::string>{"lib/a/b/c/deep.txt"});
  CHECK(d.added.empty());
  CHECK(d.removed.empty());

  // Garbage collection: v1 gone, its own body and its five trees go; v2
  // keeps everything it links and still verifies.
  REQUIRE(RemoveTree(st.Slot(1)).ok());
  auto objects = ObjectStore::Open(st.state + "/objects");
  REQUIRE(objects.ok());
  CHECK(*objects->CollectGarbage() == 6);
  CHECK(st.StoreFiles(".tree").size() == 9);
  for (const auto& t : st.SlotTrees(2))
    CHECK(fs::exists(st.state + "/objects/" + t.substr(0, 2) + "/" + t + ".tree"));
  CHECK(st.OrphanObjects() == 0);
  auto v = VerifySlot(st.Slot(2), v2->digest, Sha256Hex(ReadText(st.dir / "artifact-2.tar")));
  REQUIRE(v.ok());
  CHECK(v->ok());
}

TEST_CASE("a slot made with a flat manifest.json is refused with a clear error",
          "[store][tree]") {
  State st;
  auto r = st.Build(st.Artifact({Procfile(), File("a", "1")}), 1);
  REQUIRE(r.ok());
  const std::string slot = st.Slot(1);
  // Rewrite it as the older layout: release.json without "tree".
  REQUIRE(::chmod((slot + "/.relsupd").c_str(), 0755) == 0);
  REQUIRE(::unlink((slot + "/.relsupd/release.json").c_str()) == 0);
  WriteText(slot + "/.relsupd/release.json", "{\"digest\":\"" + r->digest + "\"}\n");
  WriteText(slot + "/.relsupd/manifest.json", "[\n[\"a\",\"f\",292,1,\"x\"]\n]\n");
  auto m = ReadSlotManifest(slot);
  REQUIRE_FALSE(m.ok());
  CHECK(m.status().code() == StatusCode::kFailedPrecondition);
  CHECK_THAT(m.status().message(), Catch::Contains("older relsupd") && Catch::Contains(slot));
  auto v = VerifySlot(slot, r->digest, std::string(64, '0'));
  REQUIRE_FALSE(v.ok());
  CHECK(v.status().code() == StatusCode::kFailedPrecondition);
}

TEST_CASE("BuildSlot names the build and the entry when the file system refuses",
          "[store][slot]") {
  State st;
  // A file named like a directory made just before: linking it fails.
  const std::string artifact =
      st.Artifact({Procfile(), File("bin/web", "web\n"), File("bin", "a body\n")});
  auto r = st.Build(artifact, 1);
  REQUIRE_FALSE(r.ok());
  const std::string id = Sha256Hex(ReadText(artifact)).substr(0, 12);
  CHECK_THAT(r.status().message(),
             Catch::StartsWith("Failed to unpack build '" + id + "': entry 'bin': "));
  st.ExpectNothingLeft(1);
}

// --- hash-first ObjectStore ---

// Bytes this process passed to write(2) and friends so far.
uint64_t BytesWritten() {
  auto io = ReadFile("/proc/self/io", 4096);
  REQUIRE(io.ok());
  const size_t at = io->find("wchar: ");
  REQUIRE(at != std::string::npos);
  return std::stoull(io->substr(at + 7));
}

TEST_CASE_METHOD(ObjectsFixture,
                 "ObjectStore hashes first: a stored body is linked, never written again",
                 "[store][objects]") {
  // In 64 KiB pieces, as the archive reader streams it.
  auto put = [&](const std::string& body, const std::string& link) {
    auto o = store->PutAndLink(
        0644,
        [&](const ObjectStore::Sink& sink) -> Status {
          for (size_t at = 0; at < body.size(); at += 65536)
            RETURN_IF_ERROR(sink(std::string_view(body).substr(at, 65536)));
          return Status::Ok();
        },
        slot->get(), link);
    INFO(o.status().message());
    REQUIRE(o.ok());
    return *o;
  };
  // Both sides of the in-memory limit.
  const size_t size = GENERATE(size_t{3} << 20, ObjectStore::kMemoryBodyBytes + 12345);
  const std::string body = Noise(size, 7);
  uint64_t before = BytesWritten();
  ObjectStore::Object first = put(body, "first");
  CHECK(first.created);
  CHECK(first.size == size);
  CHECK(first.sha256 == Sha256Hex(body));
  CHECK(BytesWritten() - before >= size);  // written once
  CHECK(ReadText(dir / "slot/first") == body);
  CHECK(ModeOf(dir / ("objects/" + first.name)) == 0444);

  before = BytesWritten();
  ObjectStore::Object again = put(body, "again");
  CHECK_FALSE(again.created);
  CHECK(again.name == first.name);
  CHECK(InodeOf(dir / "slot/again") == InodeOf(dir / "slot/first"));
  if (size <= ObjectStore::kMemoryBodyBytes) {
    CHECK(BytesWritten() - before < 4096);  // not written at all
  } else {
    // Too big to hold: it went through a temporary file, which is dropped.
    CHECK(BytesWritten() - before >= size);
  }
  CHECK(*store->CollectGarbage() == 0);
  CHECK(RegularFilesUnder(dir / "objects") == 1);
}

TEST_CASE_METHOD(ObjectsFixture, "ObjectStore stores a tree once as HASH.tree",
                 "[store][objects][tree]") {
  const std::string text = "relsupd-tree 1\n";
  auto a = store->PutTreeAndLink(text, slot->get(), "a");
  auto b = store->PutTreeAndLink(text, slot->get(), "b");
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK(a->created);
  CHECK_FALSE(b->created);
  CHECK(a->name == a->sha256.substr(0, 2) + "/" + Sha256Hex(text) + ".tree");
  CHECK(ModeOf(dir / ("objects/" + a->name)) == 0444);
  CHECK(InodeOf(dir / "slot/a") == InodeOf(dir / "slot/b"));
  REQUIRE(::unlink((dir / "slot/a").c_str()) == 0);
  CHECK(*store->CollectGarbage() == 0);
  REQUIRE(::unlink((dir / "slot/b").c_str()) == 0);
  CHECK(*store->CollectGarbage() == 1);
}

TEST_CASE("UntraversableParent names the first directory above the state dir that others cannot search") {
  support::TempDir tmp("relsupd-layout");
  const std::string open = tmp.path() + "/open";
  const std::string closed = open + "/closed";
  REQUIRE(::mkdir(open.c_str(), 0755) == 0);
  REQUIRE(::mkdir(closed.c_str(), 0700) == 0);
  REQUIRE(::chmod(tmp.path().c_str(), 0711) == 0);
  CHECK(UntraversableParent(open + "/state") == std::nullopt);
  CHECK(UntraversableParent(closed + "/state") == "'" + closed + "' (mode 0700)");
  CHECK(UntraversableParent(closed + "/deeper/../state") == "'" + closed + "' (mode 0700)");
  REQUIRE(::chmod(closed.c_str(), 0701) == 0);
  CHECK(UntraversableParent(closed + "/state") == std::nullopt);
}

}  // namespace
}  // namespace relsupd
