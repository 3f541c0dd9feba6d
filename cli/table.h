#pragma once
// Table: aligned columns for the human output of `relsupd ctl`.
//
// Columns are aligned by display width, not bytes: an app name or a STATUS=
// text in UTF-8 (accents, CJK, emoji) takes the columns a terminal gives
// it. On a terminal, a line wider than the terminal has the cells of its
// free-text columns (Table::Cuttable: a STATUS, a DETAIL) cut, each ending
// in "…"; names, ids and numbers are never cut (a line may then stay wider
// than the terminal). The STATE column is in colour (ready green,
// failed red, starting yellow), unless NO_COLOR is set (no-color.org) or
// TERM is dumb. A pipe or a file gets every cell whole and no escape.
// Main thread of `relsupd ctl`.

#include <cstddef>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace relsupd {

// How a table is printed: where it goes decides, see StdoutStyle().
struct TableStyle {
  bool colour = false;
  size_t max_width = 0;  // columns a line may take; 0: no limit
};

// For std::cout: colour and the terminal's width when stdout is a
// terminal (TIOCGWINSZ, else $COLUMNS, else 80), neither otherwise.
TableStyle StdoutStyle();

// The columns `text` takes on a terminal: wcwidth(3) of each character in
// C.UTF-8; a byte that is not UTF-8, or a character without a width (a
// control), counts as one.
size_t DisplayWidth(std::string_view text);

// `text` cut to at most `width` columns, ending in "…" when it was cut.
// REQUIRES: width >= 1.
std::string CutToWidth(std::string_view text, size_t width);

class Table {
 public:
  explicit Table(std::vector<std::string> headers)
      : headers_(std::move(headers)) {}
  void AddRow(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  // The column headed `header` holds free text that may be cut to fit the
  // terminal.
  void Cuttable(const std::string& header) { cuttable_.push_back(header); }
  // Headers in upper case, columns two spaces apart, the last not padded.
  // With style.max_width, the widest cuttable columns shrink (not below
  // their header's width, or 3) until a line fits; a cell that no longer
  // fits is cut with "…". With style.colour, a cell of the column headed
  // STATE is coloured by its text.
  void Print(std::ostream& out, const TableStyle& style) const;
  void Print(std::ostream& out) const { Print(out, StdoutStyle()); }

 private:
  std::vector<std::string> headers_;
  std::vector<std::vector<std::string>> rows_;
  std::vector<std::string> cuttable_;
};

// Prints "key: value" lines with the values aligned.
void PrintFields(std::ostream& out,
                 const std::vector<std::pair<std::string, std::string>>& fields);

}  // namespace relsupd
