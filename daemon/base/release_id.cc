#include "daemon/base/release_id.h"

namespace relsupd {

std::string ReleaseId::ToString() const {
  return empty() ? std::string() : "v" + std::to_string(number_);
}

Result<ReleaseId> ReleaseId::Parse(std::string_view text, Prefix prefix) {
  std::string_view digits = text;
  if (!digits.empty() && digits.front() == 'v')
    digits.remove_prefix(1);
  else if (prefix == Prefix::kRequired)
    digits = {};
  // At most 12 digits, no leading zero: v0, v-1 and v007 are not releases,
  // and the number always fits (kMax).
  if (digits.empty() || digits.size() > 12 || digits.front() == '0' ||
      digits.find_first_not_of("0123456789") != std::string_view::npos)
    return InvalidArgument("'" + std::string(text) +
                           "' is not a release (use e.g. v3)");
  int64_t n = 0;
  for (char c : digits) n = n * 10 + (c - '0');
  return ReleaseId(n);
}

}  // namespace relsupd
