#include "cli/table.h"

#include <algorithm>

namespace relsupd {

void Table::Print(std::ostream& out) const {
  std::vector<size_t> width(headers_.size());
  for (size_t i = 0; i < headers_.size(); ++i) width[i] = headers_[i].size();
  for (const auto& row : rows_)
    for (size_t i = 0; i < row.size() && i < width.size(); ++i)
      width[i] = std::max(width[i], row[i].size());
  auto line = [&](const std::vector<std::string>& cells) {
    std::string s;
    for (size_t i = 0; i < cells.size() && i < width.size(); ++i) {
      s += cells[i];
      if (i + 1 < cells.size()) s.append(width[i] - cells[i].size() + 2, ' ');
    }
    out << s << '\n';
  };
  line(headers_);
  for (const auto& row : rows_) line(row);
}

void PrintFields(std::ostream& out,
                 const std::vector<std::pair<std::string, std::string>>& fields) {
  size_t w = 0;
  for (const auto& [k, v] : fields) w = std::max(w, k.size());
  for (const auto& [k, v] : fields)
    out << k << ':' << std::string(w - k.size() + 1, ' ') << v << '\n';
}

}  // namespace relsupd
