#include "daemon/store/objects.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <mutex>

#include "daemon/base/sha256.h"

namespace relsupd {

Result<ObjectStore> ObjectStore::Open(const std::string& dir, LinkAtFn link_at) {
  RETURN_IF_ERROR(MakeDirs(dir, 0755));
  ASSIGN_OR_RETURN(Fd fd, OpenFile(dir, O_RDONLY | O_DIRECTORY));
  return ObjectStore(dir, std::move(fd), link_at);
}

namespace {
// Held from an object's link into the store until its link into a slot,
// and by every removal: an object is never removed between the two.
std::mutex g_store_lock;
}  // namespace

Result<Fd> ObjectStore::OpenTemp() const {
  // An unnamed file: nothing is left behind if we stop half-way.
  int raw = ::openat(fd_.get(), ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
  if (raw < 0) return Status::FromErrno("cannot create object in '" + dir_ + "'", errno);
  return Fd(raw);
}

Result<ObjectStore::Object> ObjectStore::PutAndLink(
    uint32_t mode, const std::function<Status(const Sink&)>& fill, int parent_fd,
    const std::string& link_name, uint64_t size_hint) {
  // Hash first: most bodies of a new release are stored already, and then
  // nothing needs writing. A body too big to hold goes to a temporary file
  // from the point it outgrows memory.
  Sha256 hash;
  std::string memory;
  if (size_hint <= kMemoryBodyBytes) memory.reserve(static_cast<size_t>(size_hint));
  Fd spilled;
  uint64_t size = 0;
  RETURN_IF_ERROR(fill([&](std::string_view data) -> Status {
    hash.Update(data);
    size += data.size();
    if (!spilled.valid()) {
      if (memory.size() + data.size() <= kMemoryBodyBytes) {
        memory.append(data);
        return Status::Ok();
      }
      ASSIGN_OR_RETURN(spilled, OpenTemp());
      RETURN_IF_ERROR(WriteAll(spilled.get(), memory, "object"));
      std::string().swap(memory);
    }
    return WriteAll(spilled.get(), data, "object");
  }));
  const uint32_t sealed = mode & 0555;
  char mode_text[8];
  snprintf(mode_text, sizeof mode_text, "%04o", sealed);
  Object obj;
  obj.sha256 = hash.HexDigest();
  obj.name = obj.sha256.substr(0, 2) + "/" + obj.sha256 + "." + mode_text;
  obj.size = size;
  return Store(std::move(obj), sealed, memory, std::move(spilled), parent_fd, link_name);
}

Result<ObjectStore::Object> ObjectStore::PutTreeAndLink(std::string_view text, int parent_fd,
                                                        const std::string& link_name) {
  Object obj;
  obj.sha256 = Sha256Hex(text);
  obj.name = obj.sha256.substr(0, 2) + "/" + obj.sha256 + ".tree";
  obj.size = text.size();
  return Store(std::move(obj), 0444, text, Fd(), parent_fd, link_name);
}

Result<ObjectStore::Object> ObjectStore::Store(Object obj, uint32_t mode,
                                               std::string_view memory, Fd spilled,
                                               int parent_fd, const std::string& link_name) {
  const std::string first = obj.name;
  for (int copy = 0; copy <= kMaxCopies; ++copy) {
    obj.name = copy == 0 ? first : first + "." + std::to_string(copy);
    {
      std::lock_guard<std::mutex> lock(g_store_lock);
      if (link_at_(fd_.get(), obj.name.c_str(), parent_fd, link_name.c_str(), 0) == 0)
        return obj;  // stored already: nothing written
      if (errno == EMLINK) continue;  // this copy is full: the next one
      if (errno != ENOENT)
        return Status::FromErrno("cannot link '" + link_name + "' to object", errno);
    }
    // Not stored yet (ENOENT: the object, or its XX directory, is missing).
    const std::string sub = obj.name.substr(0, 2);
    if (::mkdirat(fd_.get(), sub.c_str(), 0755) != 0 && errno != EEXIST)
      return Status::FromErrno("cannot create '" + dir_ + "/" + sub + "'", errno);
    if (!spilled.valid()) {
      ASSIGN_OR_RETURN(spilled, OpenTemp());
      RETURN_IF_ERROR(WriteAll(spilled.get(), memory, "object"));
    }
    if (::fchmod(spilled.get(), mode) != 0)
      return Status::FromErrno("cannot set object mode", errno);
    const std::string proc = "/proc/self/fd/" + std::to_string(spilled.get());
    std::lock_guard<std::mutex> lock(g_store_lock);
    if (link_at_(AT_FDCWD, proc.c_str(), fd_.get(), obj.name.c_str(), AT_SYMLINK_FOLLOW) == 0)
      obj.created = true;
    else if (errno != EEXIST)  // EEXIST: another release stored it meanwhile
      return Status::FromErrno("cannot store object '" + obj.name + "'", errno);
    if (link_at_(fd_.get(), obj.name.c_str(), parent_fd, link_name.c_str(), 0) == 0)
      return obj;
    const int err = errno;
    // Another release filled the copy it stored meanwhile: ours is still
    // unnamed and makes the next copy.
    if (err == EMLINK && !obj.created) continue;
    // Nothing links to an object made just now: take it back.
    if (obj.created) ::unlinkat(fd_.get(), obj.name.c_str(), 0);
    return Status::FromErrno("cannot link '" + link_name + "' to object", err);
  }
  return Status::FromErrno("cannot link '" + link_name + "' to object '" + first + "': it and its " +
                               std::to_string(kMaxCopies) +
                               " copies are each at the file system's link limit",
                           EMLINK);
}

void ObjectStore::RemoveIfUnused(const std::vector<std::string>& names) {
  std::lock_guard<std::mutex> lock(g_store_lock);
  for (const std::string& name : names) {
    struct stat st;
    if (::fstatat(fd_.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        st.st_nlink == 1)
      ::unlinkat(fd_.get(), name.c_str(), 0);
  }
}

Result<uint64_t> ObjectStore::CollectGarbage() {
  uint64_t removed = 0;
  for (int i = 0; i < 256; ++i) {
    char sub[3];
    snprintf(sub, sizeof sub, "%02x", i);
    int dfd = ::openat(fd_.get(), sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) continue;
    DIR* d = ::fdopendir(dfd);
    if (d == nullptr) {
      ::close(dfd);
      continue;
    }
    while (dirent* e = ::readdir(d)) {
      if (e->d_name[0] == '.') continue;
      std::lock_guard<std::mutex> lock(g_store_lock);
      struct stat st;
      if (::fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
          S_ISREG(st.st_mode) && st.st_nlink == 1 &&
          ::unlinkat(dfd, e->d_name, 0) == 0)
        ++removed;
    }
    ::closedir(d);
  }
  return removed;
}

Status ObjectStore::Sync() const {
  if (::syncfs(fd_.get()) != 0)
    return Status::FromErrno("cannot sync '" + dir_ + "'", errno);
  return Status::Ok();
}

}  // namespace relsupd
