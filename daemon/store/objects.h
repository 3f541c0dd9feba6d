#pragma once
// ObjectStore: file bodies stored once by content, under
// STATE/objects/XX/SHA256.MODE, and tree objects (daemon/store/tree.h)
// under STATE/objects/XX/SHA256.tree, all hard-linked into release slots.
//
// Two releases that share a file body and mode share its inode, so a new
// release costs only the files that changed. A body is hashed before it is
// written: one already stored is linked and never written again, so a
// release that changes one file writes about that file. Objects are
// read-only; an object whose link count falls to 1 belongs to no slot and
// is garbage. Thread-safe for Put/Link (the file system arbitrates).
//
// A file system caps links per inode (ext4: 65,000; 7,000 empty
// __init__.py in 10 releases reach it). An object at the cap (EMLINK) gets
// a second copy, XX/SHA256.MODE.1 (then .2, ...), linked from then on;
// each copy is garbage on its own once no slot links it.

#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/base/fd.h"
#include "daemon/base/status.h"

namespace relsupd {

class ObjectStore {
 public:
  // linkat(2), or a stand-in for fault tests (e.g. EMLINK at a small count).
  using LinkAtFn = int (*)(int olddirfd, const char* oldpath, int newdirfd,
                           const char* newpath, int flags);
  // Opens (creating) the store directory `dir`.
  static Result<ObjectStore> Open(const std::string& dir, LinkAtFn link_at = &::linkat);
  // Copies of one body kept at most; far beyond any real release set
  // (65,000 links each on ext4).
  static constexpr int kMaxCopies = 1000;

  struct Object {
    std::string sha256;
    std::string name;  // relative to the store: "ab/abcd....0444"
    uint64_t size = 0;
    bool created = false;  // false when an identical object was reused
  };
  // Stores the body that `fill` streams into the sink given to it, with
  // permission bits `mode` (an identical object is reused), and hard-links
  // it as `link_name` in directory `parent_fd`. Bodies up to
  // kMemoryBodyBytes are held in memory while they are hashed and written
  // only when no identical object exists; larger ones go through an
  // unnamed temporary file. Storing and linking happen under the store's
  // lock, so garbage collection never removes an object between the two.
  using Sink = std::function<Status(std::string_view)>;
  // `size_hint` (the size the body is expected to have, 0: unknown) only
  // saves reallocations.
  Result<Object> PutAndLink(uint32_t mode,
                            const std::function<Status(const Sink&)>& fill,
                            int parent_fd, const std::string& link_name,
                            uint64_t size_hint = 0);
  // Stores a tree object's canonical text as XX/SHA256.tree (0444), and
  // hard-links it as `link_name` in `parent_fd`, as PutAndLink does.
  Result<Object> PutTreeAndLink(std::string_view text, int parent_fd,
                                const std::string& link_name);
  static constexpr size_t kMemoryBodyBytes = 8 << 20;
  // Removes those of `names` that no slot links to (after a failed slot).
  void RemoveIfUnused(const std::vector<std::string>& names);
  // Removes objects no slot links to; returns how many went.
  Result<uint64_t> CollectGarbage();
  // Flushes the store's file system (syncfs).
  Status Sync() const;
  const std::string& dir() const { return dir_; }

 private:
  ObjectStore(std::string dir, Fd fd, LinkAtFn link_at)
      : dir_(std::move(dir)), fd_(std::move(fd)), link_at_(link_at) {}
  Result<Fd> OpenTemp() const;
  // Links the stored object `obj.name` (making it from `memory`, or from
  // `spilled` when that is open, if it is not stored yet) as `link_name`;
  // on EMLINK, the next copy (made the same way if missing). `obj.name`
  // comes back as the copy linked.
  Result<Object> Store(Object obj, uint32_t mode, std::string_view memory, Fd spilled,
                       int parent_fd, const std::string& link_name);
  std::string dir_;
  Fd fd_;
  LinkAtFn link_at_;
};

}  // namespace relsupd
