// release_create: the release stage on a realistic app (issue 3).
//
// Builds a synthetic app of 10,000 files and 200 MiB in a temporary
// directory (fixed-seed pseudo-random content, 4 KiB chunks of binary noise
// or of text, so gzip neither gives up nor shrinks it anywhere near the
// daemon's 200:1 ratio cap), packs it with `relsupd build DIR -o
// app1.tar.gz` (timed), and packs app2, the same tree with the 1 MiB file
// big/one_mb.bin rewritten. Then, for each of --rounds rounds, a daemon on
// its own fresh state dir (`relsupd daemon --state-dir D --socket S`):
//   phase 1, round by round:
//     `ctl app create bench`, `ctl --json build import bench app1.tar.gz`,
//     `tar -xzf app1.tar.gz -C FRESH`, `ctl release create bench --build
//     ID1` (v1), `tar -xzf` again into another fresh dir: release create is
//     compared with the mean of the two extractions around it;
//   phase 2, round by round:
//     state dir usage (st_blocks * 512 of each inode once), `ctl build
//     import bench app2.tar.gz`, `ctl release create bench --build ID2`
//     (v2), usage again: the growth with and without the stored app2
//     artifact, by what grew; then `ctl release verify bench v2`.
// Every step is a `relsupd ctl` or `tar` process timed from posix_spawn to
// wait4, after a syncfs so that it does not pay for earlier writes. A fresh
// state dir per round: the object store is shared by every app of a state
// dir, so a second release of the same bytes, even for another app, would
// only hard-link stored objects and not be comparable. Nothing is deleted
// until the figures are printed (see README.md: removals slow down later
// file creation on ext4 without a journal).
//
// Prints each figure (median of the rounds, min..max) next to its target
// with PASS or FAIL. The daemons are always stopped by pid (SIGTERM,
// waitpid) and the temporary dirs removed (sealed slots made writable
// first). Exit code 0 whatever the figures; 1 when a step fails, 2 on a
// usage error.
//
//   build/bench/release_create [--relsupd PATH] [--rounds N] [--files N]
//                              [--mib N] [--settle SEC] [--keep]

#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "bench/bench_support.h"
#include "tests/support/fs.h"

