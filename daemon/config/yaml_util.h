#pragma once
// Helpers shared by the YAML parsers of this module: positions in messages,
// typed scalar reads and unknown-key checks. Internal to daemon/config.

#include <yaml-cpp/yaml.h>

#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/base/status.h"

namespace relsupd::yaml {

// "FILE:LINE:COL: " for `node` (1-based line and column).
std::string Where(const std::string& file, const YAML::Node& node);
Status ErrorAt(const std::string& file, const YAML::Node& node,
               const std::string& message);

// Parses `text`; a syntax error names file, line and column. An empty
// document is an empty map. The root must be a map.
Result<YAML::Node> LoadMap(const std::string& text, const std::string& file);

// The errors found in one file, collected so that one run reports all of
// them (a parser carries on past a bad value to check the rest).
class Errors {
 public:
  // Records `s` unless it is ok; keeps at most kMaxErrors messages.
  void Add(const Status& s);
  bool empty() const { return messages_.empty(); }
  // Ok when empty; else InvalidArgument with one message per line, in the
  // order found.
  Status ToStatus() const;
  // Moves r's value into *out and returns true, or records its error.
  template <typename T, typename U>
  bool Take(Result<T> r, U* out) {
    if (!r.ok()) {
      Add(r.status());
      return false;
    }
    *out = static_cast<U>(std::move(r).value());
    return true;
  }

  static constexpr size_t kMaxErrors = 50;

 private:
  std::vector<std::string> messages_;
  size_t dropped_ = 0;
};

// Records an error for every key of `map` not in `known` (naming the known
// key it is a typo of, or else listing them all) and every key given twice.
void CheckKeys(const std::string& file, const YAML::Node& map,
               std::span<const std::string_view> known, Errors* errors);
// The same, returning the errors as one Status.
Status CheckKeys(const std::string& file, const YAML::Node& map,
                 std::span<const std::string_view> known);
inline Status CheckKeys(const std::string& file, const YAML::Node& map,
                        std::initializer_list<std::string_view> known) {
  return CheckKeys(file, map, std::span<const std::string_view>(known.begin(), known.size()));
}

Result<std::string> ReadString(const std::string& file, const YAML::Node& n,
                               std::string_view key);
Result<int64_t> ReadInt(const std::string& file, const YAML::Node& n,
                        std::string_view key, int64_t min, int64_t max);
Result<bool> ReadBool(const std::string& file, const YAML::Node& n,
                      std::string_view key);
// A duration such as "10s"; a bare integer is seconds.
Result<int64_t> ReadDurationMs(const std::string& file, const YAML::Node& n,
                               std::string_view key);

// The string at `n` turned into a value by `parse`, which takes the text
// and returns a Result; its error is reported at `n`.
template <typename Parse>
auto ReadParsed(const std::string& file, const YAML::Node& n,
                std::string_view key, Parse parse)
    -> decltype(parse(std::string())) {
  ASSIGN_OR_RETURN(std::string text, ReadString(file, n, key));
  auto parsed = parse(text);
  if (!parsed.ok()) return ErrorAt(file, n, parsed.status().message());
  return parsed;
}

}  // namespace relsupd::yaml
