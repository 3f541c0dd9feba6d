// `relsupd ctl` adds only the verbs a command line uses (cli/ctl.cc): the
// table of which function adds which verb must hold, and a verb must find
// the same command as with every verb added.

#include <catch2/catch.hpp>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "cli/ctl.h"

namespace relsupd::cli {
namespace {

std::set<std::string> VerbsOf(const CLI::App& ctl) {
  std::set<std::string> out;
  for (const CLI::App* sub : ctl.get_subcommands([](const CLI::App*) { return true; }))
    out.insert(sub->get_name());
  return out;
}

std::string_view VerbOf(std::vector<std::string> args) {
  static std::vector<std::string> kept;
  kept = std::move(args);
  static std::vector<char*> argv;
  argv.clear();
  for (std::string& a : kept) argv.push_back(a.data());
  return CtlVerbOf(static_cast<int>(argv.size()), argv.data());
}

TEST_CASE("ctl verbs: each function adds exactly the verbs the table gives it") {
  std::map<AddVerbsFn, std::set<std::string>> expected;
  std::set<std::string> all;
  for (const VerbAdder& a : CtlVerbAdders()) {
    if (a.add != nullptr) {
      expected[a.add].insert(std::string(a.verb));
      all.insert(std::string(a.verb));
    }
  }
  REQUIRE(expected.size() >= 8);
  for (const auto& [add, verbs] : expected) {
    CLI::App root;
    CtlContext ctx;
    add(*root.add_subcommand("ctl"), &ctx);
    CHECK(VerbsOf(*root.get_subcommand("ctl")) == verbs);
  }
  // With no verb, every one of them, and nothing else.
  CLI::App root;
  CtlContext ctx;
  AddCtlCommand(root, &ctx);
  CHECK(VerbsOf(*root.get_subcommand("ctl")) == all);
  // With a verb, only its function's.
  CLI::App one;
  AddCtlCommand(one, &ctx, "ps");
  const std::set<std::string> ps = VerbsOf(*one.get_subcommand("ctl"));
  CHECK(ps.count("ps") == 1);
  CHECK(ps.count("app") == 0);
  CHECK(ps.size() < all.size());
  // help and a misspelt verb: all, so that help lists them and a
  // misspelling can name the closest.
  for (std::string_view verb : {"help", "pss", ""}) {
    CLI::App r;
    AddCtlCommand(r, &ctx, verb);
    CHECK(VerbsOf(*r.get_subcommand("ctl")) == all);
  }
}

TEST_CASE("ctl verbs: the verb of a command line skips ctl's own options") {
  CHECK(VerbOf({"relsupd", "ctl", "ps"}) == "ps");
  CHECK(VerbOf({"relsupd", "ctl", "--json", "ps", "shop"}) == "ps");
  CHECK(VerbOf({"relsupd", "ctl", "--socket", "/x.sock", "status", "shop"}) == "status");
  CHECK(VerbOf({"relsupd", "ctl", "--socket=/x.sock", "--json", "info"}) == "info");
  CHECK(VerbOf({"relsupd", "ctl", "--socket"}) == "");
  CHECK(VerbOf({"relsupd", "ctl", "--", "ps"}) == "");
  CHECK(VerbOf({"relsupd", "ctl"}) == "");
  CHECK(VerbOf({"relsupd", "build", "ps"}) == "");
  CHECK(VerbOf({"relsupd"}) == "");
}

}  // namespace
}  // namespace relsupd::cli
