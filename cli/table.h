#pragma once
// Table: aligned columns for human output of `relsupd ctl`.

#include <ostream>
#include <string>
#include <vector>

namespace relsupd {

class Table {
 public:
  explicit Table(std::vector<std::string> headers)
      : headers_(std::move(headers)) {}
  void AddRow(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  // Headers in upper case, columns two spaces apart, the last not padded.
  void Print(std::ostream& out) const;

 private:
  std::vector<std::string> headers_;
  std::vector<std::vector<std::string>> rows_;
};

// Prints "key: value" lines with the values aligned.
void PrintFields(std::ostream& out,
                 const std::vector<std::pair<std::string, std::string>>& fields);

}  // namespace relsupd
