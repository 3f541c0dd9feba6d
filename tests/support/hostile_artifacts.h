#pragma once
// The hostile entries every layer that unpacks an artifact must refuse,
// as one table: the store's reader and BuildSlot
// (tests/unit/test_store.cc) and `ctl build import` with the real binary
// (tests/release/test_import.cc) both run it, so a case added here is
// checked at each layer. Header only, no Catch2; test thread only.

#include <archive_entry.h>

#include <string>
#include <vector>

#include "tests/support/tar.h"

namespace relsupd::support {

// An archive that must be refused, and what the refusal must name.
struct HostileArtifact {
  std::string name;
  std::vector<Entry> entries;
  std::vector<std::string> message_has;
};

// Paths that leave the tree, links, device nodes, a fifo, the reserved
// .relsupd and a path given twice, each beside a good Procfile.
inline std::vector<HostileArtifact> HostileArtifacts() {
  std::vector<HostileArtifact> rows = {
      {"a '../' path", {File("../x", "evil")}, {"'../x'", "leaves the slot"}},
      {"'..' deeper in a path",
       {Dir("a"), File("a/../../x", "evil")},
       {"'a/../../x'", "leaves the slot"}},
      {"an absolute path", {File("/etc/x", "evil")}, {"'/etc/x'", "absolute"}},
      {"a hard link",
       {File("a", "body"), HardLink("b", "a")},
       {"'b'", "hard link"}},
      {"a hard link to a file outside",
       {HardLink("passwd", "/etc/passwd")},
       {"'passwd'", "hard link"}},
      {"a character device",
       {Special("dev/null", AE_IFCHR)},
       {"'dev/null'", "device node"}},
      {"a block device", {Special("sda", AE_IFBLK)}, {"'sda'", "device node"}},
      {"a fifo", {Special("pipe", AE_IFIFO)}, {"'pipe'", "fifo"}},
      {"a symlink to an absolute path",
       {Symlink("etc", "/etc")},
       {"'etc'", "relative target"}},
      {"a symlink that climbs out",
       {Dir("a"), Symlink("a/up", "../../etc")},
       {"'a/up'", "leaves the slot"}},
      {"the reserved .relsupd",
       {File(".relsupd/env.json", "{}")},
       {"'.relsupd/env.json'", "reserved"}},
      {"an entry twice",
       {File("a", "1"), File("./a", "2")},
       {"'./a'", "twice"}},
  };
  for (HostileArtifact& row : rows)
    row.entries.insert(row.entries.begin(), Procfile());
  return rows;
}

}  // namespace relsupd::support