namespace relsupd::bench {
namespace {

using Clock = std::chrono::steady_clock;

// Targets (issue 3).
constexpr double kTargetCreateVsTar = 1.5;        // release create / tar -xzf, at most
constexpr uint64_t kTargetGrowthBytes = 2 << 20;  // second release, below (2 MiB)

constexpr uint64_t kMiB = 1 << 20;
constexpr char kApp[] = "bench";

struct Options {
  std::string relsupd = RELSUPD_BIN;
  int rounds = 3;          // fresh state dir + daemon each
  int files = 10'000;      // files in the app, all told
  uint64_t mib = 200;      // bytes of file content, all told, in MiB
  bool keep = false;       // leave the temporary dir behind
  int settle_s = 0;        // wait before the first timed step
};

void Usage(FILE* out) {
  std::fprintf(out,
               "usage: release_create [--relsupd PATH] [--rounds N] [--files N] "
               "[--mib N] [--settle SEC] [--keep]\n"
               "  --relsupd PATH  relsupd binary (default %s)\n"
               "  --rounds N      rounds, each on a fresh state dir and daemon "
               "(default 3)\n"
               "  --files N       files in the synthetic app (default 10000)\n"
               "  --mib N         MiB of file content in it (default 200)\n"
               "  --settle SEC    wait this long before the first timed step "
               "(default 0)\n"
               "  --keep          keep the temporary directory (its path is "
               "printed)\n",
               RELSUPD_BIN);
}

bool ParseArgs(int argc, char** argv, Options* o) {
  return ParseFlags(argc, argv, Usage,
                    {TextFlag("--relsupd", &o->relsupd),
                     IntFlag("--rounds", &o->rounds, 1, 100),
                     IntFlag("--files", &o->files, 10, 1'000'000),
                     IntFlag<uint64_t>("--mib", &o->mib, 2, 100'000),
                     IntFlag("--settle", &o->settle_s, 0, 3600),
                     SwitchFlag("--keep", &o->keep)});
}

double Seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

std::string Human(uint64_t bytes) {
  char buf[32];
  if (bytes >= 10 * kMiB)
    std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / kMiB);
  else
    std::snprintf(buf, sizeof buf, "%.0f KiB", static_cast<double>(bytes) / 1024);
  return buf;
}

// ---------------------------------------------------------------------------
// Synthetic app.

// xoshiro256**, seeded through splitmix64: fast, fixed-seed, portable.
class Rng {
 public:
  explicit Rng(uint64_t seed) {
    for (auto& s : s_) {
      seed += 0x9e3779b97f4a7c15ULL;
      uint64_t z = seed;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
      s = z ^ (z >> 31);
    }
  }
  uint64_t Next() {
    const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }
  double Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

// `n` bytes of content: 4 KiB chunks, each either pseudo-random bytes (as
// in images or compiled code; gzip cannot shrink them) or text made of
// words and random hex numbers (as in source; gzip shrinks it about 3x).
void FillContent(Rng& rng, size_t n, std::string* out) {
  static const char* const kWords[] = {
      "function", "return",  "const",   "let",     "var",     "if",
      "else",     "for",     "while",   "import",  "export",  "from",
      "class",    "new",     "this",    "self",    "def",     "async",
      "await",    "true",    "false",   "null",    "None",    "string",
      "number",   "object",  "array",   "map",     "filter",  "reduce",
      "length",   "value",   "key",     "index",   "result",  "error",
      "request",  "response","status",  "config",  "options", "data",
      "user",     "session", "token",   "cache",   "render",  "props",
      "state",    "module",  "require", "package", "version", "build",
      "test",     "assert",  "expect",  "describe","it",      "{",
      "}",        "(",       ");",      "=>"};
  constexpr size_t kChunk = 4096;
  out->clear();
  out->reserve(n);
  while (out->size() < n) {
    size_t want = std::min(kChunk, n - out->size());
    size_t end = out->size() + want;
    if (rng.Next() & 1) {
      while (out->size() < end) {
        uint64_t r = rng.Next();
        size_t k = std::min<size_t>(8, end - out->size());
        out->append(reinterpret_cast<const char*>(&r), k);
      }
    } else {
      while (out->size() < end) {
        uint64_t r = rng.Next();
        std::string piece;
        if ((r & 7) == 0) {
          char hex[24];
          std::snprintf(hex, sizeof hex, "0x%08x ", static_cast<unsigned>(r >> 32));
          piece = hex;
        } else {
          piece = kWords[(r >> 3) % (sizeof kWords / sizeof kWords[0])];
          piece += ((r >> 12) & 15) == 0 ? '\n' : ' ';
        }
        out->append(piece, 0, std::min(piece.size(), end - out->size()));
      }
    }
  }
}

bool WriteFile(const std::string& path, const std::string& data, mode_t mode,
               std::string* error) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) {
    *error = "cannot create " + path + ": " + std::strerror(errno);
    return false;
  }
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      *error = "cannot write " + path + ": " + std::strerror(errno);
      ::close(fd);
      return false;
    }
    off += static_cast<size_t>(n);
  }
  ::fchmod(fd, mode);
  ::close(fd);
  return true;
}

struct TreeStats {
  int files = 0;
  int dirs = 0;
  uint64_t bytes = 0;
};

constexpr char kBigFile[] = "big/one_mb.bin";

void WriteBigFile(const std::string& root, uint64_t seed, std::string* error) {
  Rng rng(seed);
  std::string data;
  data.resize(kMiB);
  for (size_t i = 0; i < kMiB; i += 8) {
    uint64_t r = rng.Next();
    std::memcpy(data.data() + i, &r, 8);
  }
  WriteFile(root + "/" + kBigFile, data, 0644, error);
}

// The app: relsupd.yaml, bin/server, big/one_mb.bin and the rest of
// `o.files` in lib/pNN/ (100 directories), sizes log-uniform between 64 B
// and 256 KiB, scaled so that all file bodies add up to `o.mib` MiB.
bool MakeTree(const std::string& root, const Options& o, TreeStats* st,
              std::string* error) {
  namespace fs = std::filesystem;
  std::error_code ec;
  for (const char* d : {"", "/bin", "/big", "/lib"}) {
    fs::create_directories(root + d, ec);
    if (ec) {
      *error = "cannot create " + root + d + ": " + ec.message();
      return false;
    }
  }
  st->dirs = 3;
  const std::string yaml = "processes:\n  web:\n    command: ./bin/server\n";
  const std::string server = "#!/bin/sh\nexec sleep infinity\n";
  if (!WriteFile(root + "/relsupd.yaml", yaml, 0644, error) ||
      !WriteFile(root + "/bin/server", server, 0755, error))
    return false;
  WriteBigFile(root, 1, error);
  if (!error->empty()) return false;
  st->files = 3;
  st->bytes = yaml.size() + server.size() + kMiB;

  constexpr int kDirs = 100;
  const int n = o.files - 3;
  const uint64_t target = o.mib * kMiB - st->bytes;
  Rng rng(20240603);
  std::vector<double> raw(static_cast<size_t>(n));
  double sum = 0;
  for (double& r : raw) {
    r = std::exp(std::log(64.0) + rng.Uniform() * (std::log(256.0 * 1024) - std::log(64.0)));
    sum += r;
  }
  std::vector<uint64_t> sizes(static_cast<size_t>(n));
  uint64_t assigned = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    sizes[i] = std::max<uint64_t>(1, static_cast<uint64_t>(raw[i] * static_cast<double>(target) / sum));
    assigned += sizes[i];
  }
  if (assigned < target) sizes.back() += target - assigned;
  static const char* const kExt[] = {"js", "py", "css", "html", "png", "so", "json", "txt"};
  std::string content;
  for (int i = 0; i < n; ++i) {
    if (g_interrupted.load()) {
      *error = "interrupted";
      return false;
    }
    const int dir = i % kDirs;
    char rel[64];
    std::snprintf(rel, sizeof rel, "lib/p%02d", dir);
    if (i < kDirs) {
      fs::create_directory(root + "/" + rel, ec);
      ++st->dirs;
    }
    char name[96];
    std::snprintf(name, sizeof name, "%s/mod_%04d.%s", rel, i / kDirs, kExt[i % 8]);
    FillContent(rng, sizes[static_cast<size_t>(i)], &content);
    if (!WriteFile(root + "/" + name, content, 0644, error)) return false;
    ++st->files;
    st->bytes += content.size();
  }
  return true;
}

