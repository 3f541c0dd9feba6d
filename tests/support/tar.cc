#include "tests/support/tar.h"

#include <archive.h>
#include <archive_entry.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <functional>

#include "tests/support/failure.h"

namespace relsupd::support {
namespace {

// One entry's header and data.
void WriteEntry(struct archive* a, const Entry& e, const std::string& zeros,
                const std::function<void(int, const std::string&)>& check) {
  struct archive_entry* ae = archive_entry_new();
  archive_entry_set_pathname(ae, e.path.c_str());
  archive_entry_set_mtime(ae, 1'700'000'000, 0);
  archive_entry_set_filetype(ae, e.type);
  archive_entry_set_perm(ae, e.perm);
  const bool has_data = e.type == AE_IFREG && e.hardlink.empty();
  archive_entry_set_size(
      ae, has_data ? static_cast<la_int64_t>(e.zeros ? e.zeros : e.body.size())
                   : 0);
  if (e.type == AE_IFLNK) archive_entry_set_symlink(ae, e.symlink.c_str());
  if (e.type == AE_IFCHR || e.type == AE_IFBLK)
    archive_entry_set_rdev(ae, makedev(1, 3));
  if (!e.hardlink.empty()) archive_entry_set_hardlink(ae, e.hardlink.c_str());
  for (const auto& [offset, data] : e.sparse)
    archive_entry_sparse_add_entry(ae, static_cast<la_int64_t>(offset),
                                   static_cast<la_int64_t>(data.size()));
  int rc = archive_write_header(a, ae);
  archive_entry_free(ae);
  check(rc, "header of '" + e.path + "'");
  if (!has_data) return;
  auto write = [&](const char* data, size_t n) {
    if (archive_write_data(a, data, n) != static_cast<la_ssize_t>(n))
      check(ARCHIVE_FATAL, "data of '" + e.path + "'");
  };
  if (!e.sparse.empty()) {
    // The writer takes the whole content and stores only the regions.
    std::string body(e.zeros, '\0');
    for (const auto& [offset, data] : e.sparse)
      body.replace(offset, data.size(), data);
    write(body.data(), body.size());
  } else if (e.zeros) {
    for (uint64_t left = e.zeros; left > 0;) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(left, zeros.size()));
      write(zeros.data(), n);
      left -= n;
    }
  } else if (!e.body.empty()) {
    write(e.body.data(), e.body.size());
  }
}

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

Entry Special(std::string path, unsigned type) {
  Entry e;
  e.path = std::move(path);
  e.type = type;
  return e;
}

Entry Fifo(std::string path) { return Special(std::move(path), AE_IFIFO); }

Entry CharDevice(std::string path) {
  return Special(std::move(path), AE_IFCHR);
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
    case Filter::kNone:
      check(archive_write_add_filter_none(a), "filter");
      break;
    case Filter::kGzip:
      check(archive_write_add_filter_gzip(a), "filter");
      break;
    case Filter::kZstd:
      check(archive_write_add_filter_zstd(a), "filter");
      break;
  }
  check(archive_write_open_filename(a, file.c_str()), "open");
  const std::string zeros(1 << 20, '\0');
  for (const Entry& e : entries) WriteEntry(a, e, zeros, check);
  check(archive_write_close(a), "close");
  archive_write_free(a);
}

}  // namespace relsupd::support
