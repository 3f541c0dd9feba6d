#include "daemon/base/env_file.h"

namespace relsupd {

Result<std::vector<std::pair<std::string, std::string>>> ParseEnvFile(
    std::string_view text, const std::string& name) {
  std::vector<std::pair<std::string, std::string>> out;
  size_t pos = 0;
  int line_no = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = text.substr(pos, nl - pos);
    pos = nl + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    size_t first = line.find_first_not_of(" \t");
    if (first == std::string_view::npos || line[first] == '#') continue;
    line.remove_prefix(first);
    if (line.starts_with("export ")) line.remove_prefix(7);
    size_t eq = line.find('=');
    if (eq == std::string_view::npos || eq == 0)
      return InvalidArgument(name + ":" + std::to_string(line_no) +
                             ": expected KEY=VALUE");
    std::string_view value = line.substr(eq + 1);
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') &&
        value.back() == value.front())
      value = value.substr(1, value.size() - 2);
    out.emplace_back(std::string(line.substr(0, eq)), std::string(value));
  }
  return out;
}

}  // namespace relsupd