// ---------------------------------------------------------------------------
// Processes.

// Runs argv with output captured under `dir`, timed; with `tmpdir`,
// TMPDIR=tmpdir (`relsupd build` makes its scratch copy there).
RunResult RunStep(const std::vector<std::string>& args, const std::string& dir,
                  const std::string& tmpdir = "") {
  if (tmpdir.empty()) return RunIn(args, dir, 0);
  return RunIn(args, dir, 0, {"TMPDIR=" + tmpdir});
}

// ---------------------------------------------------------------------------
// Disk usage.

enum Category { kObjects, kTrees, kArtifacts, kSlots, kLedger, kOther, kCategories };
const char* const kCategoryNames[kCategories] = {
    "objects/ (file bodies)", "objects/*.tree (manifests as tree objects)",
    "apps/*/builds/ (artifacts)",
    "apps/*/releases/ (slot dirs, .relsupd/)", "ledger.db*", "other"};

struct DiskUse {
  uint64_t total = 0;  // sum of st_blocks * 512, each inode once
  uint64_t by[kCategories] = {};
};

// Time spent by the benchmark itself outside the timed steps.
struct Overhead {
  double syncfs_s = 0, start_stop_s = 0, du_s = 0;
} g_overhead;

// A hard-linked inode counts once, under its lowest category: an object
// linked into a slot is an object.
std::map<std::pair<dev_t, ino_t>, std::pair<uint64_t, Category>>* g_walk = nullptr;
size_t g_walk_prefix = 0;

int WalkOne(const char* path, const struct stat* st, int, FTW*) {
  std::string_view rel(path);
  rel.remove_prefix(std::min(rel.size(), g_walk_prefix));
  if (!rel.empty() && rel[0] == '/') rel.remove_prefix(1);
  Category c = kOther;
  if (rel.starts_with("objects") && rel.ends_with(".tree")) c = kTrees;
  else if (rel.starts_with("objects")) c = kObjects;
  else if (rel.starts_with("apps/") && rel.find("/builds") != std::string_view::npos) c = kArtifacts;
  else if (rel.starts_with("apps/") && rel.find("/releases") != std::string_view::npos) c = kSlots;
  else if (rel.starts_with("ledger.db")) c = kLedger;
  auto key = std::make_pair(st->st_dev, st->st_ino);
  const uint64_t bytes = static_cast<uint64_t>(st->st_blocks) * 512;
  auto [it, inserted] = g_walk->emplace(key, std::make_pair(bytes, c));
  if (!inserted) it->second.second = std::min(it->second.second, c);
  return 0;
}

DiskUse DiskUsage(const std::string& dir) {
  auto t0 = Clock::now();
  std::map<std::pair<dev_t, ino_t>, std::pair<uint64_t, Category>> seen;
  g_walk = &seen;
  g_walk_prefix = dir.size();
  nftw(dir.c_str(), WalkOne, 64, FTW_PHYS);
  g_walk = nullptr;
  DiskUse u;
  for (const auto& [key, v] : seen) {
    u.total += v.first;
    u.by[v.second] += v.first;
  }
  g_overhead.du_s += Seconds(Clock::now() - t0);
  return u;
}

int64_t Diff(uint64_t after, uint64_t before) {
  return static_cast<int64_t>(after) - static_cast<int64_t>(before);
}

