#pragma once
// ReleaseId: the number of one release of an app, printed "v3".
//
// Inside the daemon a release is this number; the text "vN" is made by
// ToString() for the ledger, logs, paths and JSON, and read back by Parse()
// only at the edges: control-socket params and the slot directories on
// disk. A plain value type; any thread.

#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

#include "daemon/base/status.h"

namespace relsupd {

class ReleaseId {
 public:
  // Whether Parse() takes a bare number ("3") as well as "v3". The control
  // socket always did; everything else wants the "v".
  enum class Prefix { kRequired, kOptional };
  // The largest number Parse() reads: 12 digits.
  static constexpr int64_t kMax = 999'999'999'999;

  constexpr ReleaseId() = default;  // no release
  constexpr explicit ReleaseId(int64_t number) : number_(number) {}

  constexpr int64_t number() const { return number_; }
  constexpr bool empty() const { return number_ == 0; }
  // "v3"; "" for no release.
  std::string ToString() const;

  // "v1" to "v999999999999"; anything else is InvalidArgument naming `text`.
  static Result<ReleaseId> Parse(std::string_view text,
                                 Prefix prefix = Prefix::kRequired);

  friend constexpr auto operator<=>(ReleaseId, ReleaseId) = default;

 private:
  int64_t number_ = 0;
};

}  // namespace relsupd
