#include "tests/release/release_fixture.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace relsupd::release_test {
namespace {

namespace fs = std::filesystem;

[[noreturn]] void Fail(const std::string& what) { throw std::runtime_error(what); }

}  // namespace

Entry File(std::string path, std::string body, unsigned perm) {
  Entry e;
  e.path = std::move(path);
  e.body = std::move(body);
  e.perm = perm;
  return e;
}

Entry Zeros(std::string path, uint64_t bytes) {
  Entry e;
  e.path = std::move(path);
  e.zeros = bytes;
  return e;
}

Entry Dir(std::string path, unsigned perm) {
  Entry e;
  e.path = std::move(path);
  e.type = AE_IFDIR;
  e.perm = perm;
  return e;
}

Entry Symlink(std::string path, std::string target) {
  Entry e;
  e.path = std::move(path);
  e.type = AE_IFLNK;
  e.perm = 0777;
  e.symlink = std::move(target);
  return e;
}

Entry HardLink(std::string path, std::string to) {
  Entry e;
  e.path = std::move(path);
  e.hardlink = std::move(to);
  return e;
}

Entry Fifo(std::string path) {
  Entry e;
  e.path = std::move(path);
  e.type = AE_IFIFO;
  return e;
}

Entry CharDevice(std::string path) {
  Entry e;
  e.path = std::move(path);
  e.type = AE_IFCHR;
  return e;
}

Entry Procfile() { return File("Procfile", "web: ./bin/web\n"); }

std::string Noise(size_t bytes, uint32_t seed) {
  std::string out;
  out.reserve(bytes);
  uint32_t x = seed;
  for (size_t i = 0; i < bytes; ++i) {
    x = x * 1103515245u + 12345u;
    out.push_back(static_cast<char>(x >> 24));
  }
  return out;
}

