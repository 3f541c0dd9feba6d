#include "daemon/config/yaml_util.h"

#include <set>

#include "daemon/base/duration.h"
#include "daemon/base/suggest.h"

namespace relsupd::yaml {

std::string Where(const std::string& file, const YAML::Node& node) {
  YAML::Mark m = node.Mark();
  if (m.is_null()) return file + ": ";
  return file + ":" + std::to_string(m.line + 1) + ":" +
         std::to_string(m.column + 1) + ": ";
}

Status ErrorAt(const std::string& file, const YAML::Node& node,
               const std::string& message) {
  return InvalidArgument(Where(file, node) + message);
}

Result<YAML::Node> LoadMap(const std::string& text, const std::string& file) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return InvalidArgument(file + ":" + std::to_string(e.mark.line + 1) + ":" +
                           std::to_string(e.mark.column + 1) +
                           ": invalid YAML: " + e.msg);
  }
  if (root.IsNull()) return YAML::Node(YAML::NodeType::Map);
  if (!root.IsMap()) return ErrorAt(file, root, "expected a mapping of keys");
  return root;
}

void Errors::Add(const Status& s) {
  if (s.ok()) return;
  if (messages_.size() >= kMaxErrors) {
    ++dropped_;
    return;
  }
  messages_.push_back(s.message());
}

Status Errors::ToStatus() const {
  if (messages_.empty()) return Status::Ok();
  std::string text;
  for (const std::string& m : messages_) {
    if (!text.empty()) text += '\n';
    text += m;
  }
  if (dropped_ > 0)
    text += "\n(" + std::to_string(dropped_) + " more errors not shown)";
  return InvalidArgument(text);
}

void CheckKeys(const std::string& file, const YAML::Node& map,
               std::span<const std::string_view> known, Errors* errors) {
  std::set<std::string> seen;
  std::vector<std::string> names(known.begin(), known.end());
  for (const auto& kv : map) {
    if (!kv.first.IsScalar()) {
      errors->Add(ErrorAt(file, kv.first, "keys must be plain strings"));
      continue;
    }
    const std::string& key = kv.first.Scalar();
    // yaml-cpp keeps both copies of a repeated key and lookups see the
    // first: refuse rather than silently ignore what the operator wrote.
    if (!seen.insert(key).second) {
      errors->Add(ErrorAt(file, kv.first, "key '" + key + "' is given twice"));
      continue;
    }
    bool found = false;
    for (std::string_view k : known) found = found || k == key;
    if (found) continue;
    if (auto close = ClosestMatch(key, names)) {
      errors->Add(ErrorAt(file, kv.first,
                          "unknown key '" + key + "' (did you mean '" + *close + "'?)"));
      continue;
    }
    std::string list;
    for (std::string_view k : known) {
      if (!list.empty()) list += ", ";
      list += k;
    }
    errors->Add(ErrorAt(file, kv.first,
                        "unknown key '" + key + "' (known keys: " + list + ")"));
  }
}

Status CheckKeys(const std::string& file, const YAML::Node& map,
                 std::span<const std::string_view> known) {
  Errors errors;
  CheckKeys(file, map, known, &errors);
  return errors.ToStatus();
}

Result<std::string> ReadString(const std::string& file, const YAML::Node& n,
                               std::string_view key) {
  if (!n.IsScalar())
    return ErrorAt(file, n, "'" + std::string(key) + "' must be a string");
  return n.Scalar();
}

Result<int64_t> ReadInt(const std::string& file, const YAML::Node& n,
                        std::string_view key, int64_t min, int64_t max) {
  const std::string k(key);
  if (!n.IsScalar()) return ErrorAt(file, n, "'" + k + "' must be an integer");
  int64_t v;
  try {
    v = n.as<int64_t>();
  } catch (const YAML::Exception&) {
    return ErrorAt(file, n,
                   "'" + k + "' must be an integer, not '" + n.Scalar() + "'");
  }
  if (v < min || v > max)
    return ErrorAt(file, n,
                   "'" + k + "' must be between " + std::to_string(min) +
                       " and " + std::to_string(max));
  return v;
}

Result<bool> ReadBool(const std::string& file, const YAML::Node& n,
                      std::string_view key) {
  const std::string k(key);
  if (!n.IsScalar()) return ErrorAt(file, n, "'" + k + "' must be true or false");
  try {
    return n.as<bool>();
  } catch (const YAML::Exception&) {
    return ErrorAt(file, n,
                   "'" + k + "' must be true or false, not '" + n.Scalar() + "'");
  }
}

Result<int64_t> ReadDurationMs(const std::string& file, const YAML::Node& n,
                               std::string_view key) {
  const std::string k(key);
  if (!n.IsScalar()) return ErrorAt(file, n, "'" + k + "' must be a duration");
  auto d = ParseDurationMs(n.Scalar());
  if (!d.ok()) return ErrorAt(file, n, "'" + k + "': " + d.status().message());
  return *d;
}

}  // namespace relsupd::yaml
