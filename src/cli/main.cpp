// hv's command line. Each subcommand is a thin layer over the library: it validates arguments
// into a configuration object, runs it, and turns the outcome into an exit status.
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <cstdio>
#include <string>

#include "cli/run_command.hpp"
#include "common/exit_status.hpp"

int main(int argc, char** argv) {
  CLI::App app{
      "hv: a hypervisor that runs guests by emulation, para-virtualization, KVM and "
      "containers"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "hv 0.1");

  hv::cli::RunOptions run_options;
  CLI::App* run = app.add_subcommand("run", "boot a guest and attach its serial console");
  hv::cli::add_run_options(*run, run_options);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    fmt::print(stderr, "hv: error: {}\n", e.what());
    fmt::print(stderr, "Run 'hv --help' or 'hv run --help' for usage.\n");
    return hv::to_int(hv::ExitStatus::Usage);
  }

  if (run->parsed()) {
    return hv::cli::run_command(run_options);
  }
  return hv::to_int(hv::ExitStatus::Usage);
}
