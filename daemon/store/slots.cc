#include "daemon/store/slots.h"
#include "daemon/base/release_id.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <vector>

#include "daemon/base/failpoint.h"
#include "daemon/base/fd.h"
#include "daemon/base/paths.h"
#include "daemon/base/sha256.h"
#include "daemon/config/process_file.h"
#include "daemon/config/ready_sockets.h"
#include "daemon/store/archive_reader.h"
#include "daemon/store/fs.h"
#include "daemon/store/objects.h"
#include "daemon/store/tree.h"

namespace relsupd {
namespace {

constexpr size_t kMaxMetaBytes = 256 << 20;
// One directory's listing; far above what max_entries allows in one.
constexpr size_t kMaxTreeBytes = 64 << 20;
constexpr const char* kTreesDir = ".relsupd/trees";

Status WriteMeta(int dirfd, const std::string& name, const std::string& data,
                 mode_t mode) {
  int fd = ::openat(dirfd, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return Status::FromErrno("cannot create '.relsupd/" + name + "'", errno);
  Fd owned(fd);
  RETURN_IF_ERROR(WriteAll(fd, data, "'.relsupd/" + name + "'"));
  if (::fchmod(fd, mode) != 0) return Status::FromErrno("cannot chmod '" + name + "'", errno);
  return Status::Ok();
}

// Unpacks one archive's entries into a slot; owns the context of its
// errors ("Failed to unpack build 'SHA'").
class Unpacker {
 public:
  Unpacker(const SlotRequest& req, int slot_fd, ObjectStore* objects,
           Manifest* manifest, SlotResult* result,
           std::vector<std::string>* created)
      : req_(req),
        slot_fd_(slot_fd),
        objects_(objects),
        manifest_(manifest),
        result_(result),
        created_(created),
        shown_(req.build_sha256.substr(0, 12)),
        what_("Failed to unpack build '" + shown_ + "'") {}

  Status Run() {
    auto art_or = OpenFile(req_.artifact_path, O_RDONLY);
    if (!art_or.ok()) return art_or.status().WithContext(what_);
    Fd art = std::move(art_or).value();
    struct stat st;
    if (::fstat(art.get(), &st) != 0)
      return Status::FromErrno("cannot stat '" + req_.artifact_path + "'", errno)
          .WithContext(what_);
    ASSIGN_OR_RETURN(reader_, ArchiveReader::Open(art.get(), "build " + shown_,
                                                  static_cast<uint64_t>(st.st_size),
                                                  req_.limits));
    for (;;) {
      ASSIGN_OR_RETURN(std::optional<ArchiveEntry> entry, reader_->Next());
      if (!entry) break;
      RETURN_IF_ERROR(Extract(*entry));
    }
    AddImpliedDirs();
    return CheckSymlinks();
  }

 private:
  // File system errors come without the artifact and the entry; the
  // reader's own refusals name both already.
  Status At(const std::string& path, const Status& s) const {
    return s.WithContext(what_ + ": entry '" + path + "'");
  }

  Status Extract(const ArchiveEntry& entry) {
    std::string name;
    auto parent_or = OpenParentBeneath(slot_fd_, entry.path, &name);
    if (!parent_or.ok()) {
      if (parent_or.status().code() == StatusCode::kInvalidArgument)
        return InvalidArgument("artifact 'build " + shown_ + "': entry '" + entry.path +
                               "' lies beneath a symlink (" +
                               parent_or.status().message() + ")");
      return At(entry.path, parent_or.status());
    }
    Fd parent = std::move(parent_or).value();
    ManifestEntry m;
    m.type = entry.type;
    switch (entry.type) {
      case EntryType::kDir:
        if (::mkdirat(parent.get(), name.c_str(), 0700) != 0) {
          if (errno != EEXIST)
            return At(entry.path, Status::FromErrno("cannot create directory", errno));
        }
        m.mode = 0555;  // every directory is sealed to exactly this
        break;
      case EntryType::kSymlink:
        if (::symlinkat(entry.target.c_str(), parent.get(), name.c_str()) != 0)
          return At(entry.path, Status::FromErrno("cannot create symlink", errno));
        m.mode = 0777;
        m.target = entry.target;
        symlinks_.push_back(entry.path);
        break;
      case EntryType::kFile:
        RETURN_IF_ERROR(ExtractFile(entry, parent.get(), name, &m));
        break;
    }
    manifest_->entries[entry.path] = std::move(m);
    return Status::Ok();
  }

  Status ExtractFile(const ArchiveEntry& entry, int parent, const std::string& name,
                     ManifestEntry* m) {
    // A refusal by the reader (truncated data, a bomb) is passed on as it
    // is; a failure to store or link gets the context.
    bool reader_refused = false;
    auto obj_or = objects_->PutAndLink(
        entry.mode,
        [&](const ObjectStore::Sink& sink) {
          bool sink_failed = false;
          Status r = reader_->ReadData([&](std::string_view data) {
            Status w = sink(data);
            sink_failed = !w.ok();
            return w;
          });
          reader_refused = !r.ok() && !sink_failed;
          return r;
        },
        parent, name, entry.size);
    if (!obj_or.ok())
      return reader_refused ? obj_or.status() : At(entry.path, obj_or.status());
    const ObjectStore::Object& obj = *obj_or;
    if (obj.created) created_->push_back(obj.name);
    m->mode = entry.mode & 0555;
    m->sha256 = obj.sha256;
    m->size = obj.size;
    ++result_->files;
    result_->bytes += m->size;
    return Status::Ok();
  }

  // Directories implied by deeper paths but absent from the archive.
  void AddImpliedDirs() {
    for (const auto& [path, e] : std::map<std::string, ManifestEntry>(manifest_->entries)) {
      for (size_t slash = path.find('/'); slash != std::string::npos;
           slash = path.find('/', slash + 1)) {
        std::string dir = path.substr(0, slash);
        if (!manifest_->entries.count(dir)) {
          manifest_->entries[dir] = ManifestEntry{EntryType::kDir, 0555, 0, "", ""};
        }
      }
    }
  }

  // A symlink may be harmless alone and escape through another one; judge
  // each by where it really resolves, now that the tree is complete.
  Status CheckSymlinks() const {
    for (const std::string& link : symlinks_) {
      auto fd = OpenBeneath(slot_fd_, link, O_PATH);
      if (!fd.ok() && fd.status().error_number() != ENOENT)
        return InvalidArgument("artifact 'build " + shown_ + "': symlink '" + link +
                               "' leaves the slot (through another symlink)");
    }
    return Status::Ok();
  }

  const SlotRequest& req_;
  const int slot_fd_;
  ObjectStore* objects_;
  Manifest* manifest_;
  SlotResult* result_;
  std::vector<std::string>* created_;
  const std::string shown_;
  const std::string what_;
  std::unique_ptr<ArchiveReader> reader_;
  std::vector<std::string> symlinks_;
};

// Seals every directory below `root`, deepest first, so that a directory
// is closed after its children; `root` itself stays writable: rename(2)
// of a directory to another parent must update its "..", which needs
// write permission on it for any user but root. Sealed after the move
// (BuildSlot).
Status SealBelow(const std::string& root) {
  std::vector<std::string> dirs;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(root, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec))
    if (it->is_directory(ec) && !it->is_symlink(ec)) dirs.push_back(it->path().string());
  if (ec) return Status::FromErrno("cannot walk '" + root + "'", ec.value());
  for (auto it = dirs.rbegin(); it != dirs.rend(); ++it) {
    if (::chmod(it->c_str(), 0555) != 0)
      return Status::FromErrno("cannot seal '" + *it + "'", errno);
  }
  return Status::Ok();
}

}  // namespace


std::string SlotPath(const std::string& state_dir, const std::string& app,
                     int64_t number) {
  return ReleasesDir(state_dir, app) + "/" + ReleaseId(number).ToString();
}

std::string ReleaseDigest(const std::string& root_tree,
                          const nlohmann::json& env, const std::string& build_sha256) {
  // "-2": the content is named by the root tree, no longer by the flat
  // manifest's text; the digest still covers every path, mode and body.
  Sha256 h;
  h.Update("relsupd-release-2\n");
  h.Update(build_sha256);
  h.Update("\n");
  h.Update(env.dump());
  h.Update("\n");
  h.Update(root_tree);
  return h.HexDigest();
}

namespace {

// Writes the slot's .relsupd/: its tree objects linked into trees/, then
// env.json and release.json (`meta`).
Status WriteSlotMeta(const SlotRequest& req, int slot_fd, const TreeSet& trees,
                     const nlohmann::json& meta, ObjectStore* objects,
                     std::vector<std::string>* created) {
  if (::mkdirat(slot_fd, ".relsupd", 0700) != 0)
    return Status::FromErrno("cannot create '.relsupd'", errno);
  if (::mkdirat(slot_fd, kTreesDir, 0700) != 0)
    return Status::FromErrno(std::string("cannot create '") + kTreesDir + "'", errno);
  ASSIGN_OR_RETURN(Fd meta_fd, OpenBeneath(slot_fd, ".relsupd", O_RDONLY | O_DIRECTORY));
  ASSIGN_OR_RETURN(Fd trees_fd, OpenBeneath(slot_fd, kTreesDir, O_RDONLY | O_DIRECTORY));
  // Each tree is linked into the slot, so the store keeps it exactly as
  // long as a slot uses it; a second release adds only the trees that
  // differ (the path from a changed file to the root).
  for (const TreeObject& t : trees.trees) {
    auto obj = objects->PutTreeAndLink(t.text, trees_fd.get(), t.hash);
    if (!obj.ok())
      return obj.status().WithContext("cannot store the manifest of " +
                                      ReleaseId(req.number).ToString());
    if (obj->created) created->push_back(obj->name);
  }
  RETURN_IF_ERROR(WriteMeta(meta_fd.get(), "env.json", req.env.dump() + "\n", 0400));
  return WriteMeta(meta_fd.get(), "release.json", meta.dump(2) + "\n", 0444);
}

}  // namespace

Result<SlotResult> BuildSlot(const SlotRequest& req) {
  const std::string tmp = StagingDir(req.state_dir);
  const std::string releases = ReleasesDir(req.state_dir, req.app);
  RETURN_IF_ERROR(MakeDirs(tmp, 0700));
  RETURN_IF_ERROR(MakeDirs(releases, 0755));
  std::string staging = tmp + "/" + req.app + "-" + ReleaseId(req.number).ToString() + "-XXXXXX";
  if (::mkdtemp(staging.data()) == nullptr)
    return Status::FromErrno("cannot create staging directory in '" + tmp + "'", errno);
  auto objects = ObjectStore::Open(ObjectsDir(req.state_dir));
  std::vector<std::string> created;  // objects this slot added to the store
  // From here on, any failure removes the staging tree and the objects
  // only it used.
  auto fail = [&](Status s) -> Result<SlotResult> {
    RemoveTree(staging).IgnoreError();
    if (objects.ok()) objects->RemoveIfUnused(created);
    return s;
  };
  if (!objects.ok()) return fail(objects.status());
  auto slot_fd = OpenFile(staging, O_RDONLY | O_DIRECTORY);
  if (!slot_fd.ok()) return fail(slot_fd.status());
  Manifest manifest;
  SlotResult result;
  Status s = Unpacker(req, slot_fd->get(), &*objects, &manifest, &result, &created).Run();
  if (!s.ok()) return fail(s);
  Failpoint("after-unpack");

  auto procs = LoadProcessFile(staging);
  if (!procs.ok()) return fail(procs.status());
  // The app's sockets may still change before the release is activated;
  // activation checks again. Refusing here already says it before the
  // release exists.
  if (Status ready = CheckReadyAgainstSockets(*procs, req.sockets); !ready.ok())
    // vN does not exist (and may never): the message names the build.
    return fail(ready.WithContext("no release made from this build"));
  if (Status named = CheckProcessSockets(*procs, req.sockets, req.app); !named.ok())
    return fail(named);

  auto trees = BuildTrees(manifest);
  if (!trees.ok()) return fail(trees.status());
  result.tree = trees->root;
  result.digest = ReleaseDigest(trees->root, req.env, req.build_sha256);
  nlohmann::json meta = req.metadata;
  meta["digest"] = result.digest;
  meta["tree"] = trees->root;
  meta["process_file"] = procs->source;
  s = WriteSlotMeta(req, slot_fd->get(), *trees, meta, &*objects, &created);
  if (!s.ok()) return fail(s);
  Failpoint("before-seal");
  s = SealBelow(staging);
  if (!s.ok()) return fail(s);
  // One syncfs covers every object, link and directory written above, and
  // the seal's modes (an fsync of one directory need not: btrfs logs just
  // that inode).
  s = objects->Sync();
  if (!s.ok()) return fail(s);
  Failpoint("before-rename");
  const std::string slot = releases + "/" + ReleaseId(req.number).ToString();
  if (::renameat2(AT_FDCWD, staging.c_str(), AT_FDCWD, slot.c_str(), RENAME_NOREPLACE) != 0)
    return fail(Status::FromErrno("cannot move the slot to '" + slot + "'", errno));
  // The slot's own directory, last; a crash before the ledger row commits
  // leaves a slot start-up recovery removes, sealed or not.
  if (::fchmod(slot_fd->get(), 0555) != 0) s = Status::FromErrno("cannot seal '" + slot + "'", errno);
  if (s.ok()) s = SyncDir(slot);
  if (s.ok()) s = SyncDir(releases);
  if (!s.ok()) {
    RemoveTree(slot).IgnoreError();
    objects->RemoveIfUnused(created);
    return s;
  }
  Failpoint("after-rename");
  return result;
}

Result<std::string> ReadSlotTree(const std::string& slot_dir) {
  const std::string path = slot_dir + "/.relsupd/release.json";
  ASSIGN_OR_RETURN(std::string text, ReadFile(path, kMaxMetaBytes));
  auto meta = nlohmann::json::parse(text, nullptr, false);
  if (!meta.is_object()) return Corruption("'" + path + "' is malformed");
  auto it = meta.find("tree");
  if (it == meta.end()) {
    // No deployment ever ran the flat-manifest format; say what it is
    // rather than misread it.
    return FailedPrecondition("slot '" + slot_dir +
                              "' was made by an older relsupd (a flat .relsupd/manifest.json, "
                              "no tree in release.json) and cannot be read; make a new release");
  }
  if (!it->is_string() || !IsTreeHash(it->get<std::string>()))
    return Corruption("'" + path + "' has a malformed tree hash");
  return it->get<std::string>();
}

Result<Manifest> ReadSlotManifest(const std::string& slot_dir) {
  ASSIGN_OR_RETURN(std::string root, ReadSlotTree(slot_dir));
  // The slot's own links, not the store: a slot reads alone, and its
  // link is what keeps the object alive.
  const std::string trees = slot_dir + "/" + kTreesDir + "/";
  return LoadTrees(root, [&](const std::string& hash) {
    return ReadFile(trees + hash, kMaxTreeBytes);
  });
}

Result<nlohmann::json> ReadSlotEnv(const std::string& slot_dir) {
  ASSIGN_OR_RETURN(std::string text, ReadFile(slot_dir + "/.relsupd/env.json", kMaxMetaBytes));
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object()) return Corruption("'" + slot_dir + "/.relsupd/env.json' is malformed");
  return j;
}

