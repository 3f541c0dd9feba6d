#include "tests/support/temp_dir.h"

#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "tests/support/failure.h"
#include "tests/support/fs.h"

namespace relsupd::support {

namespace fs = std::filesystem;

TempDir::TempDir(std::string_view prefix) {
  std::string tmpl = "/tmp/" + std::string(prefix) + "-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) FailErrno("mkdtemp " + tmpl);
  path_ = tmpl;
  if (::chmod(path_.c_str(), 0755) != 0) FailErrno("chmod " + path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(path_, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_directory(ec) && !it->is_symlink(ec))
      ::chmod(it->path().c_str(), 0700);
  }
  ec.clear();
  fs::remove_all(path_, ec);
  if (ec)
    std::cerr << "TempDir: cannot remove " << path_ << ": " << ec.message()
              << '\n';
}

std::string TempDir::Path(std::string_view name) const {
  return path_ + "/" + std::string(name);
}

std::string TempDir::WriteFile(std::string_view name,
                               std::string_view content) const {
  std::string p = Path(name);
  WriteText(p, content);
  return p;
}

}  // namespace relsupd::support
