// The tools' shared command-line convention (cli.md §0): --help and
// --version print to stdout and exit 0; a usage error prints the help and
// the reason to stderr and exits 2.
#pragma once

#include <CLI/CLI.hpp>
#include <iostream>
#include <optional>

namespace lithos::tools {

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
    std::cerr << app.help() << argv[0] << ": " << e.what() << "\n";
    return 2;
  }
  return std::nullopt;
}

}  // namespace lithos::tools