void WriteArchive(const std::string& file, const std::vector<Entry>& entries,
                  Filter filter) {
  struct archive* a = archive_write_new();
  if (a == nullptr) Fail("archive_write_new failed");
  auto check = [&](int rc, const std::string& what) {
    if (rc < ARCHIVE_WARN) {
      std::string err = archive_error_string(a) ? archive_error_string(a) : "?";
      archive_write_free(a);
      Fail("writing " + file + ": " + what + ": " + err);
    }
  };
  check(archive_write_set_format_pax_restricted(a), "format");
  switch (filter) {
    case Filter::kNone: check(archive_write_add_filter_none(a), "filter"); break;
    case Filter::kGzip: check(archive_write_add_filter_gzip(a), "filter"); break;
    case Filter::kZstd: check(archive_write_add_filter_zstd(a), "filter"); break;
  }
  check(archive_write_open_filename(a, file.c_str()), "open");
  const std::string zeros(1 << 20, '\0');
  for (const Entry& e : entries) {
    struct archive_entry* ae = archive_entry_new();
    archive_entry_set_pathname(ae, e.path.c_str());
    archive_entry_set_mtime(ae, 1'700'000'000, 0);
    archive_entry_set_filetype(ae, e.type);
    archive_entry_set_perm(ae, e.perm);
    const bool has_data = e.type == AE_IFREG && e.hardlink.empty();
    archive_entry_set_size(
        ae, has_data ? static_cast<la_int64_t>(e.zeros ? e.zeros : e.body.size()) : 0);
    if (e.type == AE_IFLNK) archive_entry_set_symlink(ae, e.symlink.c_str());
    if (e.type == AE_IFCHR) archive_entry_set_rdev(ae, makedev(1, 3));
    if (!e.hardlink.empty()) archive_entry_set_hardlink(ae, e.hardlink.c_str());
    int rc = archive_write_header(a, ae);
    archive_entry_free(ae);
    check(rc, "header of '" + e.path + "'");
    if (!has_data) continue;
    if (e.zeros) {
      for (uint64_t left = e.zeros; left > 0;) {
        size_t n = static_cast<size_t>(std::min<uint64_t>(left, zeros.size()));
        if (archive_write_data(a, zeros.data(), n) != static_cast<la_ssize_t>(n))
          check(ARCHIVE_FATAL, "data of '" + e.path + "'");
        left -= n;
      }
    } else if (!e.body.empty() &&
               archive_write_data(a, e.body.data(), e.body.size()) !=
                   static_cast<la_ssize_t>(e.body.size())) {
      check(ARCHIVE_FATAL, "data of '" + e.path + "'");
    }
  }
  check(archive_write_close(a), "close");
  archive_write_free(a);
}

std::vector<std::string> ListDir(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

int OrphanObjects(const std::string& objects_dir) {
  int n = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(objects_dir, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    struct stat st;
    if (::lstat(it->path().c_str(), &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 1)
      ++n;
  }
  return n;
}

struct stat Lstat(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0)
    Fail("lstat " + path + ": " + std::strerror(errno));
  return st;
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) Fail("cannot read " + path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void ReplaceFile(const std::string& path, const std::string& content) {
  const std::string parent = fs::path(path).parent_path().string();
  ::chmod(parent.c_str(), 0755);  // u+w on a sealed directory
  if (::unlink(path.c_str()) != 0 && errno != ENOENT)
    Fail("unlink " + path + ": " + std::strerror(errno));
  std::ofstream out(path, std::ios::binary);
  out << content;
  if (!out) Fail("cannot write " + path);
}

void RemoveFile(const std::string& path) {
  const std::string parent = fs::path(path).parent_path().string();
  ::chmod(parent.c_str(), 0755);
  if (::unlink(path.c_str()) != 0) Fail("unlink " + path + ": " + std::strerror(errno));
}

// --- Stage ---

Stage::Stage(std::string config, std::vector<std::string> env, std::string app,
             std::vector<std::string> app_args)
    : app_(std::move(app)) {
  if (!config.empty()) config_path_ = dir_.WriteFile("relsupd.yaml", config);
  Restart(std::move(env));
  if (app_.empty()) return;
  std::vector<std::string> create = {"app", "create", app_};
  create.insert(create.end(), app_args.begin(), app_args.end());
  CtlOk(create);
}

Stage::~Stage() {
  daemon_.reset();
  // Sealed slots have read-only directories: TempDir's remove_all needs
  // them writable when the tests do not run as root.
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir_.path(), ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_directory(ec) && !it->is_symlink(ec)) ::chmod(it->path().c_str(), 0700);
  }
}

std::string Stage::Slot(int64_t n) const {
  return state() + "/apps/" + app_ + "/releases/v" + std::to_string(n);
}

std::string Stage::BuildsDir() const { return state() + "/apps/" + app_ + "/builds"; }

void Stage::Restart(std::vector<std::string> env, std::vector<std::string> wrap) {
  if (daemon_ && daemon_->running()) Fail("Restart: the daemon is still running");
  daemon_.reset();
  e2e::DaemonOptions options;
  options.config = config_path_;
  options.env = std::move(env);
  options.wrap = std::move(wrap);
  daemon_ = std::make_unique<e2e::DaemonProcess>(dir_, options);
}

void Stage::Stop() {
  e2e::ExitStatus st = daemon_->Terminate();
  if (!st.Exited(0)) Fail("daemon did not stop cleanly: " + st.ToString() + "\n" + daemon_->Log());
}

e2e::ProcResult Stage::Ctl(const std::vector<std::string>& args,
                           const e2e::RunOptions& options) {
  return e2e::RunCtl(socket(), args, options);
}

std::string Stage::CtlOk(const std::vector<std::string>& args) {
  return e2e::CtlOk(socket(), args);
}

Json Stage::CtlJson(const std::vector<std::string>& args) {
  return e2e::CtlJson(socket(), args);
}

std::string Stage::Artifact(const std::string& name, const std::vector<Entry>& entries,
                            Filter filter) {
  const std::string path = dir_.Path(name);
  WriteArchive(path, entries, filter);
  ++artifacts_;
  return path;
}

Json Stage::Import(const std::string& file) {
  return CtlJson({"build", "import", app_, file});
}

std::string Stage::Create(const std::string& build_id, const std::vector<std::string>& args) {
  std::vector<std::string> all = {"release", "create", app_, "--build", build_id};
  all.insert(all.end(), args.begin(), args.end());
  std::string out = CtlOk(all);
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

Json Stage::Releases() { return CtlJson({"releases", app_}); }

int64_t LedgerReleaseRows(const std::string& ledger_path, const std::string& app) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(ledger_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    sqlite3_close(db);
    Fail("cannot open " + ledger_path);
  }
  sqlite3_busy_timeout(db, 5'000);
  sqlite3_stmt* st = nullptr;
  int64_t n = -1;
  if (sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM releases WHERE app=?", -1, &st, nullptr) ==
      SQLITE_OK) {
    sqlite3_bind_text(st, 1, app.c_str(), -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) == SQLITE_ROW) n = sqlite3_column_int64(st, 0);
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  if (n < 0) Fail("cannot count releases in " + ledger_path);
  return n;
}

}  // namespace relsupd::release_test
