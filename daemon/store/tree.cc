#include "daemon/store/tree.h"

#include <cstdio>
#include <map>
#include <set>
#include <string_view>

#include "daemon/base/sha256.h"

namespace relsupd {
namespace {

// The first line of every tree: a format change gets a new one, so old
// trees are never misread.
constexpr std::string_view kHeader = "relsupd-tree 1\n";
// A tree read back may not make the manifest grow without bound: a forged
// tree can name one subtree many times. Far above max_entries.
constexpr size_t kMaxLoadedEntries = size_t{1} << 22;
constexpr int kMaxDepth = 1024;

// Names and targets are length-prefixed ("5:hello"): an archive's names
// may hold any byte but '/' and NUL, newlines and invalid UTF-8 included,
// and must come back exactly.
void AppendCounted(std::string* out, std::string_view s) {
  *out += std::to_string(s.size());
  *out += ':';
  *out += s;
}

std::string ModeText(uint32_t mode) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04o", mode & 07777);
  return buf;
}

// One entry of a directory; the views point into the manifest's keys.
struct Child {
  std::string_view name;
  std::string_view path;
  const ManifestEntry* e;
};

// Canonical text of one directory: entries sorted by name (the order of
// the map they come from: siblings share their path up to the name).
std::string SerializeDir(const std::vector<Child>& children,
                         const std::map<std::string_view, std::string>& child_hashes) {
  std::string out(kHeader);
  for (const Child& c : children) {
    const ManifestEntry& e = *c.e;
    switch (e.type) {
      case EntryType::kFile:
        out += "f " + ModeText(e.mode) + " " + std::to_string(e.size) + " " + e.sha256 + " ";
        break;
      case EntryType::kDir:
        out += "d " + ModeText(e.mode) + " " + child_hashes.at(c.name) + " ";
        break;
      case EntryType::kSymlink:
        out += "l " + ModeText(e.mode) + " ";
        AppendCounted(&out, e.target);
        out += ' ';
        break;
    }
    AppendCounted(&out, c.name);
    out += '\n';
  }
  return out;
}

class Builder {
 public:
  explicit Builder(const Manifest& m) {
    for (const auto& [path, e] : m.entries) {
      const size_t slash = path.rfind('/');
      std::string_view p(path);
      std::string_view parent = slash == std::string::npos ? std::string_view() : p.substr(0, slash);
      std::string_view name = slash == std::string::npos ? p : p.substr(slash + 1);
      children_[parent].push_back(Child{name, p, &e});
      if (!parent.empty()) {
        auto it = m.entries.find(std::string(parent));
        if (it == m.entries.end() || it->second.type != EntryType::kDir)
          missing_parent_ = path;
      }
    }
  }

  Result<TreeSet> Build() {
    if (!missing_parent_.empty())
      return Internal("manifest entry '" + missing_parent_ + "' has no parent directory entry");
    TreeSet set;
    set.root = Hash("", &set);
    return set;
  }

 private:
  // Post-order: a directory's hash needs its subdirectories' hashes.
  // Recursion depth is bounded by max_path_bytes.
  std::string Hash(std::string_view dir, TreeSet* set) {
    static const std::vector<Child> kEmpty;
    auto it = children_.find(dir);
    const auto& children = it == children_.end() ? kEmpty : it->second;
    std::map<std::string_view, std::string> child_hashes;
    for (const Child& c : children)
      if (c.e->type == EntryType::kDir) child_hashes[c.name] = Hash(c.path, set);
    TreeObject t;
    t.text = SerializeDir(children, child_hashes);
    t.hash = Sha256Hex(t.text);
    std::string hash = t.hash;
    if (seen_.insert(hash).second) set->trees.push_back(std::move(t));
    return hash;
  }

  std::map<std::string_view, std::vector<Child>> children_;  // by parent path
  std::set<std::string> seen_;
  std::string missing_parent_;
};

class Parser {
 public:
  explicit Parser(std::string_view text) : s_(text) {}