Result<VerifyResult> VerifySlot(const std::string& slot_dir, const std::string& digest,
                                const std::string& build_sha256) {
  VerifyResult v;
  ASSIGN_OR_RETURN(std::string root, ReadSlotTree(slot_dir));
  auto env = ReadSlotEnv(slot_dir);
  v.digest_ok = env.ok() && ReleaseDigest(root, *env, build_sha256) == digest;
  auto stored = ReadSlotManifest(slot_dir);
  if (!stored.ok()) {
    // Each tree is checked against the hash its parent (or release.json)
    // names, so a changed tree cannot pass; without it there is nothing
    // to compare the files with.
    if (stored.status().code() != StatusCode::kCorruption) return stored.status();
    v.digest_ok = false;
    v.problems.push_back(stored.status().message());
    return v;
  }
  ASSIGN_OR_RETURN(Manifest actual, ScanSlot(slot_dir));
  v.diff = DiffManifests(*stored, actual);
  return v;
}

Status CleanStaging(const std::string& state_dir) {
  const std::string tmp = StagingDir(state_dir);
  std::error_code ec;
  if (!std::filesystem::exists(tmp, ec)) return Status::Ok();
  for (const auto& e : std::filesystem::directory_iterator(tmp, ec))
    RETURN_IF_ERROR(RemoveTree(e.path().string()));
  if (ec) return Status::FromErrno("cannot read '" + tmp + "'", ec.value());
  return Status::Ok();
}

}  // namespace relsupd
