#pragma once
// Caps on what an artifact may hold. Every check of bad input in the store
// is measured against one of these.

#include <cstdint>

namespace relsupd {

struct StoreLimits {
  uint64_t max_artifact_bytes = uint64_t{2} << 30;  // compressed file
  uint64_t max_unpacked_bytes = uint64_t{8} << 30;  // sum of file sizes
  uint64_t max_entries = 200'000;
  uint64_t max_path_bytes = 1024;
  // A decompression bomb: more than this many unpacked bytes per artifact
  // byte, once past kRatioGraceBytes (small artifacts compress well).
  uint64_t max_compression_ratio = 200;
  static constexpr uint64_t kRatioGraceBytes = 16 << 20;
};

}  // namespace relsupd