  bool Literal(std::string_view lit) {
    if (s_.substr(0, lit.size()) != lit) return false;
    s_.remove_prefix(lit.size());
    return true;
  }
  bool Number(uint64_t* out, int base = 10, size_t max_digits = 20) {
    size_t n = 0;
    uint64_t v = 0;
    while (n < s_.size() && n < max_digits) {
      const char c = s_[n];
      const int d = c >= '0' && c <= '9' ? c - '0' : -1;
      if (d < 0 || d >= base) break;
      if (v > (UINT64_MAX - static_cast<uint64_t>(d)) / static_cast<uint64_t>(base)) return false;
      v = v * static_cast<uint64_t>(base) + static_cast<uint64_t>(d);
      ++n;
    }
    if (n == 0) return false;
    s_.remove_prefix(n);
    *out = v;
    return true;
  }
  bool Counted(std::string* out) {
    uint64_t len;
    if (!Number(&len) || !Literal(":") || len > s_.size()) return false;
    out->assign(s_.substr(0, len));
    s_.remove_prefix(len);
    return true;
  }
  bool Hash(std::string* out) {
    if (s_.size() < 64) return false;
    out->assign(s_.substr(0, 64));
    s_.remove_prefix(64);
    return IsTreeHash(*out);
  }
  bool done() const { return s_.empty(); }

 private:
  std::string_view s_;
};

struct Loader {
  const TreeReader& read;
  Manifest out;

  Status Load(const std::string& hash, const std::string& dir, int depth) {
    const std::string shown = dir.empty() ? "the slot root" : "directory '" + dir + "'";
    if (depth > kMaxDepth)
      return Corruption("tree object " + hash + " (" + shown + ") is nested too deeply");
    if (!IsTreeHash(hash))
      return Corruption("tree of " + shown + " has a malformed hash '" + hash + "'");
    auto text = read(hash);
    if (!text.ok())
      return Status(StatusCode::kCorruption,
                    "tree object " + hash + " (" + shown + ") cannot be read: " +
                        text.status().message(),
                    text.status().error_number());
    if (Sha256Hex(*text) != hash)
      return Corruption("tree object " + hash + " (" + shown +
                        ") does not match its hash: it was changed after the release was made");
    auto bad = [&](const std::string& what) {
      return Corruption("tree object " + hash + " (" + shown + ") is malformed: " + what);
    };
    Parser p(*text);
    if (!p.Literal(kHeader)) return bad("unknown format");
    std::string last;
    bool first = true;
    while (!p.done()) {
      ManifestEntry e;
      std::string child, name;
      uint64_t mode = 0;
      if (p.Literal("f ")) {
        e.type = EntryType::kFile;
        if (!p.Number(&mode, 8, 4) || !p.Literal(" ") || !p.Number(&e.size) ||
            !p.Literal(" ") || !p.Hash(&e.sha256) || !p.Literal(" "))
          return bad("a file entry");
      } else if (p.Literal("d ")) {
        e.type = EntryType::kDir;
        if (!p.Number(&mode, 8, 4) || !p.Literal(" ") || !p.Hash(&child) || !p.Literal(" "))
          return bad("a directory entry");
      } else if (p.Literal("l ")) {
        e.type = EntryType::kSymlink;
        if (!p.Number(&mode, 8, 4) || !p.Literal(" ") || !p.Counted(&e.target) ||
            e.target.empty() || e.target.find('\0') != std::string::npos || !p.Literal(" "))
          return bad("a symlink entry");
      } else {
        return bad("an entry of unknown type");
      }
      if (!p.Counted(&name) || !p.Literal("\n")) return bad("an entry's name");
      // A name must stay one component: it is joined into a path.
      if (name.empty() || name == "." || name == ".." ||
          name.find_first_of(std::string_view("/\0", 2)) != std::string::npos)
        return bad("the name '" + name + "'");
      if (!first && !(last < name)) return bad("entries out of order at '" + name + "'");
      first = false;
      last = name;
      e.mode = static_cast<uint32_t>(mode);
      const std::string path = dir.empty() ? name : dir + "/" + name;
      if (out.entries.size() >= kMaxLoadedEntries)
        return Corruption("the trees of the slot hold more than " +
                          std::to_string(kMaxLoadedEntries) + " entries");
      out.entries.emplace(path, std::move(e));
      if (!child.empty()) RETURN_IF_ERROR(Load(child, path, depth + 1));
    }
    return Status::Ok();
  }
};

}  // namespace

bool IsTreeHash(const std::string& text) {
  if (text.size() != 64) return false;
  for (char c : text)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

Result<TreeSet> BuildTrees(const Manifest& manifest) { return Builder(manifest).Build(); }

Result<Manifest> LoadTrees(const std::string& root, const TreeReader& read) {
  Loader loader{read, {}};
  RETURN_IF_ERROR(loader.Load(root, "", 0));
  return std::move(loader.out);
}

}  // namespace relsupd
