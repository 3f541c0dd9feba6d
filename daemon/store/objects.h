#pragma once
// ObjectStore: file bodies stored once by content, under
// STATE/objects/XX/SHA256.MODE, and hard-linked into release slots.
//
// Two releases that share a file body and mode share its inode, so a new
// release costs only the files that changed. Objects are read-only; an
// object whose link count falls to 1 belongs to no slot and is garbage.
// Thread-safe for Put/Link (the file system arbitrates).

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "daemon/base/fd.h"
#include "daemon/base/status.h"

namespace relsupd {

class ObjectStore {
 public:
  // Opens (creating) the store directory `dir`.
  static Result<ObjectStore> Open(const std::string& dir);

  struct Object {
    std::string sha256;
    std::string name;  // relative to the store: "ab/abcd....0444"
  };
  // Stores the body that `fill` streams into the sink given to it, with
  // permission bits `mode`. An identical object is reused.
  using Sink = std::function<Status(std::string_view)>;
  Result<Object> Put(uint32_t mode, const std::function<Status(const Sink&)>& fill);
  // Hard-links object `name` as `link_name` in directory `parent_fd`.
  Status Link(const std::string& name, int parent_fd,
              const std::string& link_name) const;
  // Removes objects no slot links to; returns how many went.
  Result<uint64_t> CollectGarbage();
  // Flushes the store's file system (syncfs).
  Status Sync() const;
  const std::string& dir() const { return dir_; }

 private:
  ObjectStore(std::string dir, Fd fd) : dir_(std::move(dir)), fd_(std::move(fd)) {}
  std::string dir_;
  Fd fd_;
};

}  // namespace relsupd
