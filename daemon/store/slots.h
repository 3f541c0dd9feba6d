#pragma once
// Release slots: STATE/apps/APP/releases/vN, sealed read-only.
//
// BuildSlot unpacks an artifact into a staging directory under STATE/tmp,
// linking file bodies from the object store, checks the process file
// (and that no ready check aims at one of the app's daemon-held sockets),
// stores the slot's manifest as tree objects (daemon/store/tree.h) linked
// into .relsupd/trees/, writes the release's metadata under .relsupd/
// (env.json readable by the owner only, release.json naming the root
// tree), syncs, seals the tree read-only and renames it into place. A crash at any point leaves either
// no slot or a complete one: staging leftovers are removed by CleanStaging
// at start-up, and a slot that reached releases/ without its ledger row is
// removed by the caller's recovery. Safe to run off the loop thread: it
// touches only the file system.

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "daemon/base/status.h"
#include "daemon/config/app_spec.h"
#include "daemon/store/limits.h"
#include "daemon/store/manifest.h"

namespace relsupd {

struct SlotRequest {
  std::string state_dir;
  std::string app;
  int64_t number = 0;          // N of vN
  std::string artifact_path;   // the stored build
  std::string build_sha256;
  nlohmann::json env;          // config: an object of strings
  nlohmann::json metadata;     // written as release.json (digest added)
  StoreLimits limits;
  // The app's daemon-held sockets: a ready check aimed at one is refused.
  std::vector<SocketSpec> sockets;
};

struct SlotResult {
  std::string digest;   // sha256 over the root tree, config and build
  std::string tree;     // the root tree's hash
  uint64_t files = 0;
  uint64_t bytes = 0;
};

std::string SlotPath(const std::string& state_dir, const std::string& app,
                     int64_t number);
// The digest that names a release's content: the root tree's hash names
// every path, mode and body of the slot.
std::string ReleaseDigest(const std::string& root_tree,
                          const nlohmann::json& env,
                          const std::string& build_sha256);

Result<SlotResult> BuildSlot(const SlotRequest& request);

// The root tree hash recorded in a slot's release.json. A slot made before
// tree objects (with .relsupd/manifest.json) is a kFailedPrecondition
// error that says so.
Result<std::string> ReadSlotTree(const std::string& slot_dir);
// Reads a slot's stored manifest (from its trees, each checked against its
// hash) and config.
Result<Manifest> ReadSlotManifest(const std::string& slot_dir);
Result<nlohmann::json> ReadSlotEnv(const std::string& slot_dir);

struct VerifyResult {
  ManifestDiff diff;         // stored manifest -> what is on disk
  bool digest_ok = true;     // the stored trees and config still have the digest
  // What made the stored manifest unreadable (a changed or missing tree
  // object): then digest_ok is false and there is no diff.
  std::vector<std::string> problems;
  bool ok() const { return diff.empty() && digest_ok && problems.empty(); }
};
// Recomputes a slot's manifest and compares it with the stored one and
// the digest recorded in the ledger. A changed, missing or malformed tree
// object is reported in `problems`, not as an error.
Result<VerifyResult> VerifySlot(const std::string& slot_dir,
                                const std::string& digest,
                                const std::string& build_sha256);

// Empties STATE/tmp (staging leftovers of a crash).
Status CleanStaging(const std::string& state_dir);

}  // namespace relsupd
