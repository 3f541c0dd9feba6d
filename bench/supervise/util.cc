// File helpers of the supervise benchmark (see util.h).

#include "bench/supervise/util.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace relsupd::bench::supervise {

namespace fs = std::filesystem;

bool WriteFile(const std::string& path, const std::string& text, mode_t mode) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  out.close();
  return out.good() && chmod(path.c_str(), mode) == 0;
}

// The regular files in `dir` whose name `match` accepts, sorted by name.
std::vector<std::string> FilesIn(
    const std::string& dir,
    const std::function<bool(const std::string&)>& match) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.is_regular_file(ec) && match(e.path().filename().string()))
      out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

// Rotated generations "BASE.N" ... "BASE.1" (oldest first), then "BASE":
// the order their lines were written in.
std::vector<std::string> OldestFirst(std::vector<std::string> files) {
  auto generation = [](const std::string& path) {
    const std::string name = fs::path(path).filename().string();
    const size_t dot = name.rfind('.');
    const std::string suffix =
        dot == std::string::npos ? "" : name.substr(dot + 1);
    if (suffix.empty() ||
        suffix.find_first_not_of("0123456789") != std::string::npos)
      return 0;
    return std::atoi(suffix.c_str());
  };
  std::stable_sort(files.begin(), files.end(),
                   [&](const std::string& a, const std::string& b) {
                     return generation(a) > generation(b);
                   });
  return files;
}

std::string FindOnPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::stringstream ss(path ? path
                            : "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin");
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    std::string p = dir + "/" + name;
    if (access(p.c_str(), X_OK) == 0) return p;
  }
  return "";
}

}  // namespace relsupd::bench::supervise
