// The tools' shared command-line convention: --help and --version print to
// stdout and exit 0; a usage error goes to stderr and exits 2 (the help and
// the reason, or one line with UsageStyle::OneLine).
#pragma once

#include <CLI/CLI.hpp>

#include <algorithm>
#include <iostream>
#include <optional>

namespace lithos::tools {

enum class UsageStyle {
  HelpThenError,  // the whole help, then the error (the original tools' habit)
  OneLine,        // `NAME: usage error: WHY (see NAME --help)` on one line
};

// Parses argv; returns the exit code when the program should stop now.
inline std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv,
                                             UsageStyle style = UsageStyle::HelpThenError) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help();
    return 0;
  } catch (const CLI::CallForVersion& e) {
    std::cout << e.what() << "\n";
    return 0;
  } catch (const CLI::ParseError& e) {
    if (style == UsageStyle::OneLine) {
      std::string why = e.what(), name = argv[0];
      name = name.substr(name.find_last_of('/') + 1);
      std::replace(why.begin(), why.end(), '\n', ' ');
      std::cerr << name << ": usage error: " << why << " (see " << name << " --help)\n";
    } else {
      std::cerr << app.help() << argv[0] << ": " << e.what() << "\n";
    }
    return 2;
  }
  return std::nullopt;
}

}  // namespace lithos::tools