// Flushes the file system holding `dir`, so that a timed step does not pay
// for what an earlier one left dirty.
double SyncFs(const std::string& dir) {
  auto t0 = Clock::now();
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::syncfs(fd);
    ::close(fd);
  }
  double s = Seconds(Clock::now() - t0);
  g_overhead.syncfs_s += s;
  return s;
}

// One round: its own state dir and daemon.

struct Round {
  // Phase 1: the first release, between two extractions by tar.
  double import1_s = 0, create1_s = 0, create1_daemon_cpu_s = -1;
  double tar_before_s = 0, tar_after_s = 0, tar_cpu_s = 0, tar_sync_s = 0;
  // Phase 2: the second release.
  double import2_s = 0, create2_s = 0, create2_daemon_cpu_s = -1;
  double verify_s = 0, verify_daemon_cpu_s = -1;
  DiskUse before, after;
  uint64_t artifact2_bytes = 0;  // on disk, the stored app2 artifact

  double tar_s() const { return (tar_before_s + tar_after_s) / 2; }
  double ratio() const { return create1_s / tar_s(); }
  int64_t growth() const { return Diff(after.total, before.total); }
  int64_t growth_without_artifact() const {
    return growth() - static_cast<int64_t>(artifact2_bytes);
  }
};

struct TarResult {
  double wall_s = 0, cpu_s = 0, with_sync_s = 0;
};

class Bench {
 public:
  Bench(const Options& o, std::string tmp) : o_(o), tmp_(std::move(tmp)) {}

  bool Ctl(const std::string& socket, std::vector<std::string> args,
           RunResult* r, const std::string& what) {
    std::vector<std::string> argv = {o_.relsupd, "ctl", "--socket", socket};
    argv.insert(argv.end(), args.begin(), args.end());
    *r = RunStep(argv, tmp_);
    if (!r->ok()) {
      error_ = what + " failed (" + r->Describe() + ")";
      return false;
    }
    return true;
  }

  // Imports `file`; returns the build id.
  bool Import(const std::string& socket, const std::string& file, double* secs,
              std::string* id) {
    SyncFs(tmp_);
    RunResult r;
    if (!Ctl(socket, {"--json", "build", "import", kApp, file}, &r,
             "ctl build import " + file))
      return false;
    *secs = r.ms / 1e3;
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    if (!j.is_object() || !j.contains("id") || !j["id"].is_string()) {
      error_ = "ctl --json build import printed no id: " + Trim(r.out);
      return false;
    }
    *id = j["id"].get<std::string>();
    return true;
  }

  bool Create(DaemonProcess& d, const std::string& socket, const std::string& id,
              const std::string& expect, double* secs, double* daemon_cpu) {
    SyncFs(tmp_);
    double cpu0 = ProcessCpuSeconds(d.pid());
    RunResult r;
    if (!Ctl(socket, {"release", "create", kApp, "--build", id}, &r,
             "ctl release create " + std::string(kApp) + " --build " + id))
      return false;
    double cpu1 = ProcessCpuSeconds(d.pid());
    if (Trim(r.out) != expect) {
      error_ = "ctl release create printed '" + Trim(r.out) + "', not " + expect;
      return false;
    }
    *secs = r.ms / 1e3;
    *daemon_cpu = cpu0 >= 0 && cpu1 >= 0 ? cpu1 - cpu0 : -1;
    return true;
  }

  // `tar -xzf artifact -C into` into a new directory, which is kept until
  // the end of the run: nothing is deleted while figures are taken.
  bool Tar(const std::string& artifact, const std::string& into, TarResult* out) {
    std::error_code ec;
    std::filesystem::create_directory(into, ec);
    SyncFs(tmp_);
    RunResult r = RunStep({"tar", "-xzf", artifact, "-C", into}, tmp_);
    if (!r.ok()) {
      error_ = "tar -xzf " + artifact + " failed (" + r.Describe() + ")";
      return false;
    }
    double sync_s = SyncFs(into);
    out->wall_s = r.ms / 1e3;
    out->cpu_s = r.cpu_ms / 1e3;
    out->with_sync_s = r.ms / 1e3 + sync_s;
    return true;
  }

