// The command-line convention every lithos tool follows (docs/cli.md):
//   --help     the usage on stdout, exit 0
//   --version  `NAME VERSION` on stdout, exit 0
//   a usage error: one line on stderr, `NAME: usage error: WHY (try NAME
//              --help)`, exit 2
//   colour     only on a terminal, never with NO_COLOR set
// Free of CLI11 and <iostream>: the knot and lithos_cmd, which start once
// per container, use it with their own small parsers (docs/knot.md, "Start
// latency"); tools/cli.hpp adds the CLI11 side for the other tools.
#pragma once

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <initializer_list>
#include <string>
#include <string_view>

namespace lithos::tools {

inline constexpr int kUsageExit = 2;

// The program's name without its directory.
inline std::string_view program_name(const char* argv0) {
  std::string_view name = argv0 ? argv0 : "";
  auto slash = name.find_last_of('/');
  return slash == std::string_view::npos ? name : name.substr(slash + 1);
}

inline void write_whole(int fd, std::string_view text) {
  std::size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    done += static_cast<std::size_t>(n);
  }
}

// `NAME VERSION`, the answer to --version.
inline std::string version_line(std::string_view name) {
  return std::string(name) + " " + LITHOS_VERSION;
}

// Writes the usage error line; returns the exit code to use.
inline int usage_error(std::string_view name, std::string_view why) {
  std::string line = std::string(name) + ": usage error: ";
  for (char c : why) line += c == '\n' ? ' ' : c;
  while (!line.empty() && line.back() == ' ') line.pop_back();
  line += " (try " + std::string(name) + " --help)\n";
  write_whole(STDERR_FILENO, line);
  return kUsageExit;
}

// Whether output to `fd` may be coloured: a terminal, and NO_COLOR unset
// or empty (no-color.org).
inline bool colour_wanted(int fd) {
  const char* no_color = std::getenv("NO_COLOR");
  return ::isatty(fd) != 0 && (no_color == nullptr || *no_color == '\0');
}

// For the small parsers: --help or --version among the tool's own options
// (before `--` or the first operand; `with_value` lists the options whose
// value follows them) print their answer. True when one did: exit 0.
inline bool answered_help_or_version(int argc, char** argv, std::string_view usage,
                                     std::initializer_list<std::string_view> with_value) {
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--" || arg.empty() || arg.front() != '-') return false;
    if (arg == "--help" || arg == "-h") {
      write_whole(STDOUT_FILENO, usage);
      return true;
    }
    if (arg == "--version") {
      write_whole(STDOUT_FILENO, version_line(program_name(argv[0])) + "\n");
      return true;
    }
    for (auto option : with_value)
      if (arg == option) ++i;
  }
  return false;
}

}  // namespace lithos::tools
