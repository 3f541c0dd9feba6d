#pragma once
// The handover in its memfd (docs/reexec.md §2.1, §2.2): a fixed 96-byte
// header, the core table, the CBOR payload; sealed so that neither image
// can change it.
//
//   0   8  magic "RSUPDHO\0"
//   8   4  header_size (96)             all integers little-endian
//   12  4  format_version               (kHandoverVersion of the writer)
//   16  4  min_reader_version
//   20  4  core_count                   (entries of kCoreEntryBytes)
//   24  8  payload_size
//   32 32  SHA-256 of the core table
//   64 32  SHA-256 of the payload
//   96 ..  core table, then payload
//
// FrameHandover/UnframeHandover/ParseHandover are pure (any thread); the
// memfd functions do syscalls (loop thread).

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "daemon/base/fd.h"
#include "daemon/base/status.h"
#include "daemon/reexec/handover.h"

namespace relsupd {

inline constexpr size_t kHandoverHeaderBytes = 96;
// One entry of the core table (§5.4; its reader comes with the fresh-state
// path). Version 1 writes none.
inline constexpr size_t kCoreEntryBytes = 256;

// The parts of a handover image.
struct HandoverImage {
  uint32_t format_version = 0;
  uint32_t min_reader_version = 0;
  uint32_t core_count = 0;
  std::string core_table;  // core_count x kCoreEntryBytes
  std::string payload;     // CBOR (handover_codec.h)
};

// The bytes of the memfd. REQUIRES: core_table.size() == core_count x
// kCoreEntryBytes.
std::string FrameHandover(const HandoverImage& image);

// Checks magic, header size, the sizes against `bytes` and both hashes.
// kCorruption naming what is wrong ("the handover is 80 bytes, shorter
// than its header").
Result<HandoverImage> UnframeHandover(std::string_view bytes);

// Unframe, the version check and the decode: what the new image runs on
// the memfd's bytes.
Result<HandoverRecord> ParseHandover(std::string_view bytes);

// Encodes `record` (format kHandoverVersion) into a new sealed memfd
// (close-on-exec: the caller clears that just before the exec).
Result<Fd> WriteHandover(const HandoverRecord& record);

// Reads the memfd `fd` (not closed): its seals must all be set and its
// size within bounds; then ParseHandover.
Result<HandoverRecord> ReadHandover(int fd);

// The raw steps of the two above, for tests: one write into a new memfd,
// then sealed; and the sealed memfd read back and unframed.
Result<Fd> WriteSealedMemfd(std::string_view bytes);
Result<std::string> ReadSealedMemfd(int fd);

}  // namespace relsupd
