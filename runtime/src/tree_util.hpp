// Small helpers shared by the tree's files (tree_*.cpp): kept in one place
// rather than copied into each. Quoting, the one-line diagnostic and
// reading a file come from the common layer (debug_quote,
// Diagnostic::one_line, procfs::read_file).
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <cstdint>
#include <string>

#include "lithos/policy/diagnostics.hpp"

namespace lithos::runtime::tree_detail {

// epoll tags of the loop's event sources: a pidfd's tag carries its pid.
inline constexpr std::uint64_t kSignalTag = 1;
inline constexpr std::uint64_t kTimerTag = 2;
inline constexpr std::uint64_t kPidTag = 1ULL << 32;

int pidfd_open(pid_t pid);
// Descriptors below this stay free for what a start hands a knot; the
// tree's long-lived pidfds live at or above it (keep_high), so that a start
// copies a small descriptor table, not one pidfd per instance
// (SpawnOptions::fd_table_below).
inline constexpr int kLowDescriptors = 1024;
// `fd` moved to a number >= kLowDescriptors (close-on-exec), or left where
// it is when the descriptor limit has no room there.
int keep_high(int fd);
bool pidfd_signal(int pidfd, int sig);
std::string errno_text(int err);
// Status text as the original logged it, but with the exit code unsigned
// (the original printed codes above 127 as negative numbers).
std::string status_text(const siginfo_t& info);

}  // namespace lithos::runtime::tree_detail
