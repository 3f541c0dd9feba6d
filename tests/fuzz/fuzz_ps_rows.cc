// Fuzzes the reader of `ps`'s rows reply (cli/ps_rows.cc), the one JSON
// the CLI reads without nlohmann-json: whatever line it takes, nlohmann
// must take too and read to the same cells; what it refuses goes to
// nlohmann anyway, so refusing is always allowed.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>

#include "cli/ps_rows.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace relsupd;
  using rpc::Json;
  const std::string line(reinterpret_cast<const char*>(data), size);
  const std::optional<cli::PsRows> got = cli::ReadPsRowsResponse(line, 7);
  if (!got) return 0;
  const Json dom = Json::parse(line, nullptr, false);
  auto fail = [&](const char* what) {
    std::fprintf(stderr, "the reader took a line nlohmann reads otherwise (%s)\n", what);
    std::abort();
  };
  if (dom.is_discarded() || !dom.is_object() || dom.value("id", Json()) != 7) fail("envelope");
  const Json& result = dom["result"];
  const Json& columns = result["columns"];
  const Json& rows = result["rows"];
  if (!columns.is_array() || !rows.is_array() || columns.size() != got->columns.size())
    fail("shape");
  for (size_t k = 0; k < columns.size(); ++k)
    if (columns[k] != got->columns[k]) fail("column");
  if (got->cells.size() != rows.size() * columns.size()) fail("row count");
  for (size_t i = 0; i < rows.size(); ++i) {
    if (!rows[i].is_array() || rows[i].size() != columns.size()) fail("row");
    for (size_t k = 0; k < columns.size(); ++k) {
      cli::PsRows want;
      want.AddCell(rows[i][k]);
      const cli::PsCell& a = got->cells[i * columns.size() + k];
      const cli::PsCell& b = want.cells[0];
      if (a.kind != b.kind || a.boolean != b.boolean || cli::CellText(a) != cli::CellText(b) ||
          !(a.number == b.number || (a.number != a.number && b.number != b.number)) ||
          a.integer != b.integer)
        fail("cell");
    }
  }
  return 0;
}