  // Round n, phase 1: a daemon on a fresh state dir (left running), app
  // creation, import of app1, and release v1 between two tar extractions.
  bool FirstRelease(int n, DaemonProcess& d, const std::string& app1, Round* out) {
    const std::string dir = RoundDir(n);
    const std::string socket = dir + "/relsupd.sock";
    std::error_code ec;
    std::filesystem::create_directory(dir, ec);
    auto t0 = Clock::now();
    if (!d.Start(o_.relsupd, dir + "/state", socket, dir + "/daemon.log", &error_) ||
        !d.WaitReady(tmp_, 30, &error_))
      return false;
    g_overhead.start_stop_s += Seconds(Clock::now() - t0);
    RunResult r;
    if (!Ctl(socket, {"app", "create", kApp}, &r, "ctl app create")) return false;
    if (!Import(socket, app1, &out->import1_s, &id1_)) return false;
    TarResult before, after;
    if (g_interrupted.load() || !Tar(app1, dir + "/tar-before", &before)) return false;
    if (g_interrupted.load() ||
        !Create(d, socket, id1_, "v1", &out->create1_s, &out->create1_daemon_cpu_s))
      return false;
    if (g_interrupted.load() || !Tar(app1, dir + "/tar-after", &after)) return false;
    out->tar_before_s = before.wall_s;
    out->tar_after_s = after.wall_s;
    out->tar_cpu_s = (before.cpu_s + after.cpu_s) / 2;
    out->tar_sync_s = (before.with_sync_s + after.with_sync_s) / 2;
    return true;
  }

  // Round n, phase 2: import app2, release v2 and the state dir's growth,
  // then release verify v2.
  bool SecondRelease(int n, DaemonProcess& d, const std::string& app2, Round* out) {
    const std::string dir = RoundDir(n);
    const std::string state = dir + "/state";
    const std::string socket = dir + "/relsupd.sock";
    SyncFs(tmp_);
    out->before = DiskUsage(state);
    std::string id2;
    if (!Import(socket, app2, &out->import2_s, &id2)) return false;
    if (g_interrupted.load() ||
        !Create(d, socket, id2, "v2", &out->create2_s, &out->create2_daemon_cpu_s))
      return false;
    SyncFs(tmp_);
    out->after = DiskUsage(state);
    // The stored artifact of app2, alone.
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(
             state + "/apps/" + kApp + "/builds", ec)) {
      struct stat st;
      if (e.path().filename().string().rfind(id2, 0) == 0 &&
          ::lstat(e.path().c_str(), &st) == 0)
        out->artifact2_bytes = static_cast<uint64_t>(st.st_blocks) * 512;
    }
    if (g_interrupted.load()) return false;
    SyncFs(tmp_);
    double cpu0 = ProcessCpuSeconds(d.pid());
    RunResult r;
    if (!Ctl(socket, {"release", "verify", kApp, "v2"}, &r, "ctl release verify bench v2"))
      return false;
    double cpu1 = ProcessCpuSeconds(d.pid());
    out->verify_s = r.ms / 1e3;
    out->verify_daemon_cpu_s = cpu0 >= 0 && cpu1 >= 0 ? cpu1 - cpu0 : -1;
    return true;
  }

  std::string RoundDir(int n) const { return tmp_ + "/round" + std::to_string(n); }
  const std::string& error() const { return error_; }
  void set_error(std::string e) { error_ = std::move(e); }

 private:
  const Options& o_;
  std::string tmp_;
  std::string error_;
  std::string id1_;
};

// ---------------------------------------------------------------------------
// Report.

void Row(const std::string& figure, const std::string& value, const std::string& spread,
         const std::string& target, const std::string& verdict) {
  std::printf("%-46s %11s  %-15s %-12s %s\n", figure.c_str(), value.c_str(),
              spread.c_str(), target.c_str(), verdict.c_str());
}

std::string Secs(double s) { return Fmt(s < 10 ? "%.2f s" : "%.1f s", s); }

// "lo..hi" of the rounds' values, in `format`.
template <typename F>
std::string Spread(const std::vector<Round>& rounds, F f, const char* format = "%.2f",
                   double scale = 1) {
  if (rounds.size() < 2) return "";
  std::vector<double> v;
  for (const Round& r : rounds) v.push_back(f(r) / scale);
  auto [lo, hi] = std::minmax_element(v.begin(), v.end());
  return Fmt(format, *lo) + ".." + Fmt(format, *hi);
}

template <typename F>
double MedianOf(const std::vector<Round>& rounds, F f) {
  std::vector<double> v;
  for (const Round& r : rounds) v.push_back(f(r));
  return Median(v);
}

std::string SignedKiB(int64_t bytes) {
  return Fmt("%+.0f KiB", static_cast<double>(bytes) / 1024);
}

// Where `relsupd build` makes its scratch copy: a tmpfs when there is one,
// so that removing the copy (10,000 files) does not touch the file system
// measured (see README: ext4 without a journal avoids reusing recently
// freed inodes for a minute or more, and that slows later file creation).
std::string BuildScratchDir(const std::string& fallback) {
  const char* shm = "/dev/shm";
  struct stat st;
  if (::stat(shm, &st) == 0 && S_ISDIR(st.st_mode) && ::access(shm, W_OK | X_OK) == 0) {
    std::string probe = std::string(shm) + "/relsupd-bench-rc.XXXXXX";
    if (mkdtemp(probe.data()) != nullptr) return probe;
  }
  return fallback;
}

