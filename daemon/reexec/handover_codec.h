#pragma once
// The handover record's payload in CBOR (docs/reexec.md §2.2): the only
// code that knows the encoding. nlohmann's to_cbor/from_cbor underneath.
//
// Rules of the encoding, version 1:
//  - a CBOR map per struct, keyed by field name; a reader ignores keys it
//    does not know, and a missing key decodes to the field's default (so a
//    newer reader reads an older record);
//  - enums as names ("ready", "on-failure"), never numbers;
//  - partial output lines as CBOR byte strings (any bytes round-trip);
//  - at most kMaxHandoverBytes in all, nested at most kMaxHandoverDepth.
//
// Decoding never throws and never crashes on any input: a record that
// cannot be read gives kCorruption naming the field. Pure; any thread.

#include <cstddef>
#include <string>
#include <string_view>

#include "daemon/base/status.h"
#include "daemon/reexec/handover.h"

namespace relsupd {

// Past this the re-exec is refused (about 300 KB for 1,000 instances; the
// worst case of partial lines is 32 KiB per instance).
inline constexpr size_t kMaxHandoverBytes = size_t{256} << 20;
// The record itself nests about 12 deep; this bounds a hostile one.
inline constexpr int kMaxHandoverDepth = 32;
// A partial line is what a LineSplitter holds: at most max_line + 1 bytes
// (OutputCapture's max_line is 16 KiB).
inline constexpr size_t kMaxPartialLineBytes = 16 * 1024 + 1;

// The CBOR payload of `record` (format kHandoverVersion).
// kFailedPrecondition when it would pass `max_bytes` (a parameter for
// tests only).
Result<std::string> EncodeHandover(const HandoverRecord& record,
                                   size_t max_bytes = kMaxHandoverBytes);

// Reads a payload written in format `format_version` (which the caller
// has checked with CheckHandoverVersions), then upgrades it to the
// current format. The result's format_version is the one read.
Result<HandoverRecord> DecodeHandover(std::string_view payload, int format_version);

// Whether this binary reads a record of `format_version` that needs a
// reader of at least `min_reader_version` (handover_upgrade.cc).
// kFailedPrecondition naming both ranges otherwise.
Status CheckHandoverVersions(int format_version, int min_reader_version);

// The steps from `record->format_version` up to kHandoverVersion
// (handover_upgrade.cc). Never edited once released, like the ledger's
// migrations.
Status UpgradeHandover(HandoverRecord* record);

}  // namespace relsupd
