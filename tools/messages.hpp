// One-line summaries of configuration errors for the launcher tools' fatal
// messages and logs (lithos_check prints the full report instead).
#pragma once

#include <unistd.h>

#include <cerrno>
#include <initializer_list>
#include <string>
#include <string_view>

#include "lithos/policy/diagnostics.hpp"

namespace lithos::tools {

// "FILE:LINE: message; FILE:LINE: message" over the errors only.
inline std::string describe_errors(const policy::Diagnostics& diags) {
  std::string out;
  for (const auto& d : diags.items()) {
    if (d.severity != policy::Severity::Error) continue;
    if (!out.empty()) out += "; ";
    out += d.file + ":" + std::to_string(d.mark.line) + ": " + d.message;
  }
  return out;
}

// Writes the pieces to stderr. The launchers use this instead of std::cerr:
// no <iostream> means no stream and locale set-up at every container start
// (docs/knot.md "Start latency").
inline void print_error(std::initializer_list<std::string_view> parts) {
  std::string line;
  for (auto p : parts) line += p;
  std::size_t done = 0;
  while (done < line.size()) {
    ssize_t n = ::write(STDERR_FILENO, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    done += static_cast<std::size_t>(n);
  }
}

}  // namespace lithos::tools
