// Table output of `relsupd ctl` (cli/table.cc): columns aligned by display
// width, cut to the terminal's width with "…", STATE in colour only when
// the style says so.

#include "cli/table.h"
#include "cli/terminal.h"

#include <catch2/catch.hpp>
#include <sstream>

namespace relsupd {
namespace {

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// The display column at which `needle` starts in `line`.
size_t ColumnOf(const std::string& line, const std::string& needle) {
  const size_t at = line.find(needle);
  REQUIRE(at != std::string::npos);
  return DisplayWidth(line.substr(0, at));
}

TEST_CASE("table: display width counts columns, not bytes") {
  CHECK(DisplayWidth("shop") == 4);
  CHECK(DisplayWidth("café") == 4);         // é is two bytes
  CHECK(DisplayWidth("商店") == 4);          // wide characters take two columns
  CHECK(DisplayWidth("e\u0301") == 1);      // a combining accent takes none
  CHECK(DisplayWidth("a\xff" "b") == 3);    // a byte that is not UTF-8 counts as one
  CHECK(DisplayWidth("") == 0);
}

TEST_CASE("table: a cut ends in an ellipsis and never splits a character") {
  CHECK(CutToWidth("shop", 4) == "shop");
  CHECK(CutToWidth("shopping", 5) == "shop…");
  CHECK(CutToWidth("商店商店", 5) == "商店…");  // 4 + 1 columns
  CHECK(CutToWidth("商店商店", 4) == "商…");    // the second 商 would need 5
  CHECK(DisplayWidth(CutToWidth("商店商店", 4)) == 3);
  CHECK(CutToWidth("x", 1) == "x");
  CHECK(CutToWidth("xy", 1) == "…");
}

TEST_CASE("table: UTF-8 names stay aligned, and a 200-character command fits 80 columns") {
  Table t({"APP", "PROCESS", "STATE", "COMMAND"});
  t.Cuttable("COMMAND");
  t.AddRow({"café-商店", "web", "ready", std::string(200, 'x')});
  t.AddRow({"shop", "worker", "failed", "./bin/worker --queue default"});
  std::ostringstream out;
  t.Print(out, TableStyle{.colour = false, .max_width = 80});
  const std::vector<std::string> lines = Lines(out.str());
  REQUIRE(lines.size() == 3);
  for (const std::string& line : lines) {
    INFO(line);
    CHECK(DisplayWidth(line) <= 80);
    CHECK(line.find('\033') == std::string::npos);
  }
  // Each column starts at the same display column on every line.
  CHECK(ColumnOf(lines[0], "PROCESS") == ColumnOf(lines[1], "web"));
  CHECK(ColumnOf(lines[0], "PROCESS") == ColumnOf(lines[2], "worker"));
  CHECK(ColumnOf(lines[0], "STATE") == ColumnOf(lines[1], "ready"));
  CHECK(ColumnOf(lines[0], "STATE") == ColumnOf(lines[2], "failed"));
  CHECK(ColumnOf(lines[0], "COMMAND") == ColumnOf(lines[1], "xxx"));
  // The long cell was cut (and is the one that was), the short ones not.
  CHECK(lines[1].find("café-商店") != std::string::npos);
  CHECK(lines[1].size() >= 3);
  CHECK(lines[1].substr(lines[1].size() - 3) == "…");
  CHECK(DisplayWidth(lines[1]) == 80);
  CHECK(lines[2].find("./bin/worker --queue default") != std::string::npos);
}

TEST_CASE("table: with no width limit nothing is cut") {
  Table t({"APP", "COMMAND"});
  t.AddRow({"shop", std::string(200, 'x')});
  std::ostringstream out;
  t.Print(out, TableStyle{});
  CHECK(out.str().find(std::string(200, 'x')) != std::string::npos);
  CHECK(out.str().find("…") == std::string::npos);
}

TEST_CASE("table: only free-text columns are cut, never below their header, and the rest overflow") {
  Table t({"APP", "PID", "STATUS", "DETAIL"});
  t.Cuttable("STATUS");
  t.Cuttable("DETAIL");
  t.AddRow({"shopping-cart", "123456", "serving on 127.0.0.1:8080", "all good"});
  std::ostringstream out;
  t.Print(out, TableStyle{.colour = false, .max_width = 30});
  const std::vector<std::string> lines = Lines(out.str());
  REQUIRE(lines.size() == 2);
  // APP and PID whole; STATUS and DETAIL down to their headers' widths
  // (6 columns each), the line still wider than 30.
  CHECK(lines[0] == "APP            PID     STATUS  DETAIL");
  CHECK(lines[1] == "shopping-cart  123456  servi…  all g…");
  // Wide enough: nothing is cut.
  std::ostringstream wide;
  t.Print(wide, TableStyle{.colour = false, .max_width = 80});
  CHECK(Lines(wide.str())[1] == "shopping-cart  123456  serving on 127.0.0.1:8080  all good");
}

TEST_CASE("table: STATE is coloured by its text only when the style has colour") {
  Table t({"PROCESS", "STATE", "STATUS"});
  t.AddRow({"web.1", "ready", "ready"});
  t.AddRow({"web.2", "failed", "-"});
  t.AddRow({"web.3", "starting", "-"});
  t.AddRow({"web.4", "stopped", "-"});
  std::ostringstream plain, coloured;
  t.Print(plain, TableStyle{.colour = false, .max_width = 80});
  t.Print(coloured, TableStyle{.colour = true, .max_width = 80});
  CHECK(plain.str().find('\033') == std::string::npos);
  const std::vector<std::string> lines = Lines(coloured.str());
  REQUIRE(lines.size() == 5);
  CHECK(lines[0].find('\033') == std::string::npos);  // headers plain
  CHECK(lines[1] == "web.1    \033[32mready\033[0m     ready");  // STATUS not coloured
  CHECK(lines[2].find("\033[31mfailed\033[0m") != std::string::npos);
  CHECK(lines[3].find("\033[33mstarting\033[0m") != std::string::npos);
  CHECK(lines[4].find('\033') == std::string::npos);
}

TEST_CASE("table: fields align by display width") {
  std::ostringstream out;
  PrintFields(out, {{"app", "shop"}, {"état", "ready"}});
  CHECK(out.str() == "app:  shop\nétat: ready\n");
}

}  // namespace
}  // namespace relsupd

// An app's bytes on the way to a terminal (cli/terminal.h).
namespace relsupd::cli {
namespace {

TEST_CASE("terminal: control characters of an app's text are escaped, line by line on stderr") {
  CHECK(EscapeControls("ok\ttab caf\xC3\xA9") == "ok\ttab caf\xC3\xA9");
  CHECK(EscapeControls("\x1b]0;PWNED\a\x1b[2Jboom") == "\\e]0;PWNED\\a\\e[2Jboom");
  CHECK(EscapeControls("a\rb\nc\x7f\xff") == "a\\rb\\nc\\x7f\\xff");
  // A message on stderr keeps its lines (the daemon's "last lines" block)
  // and escapes what is in them; to a pipe or a file it is left alone.
  const std::string message =
      "not ready:\n  the last lines of web.1 on stderr:\n    \x1b]0;PWNED\a\x1b[2Jboom";
  CHECK(EscapeLines(message, true) ==
        "not ready:\n  the last lines of web.1 on stderr:\n    \\e]0;PWNED\\a\\e[2Jboom");
  CHECK(EscapeLines(message, false) == message);
  CHECK(EscapeLines("", true).empty());
  CHECK(EscapeLines("\n\n", true) == "\n\n");
}

}  // namespace
}  // namespace relsupd::cli
