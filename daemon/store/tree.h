#pragma once
// Tree objects: how a release's manifest is persisted, as a Merkle tree of
// per-directory listings (like git trees).
//
// Each directory of a slot becomes one tree: its entries (name, type, mode,
// and the size and content sha256 of a file, the tree hash of a
// subdirectory or the target of a symlink), serialised canonically. A
// tree's hash is the sha256 of that text, so the root hash names the whole
// content and two releases that share a subdirectory share its tree. Trees
// are stored once in the object store (objects/XX/HASH.tree) and
// hard-linked into each slot that uses them as .relsupd/trees/HASH, so the
// store's link-count garbage collection covers them like file bodies, and a
// slot can be read without the store. A release that changes one file adds
// only the trees on the path from that file to the root.
//
// The in-memory form stays the flat Manifest: BuildTrees turns one into
// trees, LoadTrees turns trees back into one. Value types; any thread.

#include <functional>
#include <string>
#include <vector>

#include "daemon/base/status.h"
#include "daemon/store/manifest.h"

namespace relsupd {

struct TreeObject {
  std::string hash;  // sha256 of text, 64 lower-case hex digits
  std::string text;  // canonical serialisation
};

struct TreeSet {
  std::string root;                // hash of the slot root's tree
  std::vector<TreeObject> trees;   // every distinct tree, root included
};

// REQUIRES: every entry's parent directory is an entry of kind kDir (the
// root excepted); unpacking adds the ones an archive leaves out.
Result<TreeSet> BuildTrees(const Manifest& manifest);

// Reads the tree with the given hash (its stored bytes, unchecked).
using TreeReader = std::function<Result<std::string>(const std::string& hash)>;

// Rebuilds the flat manifest from the root tree. Every tree read is checked
// against its hash: a changed or missing tree object is a kCorruption error
// naming the object and the directory it describes.
Result<Manifest> LoadTrees(const std::string& root, const TreeReader& read);

// True for 64 lower-case hex digits (a hash safe to use as a file name).
bool IsTreeHash(const std::string& text);

}  // namespace relsupd
