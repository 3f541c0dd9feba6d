#pragma once
// "Did you mean ...?": the known word closest to a mistyped one, for error
// messages (an unknown YAML key, an unknown CLI verb or process type).
// Pure functions; any thread.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace relsupd {

// Edit distance (insert, delete, substitute, swap of two neighbours) between
// `a` and `b`.
size_t EditDistance(std::string_view a, std::string_view b);

// The candidate closest to `word`, if it is close enough to be a typo: at
// most 1 edit for words up to 4 letters, 2 up to 8, 3 beyond. Ties go to
// the first candidate. nullopt when none is close.
std::optional<std::string> ClosestMatch(std::string_view word,
                                        const std::vector<std::string>& candidates);

// "'a', 'b' and 'c'" (or "'a'", "'a' and 'b'"); "none" when empty.
std::string QuotedList(const std::vector<std::string>& words);

// A peer's text as an error quotes it: at most kMaxExcerptBytes of it (cut
// on a UTF-8 character boundary, "..." added), so an error is never as
// large as what it refuses.
constexpr size_t kMaxExcerptBytes = 64;
std::string Excerpt(std::string_view text);

}  // namespace relsupd