// The daemons of the rounds, one each, left running until the figures
// are taken.
using Daemons = std::vector<std::unique_ptr<DaemonProcess>>;

void StopDaemons(Daemons& daemons) {
  auto t0 = Clock::now();
  for (auto& d : daemons) d->Stop();
  g_overhead.start_stop_s += Seconds(Clock::now() - t0);
}

// Prints why the run failed and the daemons' logs; the exit code 1.
int Fail(const std::string& what, Daemons& daemons) {
  std::fflush(stdout);
  std::fprintf(stderr, "release_create: %s\n", what.c_str());
  StopDaemons(daemons);
  for (size_t i = 0; i < daemons.size(); ++i) {
    std::string log = support::ReadFileOrEmpty(daemons[i]->log());
    if (!log.empty()) std::fprintf(stderr, "daemon log (round %zu):\n%s", i + 1, log.c_str());
  }
  return 1;
}

void PrintHeader(const Options& o, const std::string& tmp, const std::string& scratch_dir) {
  RunResult version = RunStep({o.relsupd, "--version"}, tmp);
  std::printf("release_create (%s, %u cores, load average %s)\n",
              Trim(version.out).c_str(), std::thread::hardware_concurrency(),
              LoadAverage().c_str());
  std::printf("temporary dir %s%s; relsupd build scratch in %s\n\n", tmp.c_str(),
              o.keep ? " (kept)" : "", scratch_dir.c_str());
  std::fflush(stdout);
}

// The synthetic app in TMP/src/app, packed into app1 and, after big/ is
// rewritten, app2. The first build's wall time in *build_s; false with why.
bool BuildApps(const Options& o, const std::string& tmp, const std::string& scratch_dir,
               const std::string& app1, const std::string& app2, double* build_s,
               std::string* error) {
  const std::string src = tmp + "/src/app";
  TreeStats tree;
  auto t0 = Clock::now();
  if (!MakeTree(src, o, &tree, error)) return false;
  const double gen_s = Seconds(Clock::now() - t0);
  // `relsupd build SRC -o out` after a syncfs; its wall time in s, -1.
  auto build = [&](const std::string& out) {
    SyncFs(tmp);
    RunResult b = RunStep({o.relsupd, "build", src, "-o", out}, tmp, scratch_dir);
    if (b.ok()) return b.ms / 1e3;
    *error = "relsupd build " + src + " failed (" + b.Describe() + ")";
    return -1.0;
  };
  *build_s = build(app1);
  if (*build_s < 0) return false;
  WriteBigFile(src, 2, error);
  if (!error->empty() || build(app2) < 0) return false;
  struct stat a1{}, a2{};
  ::stat(app1.c_str(), &a1);
  ::stat(app2.c_str(), &a2);
  std::printf("app: %d files in %d directories, %s of file content (made in %.1f s);\n"
              "     app2 = the same with %s rewritten (1 MiB of new bytes)\n",
              tree.files, tree.dirs, Human(tree.bytes).c_str(), gen_s, kBigFile);
  std::printf("artifacts (relsupd build, tar.gz): app1 %s, app2 %s, "
              "%.2f:1 compression (the daemon refuses over 200:1)\n",
              Human(static_cast<uint64_t>(a1.st_size)).c_str(),
              Human(static_cast<uint64_t>(a2.st_size)).c_str(),
              static_cast<double>(tree.bytes) / static_cast<double>(std::max<off_t>(a1.st_size, 1)));
  std::fflush(stdout);
  return true;
}

