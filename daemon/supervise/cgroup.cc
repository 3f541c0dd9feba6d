#include "daemon/supervise/cgroup.h"

#include <dirent.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <linux/magic.h>

#include "daemon/base/fd.h"

namespace relsupd {
namespace {

constexpr int kMaxRemoveTries = 100;  // of kRetryMs each: 10 s
constexpr uint64_t kRetryMs = 100;

bool IsCgroup2(const std::string& path) {
  struct statfs fs{};
  return ::statfs(path.c_str(), &fs) == 0 && fs.f_type == CGROUP2_SUPER_MAGIC;
}

Status WriteSmall(const std::string& path, std::string_view text) {
  ASSIGN_OR_RETURN(Fd fd, OpenFile(path, O_WRONLY));
  return WriteAll(fd.get(), text, path);
}

std::vector<std::string> SubDirs(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return out;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == ".." || e->d_type != DT_DIR) continue;
    out.push_back(dir + "/" + name);
  }
  ::closedir(d);
  return out;
}

bool Populated(const std::string& dir) {
  auto text = ReadFile(dir + "/cgroup.events", 4096);
  return text.ok() && text->find("populated 1") != std::string::npos;
}

constexpr std::pair<unsigned, std::string_view> kControllerNames[] = {
    {kCgroupMemory, "memory"}, {kCgroupPids, "pids"}, {kCgroupCpu, "cpu"}};

// The bits of the names in a cgroup.controllers or cgroup.subtree_control.
unsigned ControllerBits(const std::string& text) {
  unsigned bits = 0;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find_first_of(" \n", start);
    if (end == std::string::npos) end = text.size();
    std::string_view word(text.data() + start, end - start);
    for (const auto& [bit, name] : kControllerNames)
      if (word == name) bits |= bit;
    start = end + 1;
  }
  return bits;
}

unsigned ReadControllers(const std::string& file) {
  auto text = ReadFile(file, 4096);
  return text.ok() ? ControllerBits(*text) : 0;
}

}  // namespace

