// Error output of the launcher tools without <iostream> (one-line summaries of
// configuration errors are Diagnostics::errors_one_line()).
#pragma once

#include <unistd.h>

#include <cerrno>
#include <initializer_list>
#include <string>
#include <string_view>

namespace lithos::tools {

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