// Phase 1 of every round, then phase 2 of every round; false with why
// (not when interrupted).
bool RunRounds(const Options& o, Bench& bench, Daemons& daemons, const std::string& app1,
               const std::string& app2, std::vector<Round>* rounds, std::string* error) {
  for (int i = 1; i <= o.rounds && !g_interrupted.load(); ++i) {
    daemons.push_back(std::make_unique<DaemonProcess>());
    daemons.back()->set_stop_timeout(30);  // a release may be half-way
    Round& r = (*rounds)[static_cast<size_t>(i - 1)];
    if (!bench.FirstRelease(i, *daemons.back(), app1, &r)) {
      if (g_interrupted.load()) break;
      *error = "round " + std::to_string(i) + ": " + bench.error();
      return false;
    }
    std::printf("  round %d, v1: import %.2f s, tar -xzf %.2f s, release create %.2f s "
                "(daemon CPU %.2f s), tar -xzf %.2f s (tar+gzip CPU %.2f s): %.2fx\n",
                i, r.import1_s, r.tar_before_s, r.create1_s, r.create1_daemon_cpu_s,
                r.tar_after_s, r.tar_cpu_s, r.ratio());
    std::fflush(stdout);
  }
  for (int i = 1; i <= o.rounds && !g_interrupted.load(); ++i) {
    Round& r = (*rounds)[static_cast<size_t>(i - 1)];
    if (!bench.SecondRelease(i, *daemons[static_cast<size_t>(i - 1)], app2, &r)) {
      if (g_interrupted.load()) break;
      *error = "round " + std::to_string(i) + ": " + bench.error();
      return false;
    }
    std::printf("  round %d, v2: import %.2f s, release create %.2f s (daemon CPU "
                "%.2f s), growth %s (%s without the artifact), verify %.2f s\n",
                i, r.import2_s, r.create2_s, r.create2_daemon_cpu_s,
                SignedKiB(r.growth()).c_str(),
                SignedKiB(r.growth_without_artifact()).c_str(), r.verify_s);
    std::fflush(stdout);
  }
  return true;
}

// The table of figures, medians of the rounds with their spread.
void PrintTable(const std::vector<Round>& rounds, double build_s) {
  using Figure = std::function<double(const Round&)>;
  // A timed step, without a target.
  auto step = [&](const char* label, const Figure& f) {
    Row(label, Secs(MedianOf(rounds, f)), Spread(rounds, f), "-", "");
  };
  // The state dir's growth for v2, against its target.
  auto growth = [&](const char* label, const Figure& f) {
    const double median = MedianOf(rounds, f);
    Row(label, Fmt("%.0f KiB", median / 1024), Spread(rounds, f, "%.0f", 1024),
        "< " + std::to_string(kTargetGrowthBytes >> 10) + " KiB",
        Verdict(median < static_cast<double>(kTargetGrowthBytes)));
  };
  const Figure ratio = [](const Round& r) { return r.ratio(); };
  const double median_ratio = MedianOf(rounds, ratio);

  std::printf("\n");
  Row("figure (median of the rounds)", "value", "min..max", "target", "");
  Row("relsupd build DIR -o app1.tar.gz (once)", Secs(build_s), "", "-", "");
  step("ctl build import bench app1.tar.gz", [](const Round& r) { return r.import1_s; });
  step("ctl release create bench --build ID1 (v1)", [](const Round& r) { return r.create1_s; });
  step("tar -xzf app1.tar.gz -C fresh_dir", [](const Round& r) { return r.tar_s(); });
  Row("  release create / tar -xzf", Fmt("%.2fx", median_ratio), Spread(rounds, ratio),
      Fmt("<= %.1fx", kTargetCreateVsTar), Verdict(median_ratio <= kTargetCreateVsTar));
  step("ctl build import bench app2.tar.gz", [](const Round& r) { return r.import2_s; });
  step("ctl release create bench --build ID2 (v2)", [](const Round& r) { return r.create2_s; });
  growth("  state dir growth, without the artifact", [](const Round& r) {
    return static_cast<double>(r.growth_without_artifact());
  });
  growth("  state dir growth, with the artifact",
         [](const Round& r) { return static_cast<double>(r.growth()); });
  step("ctl release verify bench v2", [](const Round& r) { return r.verify_s; });
}

