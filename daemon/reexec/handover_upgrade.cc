// Reading an older handover record (docs/reexec.md §2.3): the version
// range this binary reads, and the upgrade steps from each older format to
// the next. A step, once released, is never edited: a record written by
// that release must keep reading the same.
#include <string>

#include "daemon/reexec/handover_codec.h"

namespace relsupd {
namespace {

using Step = Status (*)(HandoverRecord*);

// kSteps[i] upgrades a record of format kOldestReadableHandover + i to the
// next one. Empty while there is only version 1. Version 2 adds e.g.
//   Status UpgradeV1ToV2(HandoverRecord* r) { ...; return Status::Ok(); }
// here and its entry below.
constexpr Step kSteps[] = {nullptr};
static_assert(std::size(kSteps) == kHandoverVersion - kOldestReadableHandover + 1,
              "one step per version after the oldest readable (the last entry is a "
              "placeholder)");

std::string Range() {
  return std::to_string(kOldestReadableHandover) + "-" + std::to_string(kHandoverVersion);
}

}  // namespace

Status CheckHandoverVersions(int format_version, int min_reader_version) {
  if (format_version < kOldestReadableHandover)
    return FailedPrecondition("handover version " + std::to_string(format_version) +
                              " is older than this relsupd reads (versions " + Range() + ")");
  if (min_reader_version > kHandoverVersion)
    return FailedPrecondition("handover version " + std::to_string(format_version) +
                              " needs a reader of version " +
                              std::to_string(min_reader_version) +
                              " or later; this relsupd reads versions " + Range());
  if (min_reader_version > format_version)
    return FailedPrecondition("handover version " + std::to_string(format_version) +
                              " claims to need a reader of version " +
                              std::to_string(min_reader_version) + ", newer than itself");
  return Status::Ok();
}

Status UpgradeHandover(HandoverRecord* record) {
  // A record newer than this binary (but readable: additive changes only)
  // needs no step; its unknown keys were ignored.
  for (int v = record->format_version; v < kHandoverVersion; ++v) {
    Step step = kSteps[v - kOldestReadableHandover];
    if (step == nullptr) return Internal("no upgrade step from handover version " +
                                         std::to_string(v));
    RETURN_IF_ERROR(step(record));
  }
  return Status::Ok();
}

}  // namespace relsupd
