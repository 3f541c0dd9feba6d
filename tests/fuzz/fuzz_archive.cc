// Fuzzes the artifact reader: tar, tar.gz and tar.zst bytes as `build
// import` stores them and BuildSlot unpacks them, entry by entry with every
// file's data read, under small limits so that the caps are reached too.
// (Unpacking into a real slot is left out: BuildSlot syncs and seals a tree
// per input; what it adds is file-system work on entries this reader has
// already admitted.)
//
// Every admitted entry must obey the reader's contract: a normalised
// relative path inside the slot, seen once; permission bits masked; a
// symlink target relative and inside; file data no longer than declared
// plus the sparse holes never passes the limits.

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>

#include "daemon/base/fd.h"
#include "daemon/store/archive_reader.h"

namespace {

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "fuzz_archive: %s\n", what.c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace relsupd;
  Fd fd(::memfd_create("artifact", MFD_CLOEXEC));
  if (!fd.valid()) Fail("memfd_create failed");
  for (size_t at = 0; at < size;) {
    ssize_t n = ::write(fd.get(), data + at, size - at);
    if (n <= 0) Fail("write to memfd failed");
    at += static_cast<size_t>(n);
  }
  ::lseek(fd.get(), 0, SEEK_SET);
  StoreLimits limits;
  limits.max_unpacked_bytes = 4 << 20;
  limits.max_entries = 64;
  limits.max_path_bytes = 200;
  limits.max_compression_ratio = 50;
  auto reader = ArchiveReader::Open(fd.get(), "fuzz.tar", size, limits);
  if (!reader.ok()) return 0;
  std::set<std::string> seen;
  for (;;) {
    auto next = (*reader)->Next();
    if (!next.ok()) {
      if (next.status().message().find("artifact 'fuzz.tar'") != 0)
        Fail("error does not name the artifact: " + next.status().message());
      break;
    }
    if (!next->has_value()) break;
    const ArchiveEntry& e = **next;
    if (e.path.empty() || e.path[0] == '/' || e.path.back() == '/' ||
        e.path.size() > limits.max_path_bytes)
      Fail("bad path '" + e.path + "'");
    if (("/" + e.path + "/").find("/../") != std::string::npos ||
        ("/" + e.path + "/").find("/./") != std::string::npos ||
        e.path.find("//") != std::string::npos || e.path == ".relsupd" ||
        e.path.rfind(".relsupd/", 0) == 0)
      Fail("path not normalised or reserved: '" + e.path + "'");
    if (!seen.insert(e.path).second) Fail("entry admitted twice: '" + e.path + "'");
    if ((e.mode & ~0777u) != 0 || (e.type != EntryType::kSymlink && (e.mode & 022) != 0))
      Fail("mode not masked for '" + e.path + "'");
    if (e.type == EntryType::kSymlink && !SymlinkStaysInside(e.path, e.target))
      Fail("symlink leaves the slot: '" + e.path + "' -> '" + e.target + "'");
    if (e.type != EntryType::kFile) continue;
    Status s = (*reader)->ReadData([](std::string_view) { return Status::Ok(); });
    if (!s.ok()) break;
    if ((*reader)->unpacked_bytes() > limits.max_unpacked_bytes)
      Fail("data over max_unpacked_bytes was admitted");
  }
  // One entry past the cap is counted before it is refused.
  if ((*reader)->entries() > limits.max_entries + 1) Fail("entries over the limit");
  return 0;
}