// What the figures are made of: CPU times, the late tar, the growth by
// category, the benchmark's own overhead.
void PrintBreakdown(const Options& o, const std::vector<Round>& rounds, const TarResult& late,
                    Clock::time_point run_start) {
  auto med = [&](auto f) { return MedianOf(rounds, f); };
  const double create1 = med([](const Round& r) { return r.create1_s; });
  const double tar = med([](const Round& r) { return r.tar_s(); });
  const double create1_cpu = med([](const Round& r) { return r.create1_daemon_cpu_s; });
  const double tar_cpu = med([](const Round& r) { return r.tar_cpu_s; });
  const double tar_sync = med([](const Round& r) { return r.tar_sync_s; });
  std::printf("\nCPU time: release create v1 %.2f s in the daemon; tar -xzf %.2f s "
              "with its gzip (%.2fx)\n",
              create1_cpu, tar_cpu, tar_cpu > 0 ? create1_cpu / tar_cpu : 0.0);
  std::printf("tar -xzf then syncfs (release create syncs too): %.2f s; release "
              "create / that: %.2fx\n", tar_sync, tar_sync > 0 ? create1 / tar_sync : 0.0);
  std::printf("release create v2: daemon CPU %.2f s; release verify v2: daemon CPU %.2f s\n",
              med([](const Round& r) { return r.create2_daemon_cpu_s; }),
              med([](const Round& r) { return r.verify_daemon_cpu_s; }));
  std::printf("tar -xzf once more after the v2 releases: %.2f s (CPU %.2f s), against "
              "%.2f s before them\n", late.wall_s, late.cpu_s, tar);
  const Round& last = rounds.back();
  std::printf("\nstate dir growth from v1 to v2 (round %d: import app2 + release "
              "create v2), by what grew:\n", o.rounds);
  for (int c = 0; c < kCategories; ++c)
    std::printf("  %-42s %12s  (%s -> %s)\n", kCategoryNames[c],
                SignedKiB(Diff(last.after.by[c], last.before.by[c])).c_str(),
                Human(last.before.by[c]).c_str(), Human(last.after.by[c]).c_str());
  std::printf("  %-42s %12s  (%s -> %s)\n", "total (du -sk of the state dir)",
              SignedKiB(last.growth()).c_str(), Human(last.before.total).c_str(),
              Human(last.after.total).c_str());
  std::printf("The growth target is about the release: \"without the artifact\" counts "
              "the new object, the new tree objects,\nthe slot (directories, links, .relsupd/) and the ledger; "
              "\"with\" also counts the stored app2 artifact (%s),\nwhich the daemon "
              "keeps while a release uses it.\n", Human(last.artifact2_bytes).c_str());
  std::printf("\n(run %.0f s until here; outside the timed steps: syncfs %.1f s, daemon "
              "start/stop %.1f s, du %.1f s; removing the temporary files follows)\n",
              Seconds(Clock::now() - run_start), g_overhead.syncfs_s,
              g_overhead.start_stop_s, g_overhead.du_s);
  std::fflush(stdout);
}

// One untimed extraction (tar, gzip and the artifact are then warm), then
// --settle.
bool WarmUp(const Options& o, Bench& bench, const std::string& app1, const std::string& tmp) {
  TarResult warm;
  if (!bench.Tar(app1, tmp + "/tar-warmup", &warm)) return false;
  if (o.settle_s > 0) {
    std::printf("settling for %d s\n", o.settle_s);
    std::fflush(stdout);
    for (int i = 0; i < o.settle_s * 10 && !g_interrupted.load(); ++i) usleep(100'000);
  }
  return true;
}

int Main(int argc, char** argv) {
  Options o;
  if (!ParseArgs(argc, argv, &o)) return UsageError(Usage);
  if (!ResolveBinary("release_create", &o.relsupd)) return 1;
  InstallInterruptHandlers();
  const auto run_start = Clock::now();
  // Removed at the end, then the file system is flushed: on ext4 without a
  // journal, inodes freed by a removal are not reused for 60 s once written
  // back (300 s while still dirty), and every file created meanwhile in
  // their block group has to step over them.
  BenchDir tmp, scratch;
  tmp.keep = o.keep;
  tmp.print_kept = false;  // the header says so
  tmp.after_remove = scratch.after_remove = [](const std::string& parent) { SyncFs(parent); };
  if (!tmp.Make("release_create", "relsupd-bench-rc")) return 1;
  std::string scratch_dir = BuildScratchDir(tmp.path());
  if (scratch_dir != tmp.path()) scratch.Adopt(scratch_dir);
  // Declared after the temporary dirs: stopped before they are removed.
  Daemons daemons;
  Bench bench(o, tmp.path());
  PrintHeader(o, tmp.path(), scratch_dir);

  const std::string app1 = tmp.path() + "/app1.tar.gz", app2 = tmp.path() + "/app2.tar.gz";
  std::string error;
  double build_s = 0;
  if (!BuildApps(o, tmp.path(), scratch_dir, app1, app2, &build_s, &error))
    return Fail(error, daemons);
  if (!WarmUp(o, bench, app1, tmp.path())) return Fail(bench.error(), daemons);
  std::printf("\n%d rounds, each on its own state dir and daemon; nothing is deleted "
              "until the end\n", o.rounds);
  std::vector<Round> rounds(static_cast<size_t>(o.rounds));
  if (!RunRounds(o, bench, daemons, app1, app2, &rounds, &error)) return Fail(error, daemons);
  // After the second releases (each created ~10,000 temporary files and
  // deleted them again), once more: shows what that costs later creators.
  TarResult late;
  if (!g_interrupted.load() && !bench.Tar(app1, tmp.path() + "/tar-late", &late))
    return Fail(bench.error(), daemons);
  StopDaemons(daemons);
  if (g_interrupted.load()) {
    std::printf("interrupted\n");
    return 0;
  }
  PrintTable(rounds, build_s);
  PrintBreakdown(o, rounds, late, run_start);
  return 0;
}

}  // namespace
}  // namespace relsupd::bench

int main(int argc, char** argv) { return relsupd::bench::Main(argc, argv); }
