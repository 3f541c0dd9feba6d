#include "cli/build.h"

#include <iostream>
#include <memory>

#include "cli/ctl.h"

namespace relsupd::cli {

void AddBuildCommand(CLI::App& root, int* exit_code) {
  struct Args {
    std::string dir, output;
  };
  auto args = std::make_shared<Args>();
  CLI::App* build = root.add_subcommand(
      "build", "Build DIR into a reproducible artifact (not implemented yet)");
  build->add_option("DIR", args->dir, "Source directory")->required();
  build->add_option("-o,--output", args->output, "Artifact file to write");
  build->callback([exit_code] {
    // The build stage arrives with its own issue; say so plainly.
    std::cerr << "relsupd: 'relsupd build' is not implemented yet\n";
    *exit_code = kExitUsage;
  });
}

}  // namespace relsupd::cli
