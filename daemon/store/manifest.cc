#include "daemon/store/manifest.h"

#include <nlohmann/json.hpp>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "daemon/base/fd.h"
#include "daemon/base/sha256.h"

namespace relsupd {
namespace {

const char* TypeCode(EntryType t) {
  switch (t) {
    case EntryType::kFile: return "f";
    case EntryType::kDir: return "d";
    case EntryType::kSymlink: return "l";
  }
  return "?";
}

Result<std::string> HashFile(const std::string& path) {
  ASSIGN_OR_RETURN(Fd fd, OpenFile(path, O_RDONLY | O_NOFOLLOW));
  Sha256 h;
  std::string buf(1 << 20, '\0');
  for (;;) {
    ssize_t n = ::read(fd.get(), buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno("cannot read '" + path + "'", errno);
    if (n == 0) break;
    h.Update(std::string_view(buf.data(), static_cast<size_t>(n)));
  }
  return h.HexDigest();
}

}  // namespace

std::string Manifest::Serialize() const {
  std::string out = "[\n";
  bool first = true;
  for (const auto& [path, e] : entries) {
    nlohmann::json row = {path, TypeCode(e.type), e.mode};
    if (e.type == EntryType::kFile) {
      row.push_back(e.size);
      row.push_back(e.sha256);
    } else if (e.type == EntryType::kSymlink) {
      row.push_back(e.target);
    }
    if (!first) out += ",\n";
    first = false;
    out += row.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  out += "\n]\n";
  return out;
}

Result<Manifest> Manifest::Parse(const std::string& text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_array()) return Corruption("manifest is not a JSON array");
  Manifest m;
  for (const auto& row : j) {
    if (!row.is_array() || row.size() < 3 || !row[0].is_string() ||
        !row[1].is_string() || !row[2].is_number_unsigned())
      return Corruption("manifest has a malformed entry");
    ManifestEntry e;
    const std::string type = row[1];
    e.mode = row[2];
    if (type == "f" && row.size() == 5 && row[3].is_number_unsigned() && row[4].is_string()) {
      e.type = EntryType::kFile;
      e.size = row[3];
      e.sha256 = row[4];
    } else if (type == "d" && row.size() == 3) {
      e.type = EntryType::kDir;
    } else if (type == "l" && row.size() == 4 && row[3].is_string()) {
      e.type = EntryType::kSymlink;
      e.target = row[3];
    } else {
      return Corruption("manifest entry '" + row[0].get<std::string>() + "' is malformed");
    }
    m.entries.emplace(row[0].get<std::string>(), std::move(e));
  }
  return m;
}

Result<Manifest> ScanSlot(const std::string& slot_dir) {
  namespace fs = std::filesystem;
  Manifest m;
  std::error_code ec;
  fs::recursive_directory_iterator it(slot_dir, fs::directory_options::none, ec), end;
  if (ec) return Status::FromErrno("cannot read slot '" + slot_dir + "'", ec.value());
  for (; it != end; it.increment(ec)) {
    if (ec) return Status::FromErrno("cannot walk slot '" + slot_dir + "'", ec.value());
    const std::string full = it->path().string();
    const std::string rel = full.substr(slot_dir.size() + 1);
    if (rel == ".relsupd") {
      it.disable_recursion_pending();
      continue;
    }
    struct stat st;
    if (::lstat(full.c_str(), &st) != 0)
      return Status::FromErrno("cannot stat '" + full + "'", errno);
    ManifestEntry e;
    e.mode = st.st_mode & 07777;
    if (S_ISREG(st.st_mode)) {
      e.type = EntryType::kFile;
      e.size = static_cast<uint64_t>(st.st_size);
      ASSIGN_OR_RETURN(e.sha256, HashFile(full));
    } else if (S_ISDIR(st.st_mode)) {
      e.type = EntryType::kDir;
    } else if (S_ISLNK(st.st_mode)) {
      e.type = EntryType::kSymlink;
      e.mode = 0777;
      e.target = fs::read_symlink(it->path(), ec).string();
      it.disable_recursion_pending();
    } else {
      e.type = EntryType::kFile;
      e.sha256 = "not-a-regular-file";
    }
    m.entries.emplace(rel, std::move(e));
  }
  return m;
}

ManifestDiff DiffManifests(const Manifest& from, const Manifest& to) {
  ManifestDiff d;
  for (const auto& [path, e] : from.entries) {
    auto it = to.entries.find(path);
    if (it == to.entries.end())
      d.removed.push_back(path);
    else if (!(it->second == e))
      d.changed.push_back(path);
  }
  for (const auto& [path, e] : to.entries)
    if (!from.entries.count(path)) d.added.push_back(path);
  return d;
}

}  // namespace relsupd
