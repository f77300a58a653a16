// Runtime errors: every privileged step reports what it was doing, on which
// path, and the errno it got. Callers add context on the way up (which
// instance, which volume), so a log line reads
//   "instance web/app.0: enter_cgroup: /sys/fs/cgroup/memory/x: Permission denied (join)".
#pragma once

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "lithos/common/result.hpp"

namespace lithos::runtime {

struct StepError {
  std::string step;     // the named step, e.g. "enter_cgroup", "compile_seccomp"
  std::string path;     // the file or object acted on (may be empty)
  int err = 0;          // errno, 0 if the failure is not a system call error
  std::string message;  // what exactly was attempted or found
  // Outer context, innermost last ("instance web/app.0", "volume /data").
  std::vector<std::string> context;

  // "ctx: step: path: strerror (message)"; empty parts are left out.
  std::string what() const {
    std::string out;
    for (auto it = context.rbegin(); it != context.rend(); ++it) {
      out += *it;
      out += ": ";
    }
    out += step;
    if (!path.empty()) out += ": " + path;
    if (err != 0) {
      out += ": ";
      out += std::strerror(err);
    }
    if (!message.empty()) out += err != 0 || !path.empty() ? " (" + message + ")" : ": " + message;
    return out;
  }

  // Adds outer context; returns *this so `return fail(std::move(e).with(...))` reads well.
  StepError&& with(std::string what) && {
    context.push_back(std::move(what));
    return std::move(*this);
  }
  StepError& with(std::string what) & {
    context.push_back(std::move(what));
    return *this;
  }
};

template <class T>
using Result = lithos::Result<T, StepError>;

// Builds a failure for a Result<T>: `return step_error("mkdir", dir, errno, "scope")`.
inline Failure<StepError> step_error(std::string step, std::string path, int err,
                                     std::string message = {}) {
  return Failure<StepError>{
      StepError{std::move(step), std::move(path), err, std::move(message), {}}};
}

// Passes an inner failure up with one more piece of context.
template <class T>
Failure<StepError> forward_error(Result<T>&& inner, std::string what) {
  return Failure<StepError>{std::move(inner.error()).with(std::move(what))};
}

// Passes an inner failure up as it is, into a Result of another type.
template <class T>
Failure<StepError> pass_error(Result<T>&& inner) {
  return Failure<StepError>{std::move(inner.error())};
}

// The one failure record of a forked child before exec, where nothing may
// allocate (spawn_process, the knot's container child, the config reader):
// `op` names the sub-operation, `err` is the errno, `arg` a number that
// identifies the object (a capability, a uid, a port) or -1. It is trivially
// copyable, so it crosses the status pipe as is.
//
// `op` must point at a string literal. The parent reads the pointer back and
// dereferences it: that is valid only because the child is a fork (or a
// clone without exec) of the same binary, so a literal sits at the same
// address in both. Never send one from a process that has exec'ed.
struct ChildStatus {
  const char* op = nullptr;
  int err = 0;
  long arg = -1;
  bool ok() const { return err == 0; }
  // "op" or "op ARG".
  std::string what() const {
    std::string out = op != nullptr ? op : "?";
    if (arg >= 0) out += " " + std::to_string(arg);
    return out;
  }
};

// In the child: writes `status` to the status pipe and exits 127.
[[noreturn]] inline void report_child_failure(int fd, ChildStatus status) noexcept {
  [[maybe_unused]] ssize_t n = ::write(fd, &status, sizeof status);
  ::_exit(127);
}

// In the parent, once its copy of the write end is closed: the child's
// failure, or nothing when the pipe closed on a successful exec (close-on-exec).
inline std::optional<ChildStatus> read_child_status(int fd) noexcept {
  ChildStatus status{};
  ssize_t n;
  do {
    n = ::read(fd, &status, sizeof status);
  } while (n < 0 && errno == EINTR);
  if (n != static_cast<ssize_t>(sizeof status)) return std::nullopt;
  return status;
}

}  // namespace lithos::runtime
