#include "daemon/base/env_file.h"

#include "daemon/base/text_lines.h"

namespace relsupd {

Result<std::vector<std::pair<std::string, std::string>>> ParseEnvFile(
    std::string_view text, const std::string& name) {
  std::vector<std::pair<std::string, std::string>> out;
  ContentLines lines(text);
  ContentLine content;
  while (lines.Next(&content)) {
    std::string_view line = content.text.substr(content.indent);
    if (line.starts_with("export ")) line.remove_prefix(7);
    size_t eq = line.find('=');
    if (eq == std::string_view::npos || eq == 0)
      return InvalidArgument(name + ":" + std::to_string(content.number) +
                             ": expected KEY=VALUE");
    std::string_view value = line.substr(eq + 1);
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') &&
        value.back() == value.front())
      value = value.substr(1, value.size() - 2);
    out.emplace_back(std::string(line.substr(0, eq)), std::string(value));
  }
  return out;
}

Status ValidateConfigKey(const std::string& key) {
  bool ok = !key.empty() && key.size() <= 255 && !(key[0] >= '0' && key[0] <= '9');
  for (char c : key)
    ok = ok && ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                (c >= '0' && c <= '9') || c == '_');
  if (!ok)
    return InvalidArgument("config key '" + key +
                           "' is not valid (use [A-Za-z_][A-Za-z0-9_]*)");
  if (key.rfind("RELSUPD_", 0) == 0 || key.rfind("LISTEN_", 0) == 0 ||
      key == "NOTIFY_SOCKET")
    return InvalidArgument("config key '" + key + "' is reserved for relsupd");
  return Status::Ok();
}

}  // namespace relsupd
