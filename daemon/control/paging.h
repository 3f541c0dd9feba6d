#pragma once
// Bounds on what one reply of a read method holds, so that no result is
// built whole beyond a fixed budget (rpc::kMaxReplyBytes is the last line
// of defence, in the dispatcher):
// - lists of paths or keys (release.diff, release.verify) keep their first
//   kMaxListItems entries and kMaxListBytes bytes, and say how many there
//   were;
// - pages of records (history, logs) end at kPageItems records or once
//   kPageBytes of them are serialised, and the caller asks for the next
//   page with a cursor (history: `after`, logs: `before_seq`/`after_seq`).
// Pure functions; any thread (the pool builds capped lists too).

#include <cstddef>
#include <string>
#include <vector>

#include "daemon/protocol/jsonrpc.h"

namespace relsupd::paging {

inline constexpr size_t kMaxListItems = 1000;
inline constexpr size_t kMaxListBytes = 128 << 10;
// A page is one step of the loop: 100 history events take a few ms.
inline constexpr size_t kPageItems = 100;
inline constexpr size_t kPageBytes = 128 << 10;

// The first entries of `all` within the bounds; `*truncated` is set to true
// (never back to false) when some were left out.
rpc::Json CappedList(const std::vector<std::string>& all, bool* truncated);
// The bytes `j` takes serialised (as Frame writes it, without the '\n').
size_t SerialisedSize(const rpc::Json& j);

}  // namespace relsupd::paging
