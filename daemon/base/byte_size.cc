#include "daemon/base/byte_size.h"

#include <cctype>

namespace relsupd {
namespace {

constexpr uint64_t kMaxBytes = uint64_t{1} << 50;  // 1 PiB

}  // namespace

Result<uint64_t> ParseByteSize(std::string_view text) {
  const auto bad = [&](std::string_view why) {
    return InvalidArgument("'" + std::string(text) + "' is not a size (" +
                           std::string(why) + "; use e.g. 512M, 1G or 65536)");
  };
  size_t i = 0;
  uint64_t whole = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
    if (whole > kMaxBytes) return bad("too large");
    whole = whole * 10 + static_cast<uint64_t>(text[i] - '0');
    ++i;
  }
  if (i == 0) return bad("no number");
  // A fraction, in millionths: "1.5G".
  uint64_t frac = 0;
  uint64_t frac_scale = 1;
  if (i < text.size() && text[i] == '.') {
    ++i;
    size_t start = i;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
      if (frac_scale < 1'000'000) {
        frac = frac * 10 + static_cast<uint64_t>(text[i] - '0');
        frac_scale *= 10;
      }
      ++i;
    }
    if (i == start) return bad("no digits after '.'");
  }
  std::string_view suffix = text.substr(i);
  int shift = 0;
  if (!suffix.empty()) {
    switch (std::toupper(static_cast<unsigned char>(suffix[0]))) {
      case 'K': shift = 10; break;
      case 'M': shift = 20; break;
      case 'G': shift = 30; break;
      case 'T': shift = 40; break;
      case 'B': shift = 0; break;
      default: return bad("unknown unit '" + std::string(suffix) + "'");
    }
    std::string rest(suffix.substr(1));
    for (char& c : rest) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (shift != 0 && (rest == "i" || rest == "ib" || rest == "b")) rest.clear();
    if (!rest.empty()) return bad("unknown unit '" + std::string(suffix) + "'");
  }
  if (frac_scale > 1 && shift == 0) return bad("a fraction of a byte");
  if (whole > (kMaxBytes >> shift)) return bad("over 1 PiB");
  uint64_t bytes = (whole << shift) + ((frac << shift) / frac_scale);
  if (bytes == 0) return bad("zero");
  if (bytes > kMaxBytes) return bad("over 1 PiB");
  return bytes;
}

std::string FormatByteSize(uint64_t bytes) {
  static constexpr char kUnits[] = {'T', 'G', 'M', 'K'};
  for (int u = 0; u < 4; ++u) {
    const int shift = 40 - 10 * u;
    const uint64_t unit = uint64_t{1} << shift;
    if (bytes >= unit && bytes % unit == 0)
      return std::to_string(bytes >> shift) + kUnits[u];
  }
  return std::to_string(bytes);
}

}  // namespace relsupd
