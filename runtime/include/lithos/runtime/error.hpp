// Runtime errors: every privileged step reports what it was doing, on which
// path, and the errno it got. Callers add context on the way up (which
// instance, which volume), so a log line reads
//   "instance web/app.0: enter_cgroup: /sys/fs/cgroup/memory/x: Permission denied (join)".
#pragma once

#include <cerrno>
#include <cstring>
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

// A failure inside a forked child before exec, where nothing may allocate:
// `op` is a string literal naming the sub-operation, `err` the errno, `arg` a
// number that identifies the object (a capability number, a syscall number).
// It is trivially copyable, so it can be written to a pipe as is.
struct ChildStatus {
  const char* op = nullptr;
  int err = 0;
  long arg = -1;
  bool ok() const { return err == 0; }
};

}  // namespace lithos::runtime
