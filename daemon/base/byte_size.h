#pragma once
// Sizes written by people, as systemd's MemoryMax= reads them: "512M",
// "1G", "65536", "1.5G". Pure; any thread.

#include <cstdint>
#include <string>
#include <string_view>

#include "daemon/base/status.h"

namespace relsupd {

// Parses bytes: a number (a decimal fraction allowed with a suffix) and an
// optional suffix K, M, G or T (powers of 1024; "KiB", "MB" and the like
// read the same, a trailing "B" alone means bytes). At least 1 byte, at most
// 1 PiB.
Result<uint64_t> ParseByteSize(std::string_view text);

// The shortest exact form ParseByteSize reads back ("512M", "1G", "1000").
std::string FormatByteSize(uint64_t bytes);

// Whole MiB, rounded down, for messages ("70 MiB").
inline uint64_t WholeMiB(uint64_t bytes) { return bytes >> 20; }

}  // namespace relsupd
