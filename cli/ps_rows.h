#pragma once
// PsRows: the reply of `ps` with `columns` ({"columns": [...], "rows":
// [[...], ...]}) read straight from the response line into cells, without
// a JSON DOM. For `relsupd ctl ps` as a whole process: nlohmann's parse
// and teardown of a 100-row reply was a third of the command's own
// instructions.
//
// Why by hand, against the house rule of a library first: nlohmann-json's
// own SAX parser in its place (tried in session 18, bench/README.md "The
// ctl phase") costs `ctl ps` of 100 instances 30% more instructions (its
// lexer copies every character twice), which loses the command its margin
// over runit's `sv status` (issue 17). nlohmann-json still reads every
// other reply, and test_ps_rows and fuzz_ps_rows hold this reader to it.
//
// The reader knows one shape only and strict JSON (RFC 8259: escapes,
// \u surrogate pairs, UTF-8 checked as nlohmann-json checks it). Anything
// else, an error response included, is nullopt: the caller parses that
// line with nlohmann as any other reply. Main thread of `relsupd ctl`.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/protocol/jsonrpc.h"

namespace relsupd::cli {

// One value of a reply, as a table cell needs it.
struct PsCell {
  enum class Kind : uint8_t { kNull, kBool, kNumber, kString, kOther };
  Kind kind = Kind::kNull;
  bool boolean = false;
  double number = 0;
  int64_t integer = 0;  // a number's value cut to an integer
  // A string's text; a number's, a bool's, an array's or an object's JSON
  // text (what Text() prints for it); "" for null. Points into the
  // response line or into PsRows::texts. For a number with a fraction or
  // an exponent read from the line (float_token), the token as sent:
  // CellText() gives nlohmann-json's form of it, made only when asked.
  std::string_view text;
  bool float_token = false;
};

// What Text() prints for the cell's value.
std::string CellText(const PsCell& c);

struct PsRows {
  std::vector<std::string> columns;
  std::vector<PsCell> cells;  // row by row, columns.size() each
  // The texts of cells that the line does not hold as they are (a string
  // with escapes, a number not in nlohmann-json's own form). A deque: its
  // strings never move.
  std::deque<std::string> texts;

  size_t rows() const { return columns.empty() ? 0 : cells.size() / columns.size(); }
  // Keeps `s` with the rows; returns a view of it.
  std::string_view Keep(std::string s) {
    texts.push_back(std::move(s));
    return texts.back();
  }
  // Appends the cell of a value of a DOM (a reply in another shape); its
  // text is kept here.
  void AddCell(const rpc::Json& j);
};

// Takes the rows of a reply one at a time, as the reader reads them (no
// cell of the reply is kept for more than its row: a ps of 100 wrote 60 KB
// of cells, 15 page faults).
class PsRowSink {
 public:
  virtual ~PsRowSink() = default;
  // The names in "columns", before any row.
  virtual void Columns(const std::vector<std::string>& names) = 0;
  // One row, as long as the columns. The cells and their texts are valid
  // during the call only.
  virtual void Row(const std::vector<PsCell>& cells) = 0;
};

// Reads the JSON-RPC response `line` into `sink` and returns true when it
// is a success with id `id` and a result of exactly {"columns": [strings],
// "rows": [[scalars ...], ...]} ("columns" first, as the daemon sends it),
// every row as long as "columns". False otherwise, maybe after some rows
// went to `sink`: whatever it made of them is to be thrown away.
bool ReadPsRowsResponse(std::string_view line, int64_t id, PsRowSink* sink);

// The same, every cell kept: the rows, or nullopt.
// REQUIRES: `line` outlives the result (its cells' texts may point into it).
std::optional<PsRows> ReadPsRowsResponse(std::string_view line, int64_t id);

}  // namespace relsupd::cli
