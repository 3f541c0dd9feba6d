#pragma once
// TempDir: a fresh directory /tmp/PREFIX-XXXXXX that the object owns and
// removes, with all its contents, when it goes away. Test thread only.

#include <string>
#include <string_view>

namespace relsupd::support {

class TempDir {
 public:
  // Mode 0755, so that another user (nobody) can reach a socket inside it.
  // Throws when it cannot be made. The prefix names the test in /tmp.
  explicit TempDir(std::string_view prefix = "relsupd-test");
  // Makes every directory below writable first (sealed slots, a build's
  // read-only directories), then removes the tree; a failure goes to
  // stderr.
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // path()/name.
  std::string Path(std::string_view name) const;
  std::string operator/(std::string_view name) const { return Path(name); }
  // Writes `content` to path()/name (replacing it); returns the full path.
  std::string WriteFile(std::string_view name, std::string_view content) const;

 private:
  std::string path_;
};

}  // namespace relsupd::support
