// Fuzzes the tree object parser (LoadTrees), which reads a release's
// manifest back from the object store for verify, show and diff.
//
// A tree names its subtrees by sha256, which fuzz input cannot compute, so
// the input is up to 16 tree texts separated by lines "~~~", and a
// subtree hash written as the index of a later text in 64 hex digits
// (0000...0001) is replaced by that text's real hash. The first text is the
// root. A manifest that loads must build back into trees (BuildTrees) that
// load to the same manifest.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "daemon/base/sha256.h"
#include "daemon/store/tree.h"

namespace {

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "fuzz_tree: %s\n", what.c_str());
  std::abort();
}

std::string Placeholder(size_t index) {
  char buf[65];
  std::snprintf(buf, sizeof buf, "%064zx", index);
  return buf;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace relsupd;
  const std::string input(reinterpret_cast<const char*>(data), size);
  constexpr std::string_view kSep = "~~~\n";
  std::vector<std::string> texts;
  for (size_t at = 0; texts.size() < 16;) {
    size_t sep = input.find(kSep, at);
    if (sep == std::string::npos) {
      texts.push_back(input.substr(at));
      break;
    }
    texts.push_back(input.substr(at, sep - at));
    at = sep + kSep.size();
  }
  std::vector<std::string> hashes(texts.size());
  std::map<std::string, std::string> store;
  for (size_t i = texts.size(); i-- > 0;) {
    for (size_t j = i + 1; j < texts.size(); ++j) {
      const std::string ph = Placeholder(j);
      for (size_t p = texts[i].find(ph); p != std::string::npos;
           p = texts[i].find(ph, p + 64))
        texts[i].replace(p, 64, hashes[j]);
    }
    hashes[i] = Sha256Hex(texts[i]);
    store[hashes[i]] = texts[i];
  }
  auto read = [&store](const std::string& hash) -> Result<std::string> {
    auto it = store.find(hash);
    if (it == store.end()) return NotFound("no object " + hash);
    return it->second;
  };
  auto manifest = LoadTrees(hashes[0], read);
  if (!manifest.ok()) {
    if (manifest.status().code() != StatusCode::kCorruption)
      Fail("not a corruption error: " + manifest.status().message());
    return 0;
  }
  auto built = BuildTrees(*manifest);
  if (!built.ok()) Fail("a loaded manifest does not build: " + built.status().message());
  std::map<std::string, std::string> rebuilt;
  for (const TreeObject& t : built->trees) rebuilt[t.hash] = t.text;
  auto again = LoadTrees(built->root, [&rebuilt](const std::string& hash) -> Result<std::string> {
    auto it = rebuilt.find(hash);
    if (it == rebuilt.end()) return NotFound("no object " + hash);
    return it->second;
  });
  if (!again.ok()) Fail("built trees do not load: " + again.status().message());
  if (again->entries != manifest->entries) Fail("trees do not round-trip");
  return 0;
}