std::vector<std::pair<std::string, std::string>> CgroupLimitWrites(
    const ProcessLimits& limits, unsigned controllers) {
  std::vector<std::pair<std::string, std::string>> out;
  if ((controllers & kCgroupMemory) && limits.memory_bytes > 0) {
    out.emplace_back("memory.max", std::to_string(limits.memory_bytes));
    // An OOM kill ends the whole instance, not one of its workers.
    out.emplace_back("memory.oom.group", "1");
  }
  if ((controllers & kCgroupPids) && limits.pids > 0)
    out.emplace_back("pids.max", std::to_string(limits.pids));
  if ((controllers & kCgroupCpu) && limits.cpu > 0) {
    constexpr int64_t kPeriodUs = 100'000;
    const auto quota = std::max<int64_t>(
        static_cast<int64_t>(limits.cpu * static_cast<double>(kPeriodUs) + 0.5), 1'000);
    out.emplace_back("cpu.max", std::to_string(quota) + " " + std::to_string(kPeriodUs));
  }
  return out;
}

unsigned EnableControllers(const std::string& dir, unsigned wanted) {
  const unsigned offered = ReadControllers(dir + "/cgroup.controllers");
  for (const auto& [bit, name] : kControllerNames) {
    if (!(wanted & bit) || !(offered & bit)) continue;
    Status s = WriteSmall(dir + "/cgroup.subtree_control", "+" + std::string(name));
    if (!s.ok()) spdlog::debug("enabling {} in {}: {}, ignoring", name, dir, s.message());
  }
  return ReadControllers(dir + "/cgroup.subtree_control") & wanted;
}

CgroupTree::CgroupTree(uv_loop_t* loop, std::string root)
    : loop_(loop), root_(std::move(root)) {
  uv_timer_init(loop_, timer_.get());
  timer_->data = this;
}

CgroupTree::~CgroupTree() {
  for (const auto& p : pending_) ::rmdir(p.dir.c_str());
}

Result<std::unique_ptr<CgroupTree>> CgroupTree::Open(uv_loop_t* loop,
                                                     const std::string& root) {
  RETURN_IF_ERROR(MakeDirs(root, 0755).WithContext("cgroup root"));
  if (!IsCgroup2(root))
    return InvalidArgument("cgroup root '" + root +
                           "' is not on a cgroup2 file system");
  if (::access((root + "/cgroup.procs").c_str(), W_OK) != 0)
    return Status::FromErrno("cgroup root '" + root + "' is not writable",
                             errno);
  std::unique_ptr<CgroupTree> tree(new CgroupTree(loop, root));
  tree->controllers_ = EnableControllers(root, kLimitControllers);
  return tree;
}

Result<std::unique_ptr<CgroupTree>> CgroupTree::Adopt(uv_loop_t* loop,
                                                      const CgroupSnapshot& snapshot) {
  ASSIGN_OR_RETURN(std::unique_ptr<CgroupTree> tree, Open(loop, snapshot.root));
  tree->next_ = std::max<uint64_t>(snapshot.next, 1);
  return tree;
}

Result<std::string> CgroupTree::FindMount() {
  for (const char* m : {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"})
    if (IsCgroup2(m)) return std::string(m);
  return NotFound("no cgroup2 file system is mounted");
}

Result<std::string> CgroupTree::OwnWritableCgroup(const std::string& mount) {
  ASSIGN_OR_RETURN(std::string text, ReadFile("/proc/self/cgroup", 65536));
  size_t pos = text.find("0::");
  if (pos == std::string::npos || (pos != 0 && text[pos - 1] != '\n'))
    return NotFound("this process has no cgroup2 path");
  size_t end = text.find('\n', pos);
  std::string path = text.substr(pos + 3, end - pos - 3);
  std::string dir = mount + (path == "/" ? "" : path);
  if (::access((dir + "/cgroup.procs").c_str(), W_OK) != 0 ||
      ::access(dir.c_str(), W_OK) != 0)
    return Status::FromErrno("cgroup '" + dir + "' is not writable", errno);
  return dir;
}

Result<std::string> CgroupTree::Create(const std::string& app,
                                       const std::string& instance,
                                       const ProcessLimits& limits, unsigned* applied) {
  std::string app_dir = root_ + "/" + app;
  if (::mkdir(app_dir.c_str(), 0755) == 0) {
    if (controllers_ != 0) EnableControllers(app_dir, controllers_);
  } else if (errno != EEXIST) {
    return Status::FromErrno("cannot create cgroup '" + app_dir + "'", errno);
  }
  std::string dir = app_dir + "/" + instance + "@" + std::to_string(next_++);
  if (::mkdir(dir.c_str(), 0755) != 0)
    return Status::FromErrno("cannot create cgroup '" + dir + "'", errno);
  unsigned ok = controllers_;
  for (const auto& [file, value] : CgroupLimitWrites(limits, controllers_)) {
    Status s = WriteSmall(dir + "/" + file, value);
    if (s.ok()) continue;
    spdlog::warn("{} {}: {}: the limit is not in force", app, instance, s.message());
    for (const auto& [bit, name] : kControllerNames)
      if (file.starts_with(std::string(name) + ".")) ok &= ~bit;
  }
  if (applied != nullptr) *applied = ok;
  return dir;
}

bool CgroupTree::OomKilled(const std::string& dir) const {
  auto text = ReadFile(dir + "/memory.events", 4096);
  if (!text.ok()) return false;
  size_t at = text->find("oom_kill ");
  return at != std::string::npos && (at == 0 || (*text)[at - 1] == '\n') &&
         text->compare(at + 9, 2, "0\n") != 0;
}

void CgroupTree::Kill(const std::string& dir) {
  Status s = WriteSmall(dir + "/cgroup.kill", "1");
  if (!s.ok()) spdlog::debug("{}, ignoring", s.message());
}

void CgroupTree::KillAndRemove(const std::string& dir) {
  if (::rmdir(dir.c_str()) == 0 || errno == ENOENT) return;
  Kill(dir);
  if (::rmdir(dir.c_str()) == 0) return;
  pending_.push_back({dir, 0});
  if (!uv_is_active(timer_.handle()))
    uv_timer_start(
        timer_.get(),
        [](uv_timer_t* t) {
          if (auto* self = static_cast<CgroupTree*>(t->data))
            self->RetryPending();
        },
        kRetryMs, kRetryMs);
}

void CgroupTree::RetryPending() {
  std::vector<Pending> keep;
  for (auto& p : pending_) {
    if (::rmdir(p.dir.c_str()) == 0 || errno == ENOENT) continue;
    if (++p.tries >= kMaxRemoveTries) {
      spdlog::warn("cgroup {} still busy after {} s, leaving it", p.dir,
                   kMaxRemoveTries * kRetryMs / 1000);
      continue;
    }
    if (p.tries % 10 == 0) Kill(p.dir);
    keep.push_back(std::move(p));
  }
  pending_ = std::move(keep);
  if (pending_.empty()) uv_timer_stop(timer_.get());
}

int CgroupTree::KillLeftovers() {
  int held = 0;
  for (const auto& app_dir : SubDirs(root_)) {
    for (const auto& dir : SubDirs(app_dir)) {
      if (Populated(dir)) ++held;
      KillAndRemove(dir);
    }
    ::rmdir(app_dir.c_str());  // fails while instances remain; harmless
  }
  return held;
}

namespace {

Result<std::unique_ptr<CgroupTree>> OpenDaemonCgroups(
    uv_loop_t* loop, const std::string& setting) {
  // What an instance is without one: its process group, so a process that
  // leaves it (setsid, a double fork) outlives `stop` and is found only
  // when the daemon starts next (KillLeftovers, by its environment).
  constexpr char kWithout[] =
      "instances run without cgroups (a process of theirs that calls setsid is not "
      "stopped with them; limits: memory by an RSS watch, pids and cpu not enforced)";
  if (setting == "off") {
    spdlog::info("cgroup: off in the daemon config: {}", kWithout);
    return std::unique_ptr<CgroupTree>();
  }
  if (setting != "auto") return CgroupTree::Open(loop, setting);
  // auto: only a tree systemd delegated to us (Delegate=yes); never the
  // cgroup of whatever shell started the daemon by hand.
  if (getenv("INVOCATION_ID") == nullptr) {
    spdlog::info("Not started by systemd (no INVOCATION_ID), so no delegated cgroup: {}; "
                 "the packaged unit has Delegate=yes, or set cgroup: PATH",
                 kWithout);
    return std::unique_ptr<CgroupTree>();
  }
  auto mount = CgroupTree::FindMount();
  if (!mount.ok()) {
    spdlog::info("No cgroup v2 mount ({}): {}", mount.status().message(), kWithout);
    return std::unique_ptr<CgroupTree>();
  }
  auto own = CgroupTree::OwnWritableCgroup(*mount);
  if (!own.ok()) {
    spdlog::info("No writable cgroup ({}): {}", own.status().message(), kWithout);
    return std::unique_ptr<CgroupTree>();
  }
  // cgroup v2 allows processes only in leaves of a tree with controllers:
  // the daemon moves to ROOT/daemon and the apps live in ROOT/apps.
  std::string daemon_dir = *own + "/daemon";
  if (::mkdir(daemon_dir.c_str(), 0755) != 0 && errno != EEXIST)
    return Status::FromErrno("mkdir '" + daemon_dir + "'", errno);
  {
    ASSIGN_OR_RETURN(Fd procs,
                     OpenFile(daemon_dir + "/cgroup.procs", O_WRONLY));
    RETURN_IF_ERROR(WriteAll(procs.get(), "0", "joining " + daemon_dir));
  }
  // Now that ROOT holds no process, its children may have controllers.
  EnableControllers(*own, kLimitControllers);
  return CgroupTree::Open(loop, *own + "/apps");
}

}  // namespace

Result<std::unique_ptr<CgroupTree>> SetUpDaemonCgroups(
    uv_loop_t* loop, const std::string& setting) {
  ASSIGN_OR_RETURN(std::unique_ptr<CgroupTree> tree,
                   OpenDaemonCgroups(loop, setting));
  if (tree != nullptr) {
    int n = tree->KillLeftovers();
    if (n > 0)
      spdlog::warn("Ended {} instance cgroups a previous daemon left", n);
  }
  return tree;
}

}  // namespace relsupd
