// The CLI11 side of the tools' shared command-line convention
// (cli_convention.hpp, docs/cli.md): --help and --version print to stdout
// and exit 0, `--version` as `NAME VERSION`; a usage error is one line on
// stderr and exits 2.
#pragma once

#include <CLI/CLI.hpp>

#include <iostream>
#include <optional>
#include <string>

#include "cli_convention.hpp"

namespace lithos::tools {

// `--version` printing `NAME VERSION`.
inline void set_version(CLI::App& app, std::string_view name) {
  app.set_version_flag("--version", version_line(name), "Print the name and version, then exit");
}

// Parses argv; returns the exit code when the program should stop now.
inline std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help();
    return 0;
  } catch (const CLI::CallForVersion& e) {
    std::cout << e.what() << "\n";
    return 0;
  } catch (const CLI::ParseError& e) {
    return usage_error(program_name(argv[0]), e.what());
  }
  return std::nullopt;
}

}  // namespace lithos::tools
