// hv's command line. Each subcommand is a thin layer over the library: it validates arguments
// into a configuration object, runs it, and turns the outcome into an exit status.
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "cli/container_command.hpp"
#include "cli/run_command.hpp"
#include "cli/supervisor_command.hpp"
#include "common/exit_status.hpp"

int main(int argc, char** argv) {
  // Invoked as hv-runc (the symlink the build installs), hv is an OCI runtime with runc's
  // command line: the same as `hv oci ...`.
  std::vector<char*> arguments(argv, argv + argc);
  const char* slash = std::strrchr(argv[0], '/');
  static char oci_word[] = "oci";
  if (std::strcmp(slash != nullptr ? slash + 1 : argv[0], "hv-runc") == 0) {
    arguments.insert(arguments.begin() + 1, oci_word);
  }
  argc = static_cast<int>(arguments.size());
  argv = arguments.data();

  CLI::App app{
      "hv: a hypervisor that runs guests by emulation, para-virtualization, KVM and "
      "containers"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "hv 0.1");

  hv::cli::RunOptions run_options;
  CLI::App* run = app.add_subcommand("run", "boot a guest and attach its serial console");
  hv::cli::add_run_options(*run, run_options);

  hv::cli::OciOptions oci_options;
  CLI::App* oci = app.add_subcommand("oci", "the OCI runtime (runc's command line; also hv-runc)");
  hv::cli::add_oci_commands(*oci, oci_options);

  hv::cli::ContainerRunOptions container_options;
  CLI::App* container = app.add_subcommand("container", "run a command in a container");
  hv::cli::add_container_commands(*container, container_options);

  hv::cli::SupervisorCommandOptions supervisor_options;
  hv::cli::add_supervisor_commands(app, supervisor_options);

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
  if (oci->parsed()) {
    return hv::cli::run_oci_command(*oci, oci_options);
  }
  if (container->parsed()) {
    return hv::cli::run_container_command(container_options);
  }
  if (std::optional<int> status = hv::cli::run_supervisor_command(app, supervisor_options)) {
    return *status;
  }
  return hv::to_int(hv::ExitStatus::Usage);
}
