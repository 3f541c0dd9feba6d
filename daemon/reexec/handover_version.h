#pragma once
// The handover's format versions (docs/reexec.md §2.3), apart from the
// record so that the probe can report them without the codec.
//
// kHandoverVersion is what this binary writes; it reads every version from
// kOldestReadableHandover up to it. Bump kHandoverVersion when a key
// changes meaning or a new key must not be ignored, and add an upgrade
// step in handover_upgrade.cc.

namespace relsupd {

inline constexpr int kHandoverVersion = 1;
inline constexpr int kOldestReadableHandover = 1;
// The oldest reader that reads what this binary writes correctly: raised
// only when a change must not be ignored by an older reader.
inline constexpr int kHandoverMinReader = 1;

}  // namespace relsupd
