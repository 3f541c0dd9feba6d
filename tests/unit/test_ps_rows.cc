// The reader of `ps`'s rows reply (cli/ps_rows.cc): whatever it takes it
// reads as nlohmann-json does, and what it does not take (errors, other
// shapes, bad JSON) it leaves to nlohmann.

#include "cli/ps_rows.h"

#include <catch2/catch.hpp>
#include <random>
#include <string>
#include <vector>

namespace relsupd::cli {
namespace {

using rpc::Json;

std::string Response(const Json& columns, const Json& rows, int64_t id = 7) {
  return Json{{"id", id}, {"jsonrpc", "2.0"}, {"result", {{"columns", columns}, {"rows", rows}}}}
      .dump();
}

void CheckSame(const PsCell& got, const Json& want) {
  INFO(want.dump());
  PsRows dom;
  dom.AddCell(want);
  const PsCell& w = dom.cells[0];
  CHECK(static_cast<int>(got.kind) == static_cast<int>(w.kind));
  CHECK(CellText(got) == CellText(w));
  CHECK(got.boolean == w.boolean);
  CHECK(got.number == w.number);
  CHECK(got.integer == w.integer);
}

// Reads `line` both ways: the reader must take it, and every cell must be
// what nlohmann-json reads.
void CheckReadsAsDom(const std::string& line, int64_t id = 7) {
  INFO(line);
  const std::optional<PsRows> got = ReadPsRowsResponse(line, id);
  REQUIRE(got.has_value());
  const Json dom = Json::parse(line);
  const Json& columns = dom["result"]["columns"];
  const Json& rows = dom["result"]["rows"];
  REQUIRE(got->columns.size() == columns.size());
  for (size_t k = 0; k < columns.size(); ++k) CHECK(got->columns[k] == columns[k]);
  REQUIRE(got->rows() == rows.size());
  REQUIRE(got->cells.size() == rows.size() * columns.size());
  for (size_t i = 0; i < rows.size(); ++i)
    for (size_t k = 0; k < columns.size(); ++k)
      CheckSame(got->cells[i * columns.size() + k], rows[i][k]);
}

TEST_CASE("ps rows: the daemon's shape reads as nlohmann reads it, cell by cell") {
  const Json columns = {"app", "pid", "active", "cpu_percent", "status", "last_exit"};
  const Json rows = {
      {"shop", 4242, true, 1.5, "up\x1b]0;t\x07 café 商店 😀", nullptr},
      {"shop", 0, false, 0.0, "", "exit 3"},
      {"x", -1, true, 12.25, "\"quoted\" \\ back/slash\n\t", "signal KILL"},
      {"y", int64_t{9'000'000'000'000'000'000}, false, 1e-7, "\x7f\u00a0", nullptr},
  };
  CheckReadsAsDom(Response(columns, rows));
  // No rows; one column.
  CheckReadsAsDom(Response(columns, Json::array()));
  CheckReadsAsDom(Response({"pid"}, {{1}, {2}}));
  // Written by hand: whitespace anywhere JSON allows it, every escape,
  // the envelope's keys in another order, numbers in every form.
  CheckReadsAsDom(
      " { \"result\" : { \"columns\" : [ \"a\" , \"b\" , \"c\" , \"d\" , \"e\" , \"f\" ] ,\r\n\t"
      "\"rows\" : [ [ \"\\u00e9\\ud83d\\ude00\\/\\b\\f\\r\\u0000x\" , -0 , 1E3 ,"
      " 2.5e-1 , 0.0 , true ] , [ \"\" , 17 , -12 , 1e+2 , null , false ] ] } , \"jsonrpc\" : \"2.0\" ,"
      " \"id\" : 7 } \n");
}

TEST_CASE("ps rows: anything but a success in that exact shape is left to nlohmann") {
  const std::string good =
      Response(Json::array({"a", "b"}), Json::array({Json::array({"x", 1})}));
  REQUIRE(ReadPsRowsResponse(good, 7).has_value());
  CHECK_FALSE(ReadPsRowsResponse(good, 8).has_value());  // another request's
  for (const std::string& line : std::vector<std::string>{
           "",
           "{}",
           R"({"id":7,"jsonrpc":"2.0","error":{"code":-32602,"message":"unknown param 'columns'"}})",
           R"({"id":7,"jsonrpc":"2.0","result":[{"app":"shop"}]})",
           R"({"id":7,"jsonrpc":"2.0","result":{"columns":["a"]}})",
           R"({"id":7,"jsonrpc":"2.0","result":{"rows":[["x"]]}})",
           R"({"id":7,"jsonrpc":"2.0","result":{"columns":[],"rows":[]}})",
           R"({"id":7,"jsonrpc":"2.0","result":{"columns":["a"],"rows":[["x"]],"more":1}})",
           // Rows before their columns (the daemon sends columns first).
           R"({"id":7,"jsonrpc":"2.0","result":{"rows":[["x"]],"columns":["a"]}})",
           R"({"id":7,"jsonrpc":"2.0","result":{"columns":["a"],"rows":[["x","y"]]}})",
           R"({"id":7,"jsonrpc":"2.0","result":{"columns":["a","b"],"rows":[["x","y"],["z"]]}})",
           R"({"id":7,"jsonrpc":"2.0","result":{"columns":["a"],"rows":[[["nested"]]]}})",
           R"({"id":7,"jsonrpc":"2.0","result":{"columns":["a"],"rows":[[{"k":1}]]}})",
           R"({"id":7,"jsonrpc":"2.0","result":{"columns":[1],"rows":[[1]]}})",
           R"({"id":"7","jsonrpc":"2.0","result":{"columns":["a"],"rows":[[1]]}})",
           R"({"id":7.0,"jsonrpc":"2.0","result":{"columns":["a"],"rows":[[1]]}})",
           // An integer beyond uint64_t (nlohmann makes it a double).
           R"({"id":7,"jsonrpc":"2.0","result":{"columns":["a"],"rows":[[18446744073709551616]]}})",
           R"({"id":7,"jsonrpc":2,"result":{"columns":["a"],"rows":[[1]]}})",
           R"({"id":7,"jsonrpc":"2.0","result":{"columns":["a"],"rows":[[1]]},"error":{}})",
           R"({"id":7,"jsonrpc":"2.0","result":{"columns":["a"],"columns":["a"],"rows":[[1]]}})",
           R"({"id":7,"jsonrpc":"2.0","result":{"columns":["a"],"rows":[[1]],"rows":[[1]]}})",
           R"({"id":7,"jsonrpc":"2.0","result":{"columns":["a"],"rows":[[1]]}}{})",
           R"([{"id":7,"jsonrpc":"2.0","result":{"columns":["a"],"rows":[[1]]}}])",
           R"({"jsonrpc":"2.0","result":{"columns":["a"],"rows":[[1]]}})",
           R"({"id":7,"id":7,"jsonrpc":"2.0","result":{"columns":["a"],"rows":[[1]]}})",
           R"({"id":7,"jsonrpc":"2.0","result":{"columns":["a"],"rows":[[1]]}} x)",
           R"({"id":7,"jsonrpc":"2.0","result":{"columns":["a"],"rows":[[1]]})",
           R"({"id":7,"jsonrpc":"2.0","result":{"columns":["a"],"rows":[[1],]}})",
           // Numbers JSON does not have, and one beyond int64_t.
           R"({"id":7,"jsonrpc":"2.0","result":{"columns":["a"],"rows":[[01]]}})",
           R"({"id":7,"jsonrpc":"2.0","result":{"columns":["a"],"rows":[[1.]]}})",
           R"({"id":7,"jsonrpc":"2.0","result":{"columns":["a"],"rows":[[+1]]}})",
           R"({"id":7,"jsonrpc":"2.0","result":{"columns":["a"],"rows":[[-]]}})",
           R"({"id":7,"jsonrpc":"2.0","result":{"columns":["a"],"rows":[[1e]]}})",
           R"({"id":7,"jsonrpc":"2.0","result":{"columns":["a"],"rows":[[.5]]}})",
           R"({"id":7,"jsonrpc":"2.0","result":{"columns":["a"],"rows":[[NaN]]}})",
           R"({"id":7,"jsonrpc":"2.0","result":{"columns":["a"],"rows":[[1e400]]}})",
           R"({"id":7,"jsonrpc":"2.0","result":{"columns":["a"],"rows":[[18446744073709551615]]}})",
           // Strings JSON does not have.
           R"({"id":7,"jsonrpc":"2.0","result":{"columns":["a"],"rows":[["\x"]]}})",
           R"({"id":7,"jsonrpc":"2.0","result":{"columns":["a"],"rows":[["\u12"]]}})",
           R"({"id":7,"jsonrpc":"2.0","result":{"columns":["a"],"rows":[["\ud800"]]}})",
           R"({"id":7,"jsonrpc":"2.0","result":{"columns":["a"],"rows":[["\udc00"]]}})",
           R"({"id":7,"jsonrpc":"2.0","result":{"columns":["a"],"rows":[["\ud800\u0041"]]}})",
           "{\"id\":7,\"jsonrpc\":\"2.0\",\"result\":{\"columns\":[\"a\"],\"rows\":[[\"a\nb\"]]}}",
           "{\"id\":7,\"jsonrpc\":\"2.0\",\"result\":{\"columns\":[\"a\"],\"rows\":[[\"\xc0\x80\"]]}}",
           "{\"id\":7,\"jsonrpc\":\"2.0\",\"result\":{\"columns\":[\"a\"],\"rows\":[[\"\xed\xa0\x80\"]]}}",
           "{\"id\":7,\"jsonrpc\":\"2.0\",\"result\":{\"columns\":[\"a\"],\"rows\":[[\"\xf5\x80\x80\x80\"]]}}",
           "{\"id\":7,\"jsonrpc\":\"2.0\",\"result\":{\"columns\":[\"a\"],\"rows\":[[\"\xe2\x82\"]]}}",
           "{\"id\":7,\"jsonrpc\":\"2.0\",\"result\":{\"columns\":[\"a\"],\"rows\":[[\"x"}) {
    INFO(line);
    CHECK_FALSE(ReadPsRowsResponse(line, 7).has_value());
  }
}

TEST_CASE("ps rows: a string is taken exactly when nlohmann takes it, and reads the same") {
  // Random strings of the bytes that matter: quotes, backslashes, escape
  // letters, hex digits, controls, and every kind of UTF-8 byte.
  const std::string alphabet =
      std::string("\"\\/bfnrtuU0789aAdDeEfF x\x01\x1f\x7f", 28) +
      "\x80\x8f\x90\x9f\xa0\xbf\xc0\xc2\xdf\xe0\xe1\xed\xef\xf0\xf4\xf5\xff";
  std::mt19937 rng(17);
  std::uniform_int_distribution<size_t> pick(0, alphabet.size() - 1);
  std::uniform_int_distribution<int> length(0, 8);
  int taken = 0;
  for (int n = 0; n < 50'000; ++n) {
    std::string s;
    for (int k = length(rng); k > 0; --k) s += alphabet[pick(rng)];
    // Escapes that are whole now and then: \uXXXX and surrogate pairs.
    if (n % 3 == 0) s += (n % 2 ? "\\ud83d\\ude00" : "\\u00E9");
    const std::string line =
        R"({"id":7,"jsonrpc":"2.0","result":{"columns":["a"],"rows":[[")" + s + R"("]]}})";
    const Json dom = Json::parse(line, nullptr, false);
    const std::optional<PsRows> got = ReadPsRowsResponse(line, 7);
    INFO(Json(std::vector<uint8_t>(s.begin(), s.end())).dump());
    REQUIRE(got.has_value() == !dom.is_discarded());
    if (got) {
      ++taken;
      REQUIRE(got->cells.size() == 1);
      CHECK(got->cells[0].text == dom["result"]["rows"][0][0].get<std::string>());
    }
  }
  CHECK(taken > 1'000);  // the case tests both sides
}

}  // namespace
}  // namespace relsupd::cli
