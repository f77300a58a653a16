// The launch plan's way into the knot (docs/knot.md, "The launch plan"): the
// tree or lithos_cmd writes the encoded plan into a memfd, seals it and
// hands it over at policy::kPlanFd; the knot reads it once, checks the wire
// format, and closes it.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "lithos/policy/invocation.hpp"
#include "lithos/policy/plan_wire.hpp"
#include "lithos/runtime/knot.hpp"

namespace lithos::runtime {

namespace {

constexpr int kRequiredSeals = F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE;

}  // namespace

Result<UniqueFd> seal_plan(std::string_view wire) {
  const char* step = "seal_plan";
  UniqueFd fd(static_cast<int>(
      ::syscall(SYS_memfd_create, "lithos-plan", MFD_CLOEXEC | MFD_ALLOW_SEALING)));
  if (!fd) return step_error(step, "memfd", errno, "memfd_create");
  std::size_t done = 0;
  while (done < wire.size()) {
    ssize_t n = ::write(fd.get(), wire.data() + done, wire.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return step_error(step, "memfd", n < 0 ? errno : EIO, "write");
    done += static_cast<std::size_t>(n);
  }
  if (::fcntl(fd.get(), F_ADD_SEALS, kRequiredSeals) != 0)
    return step_error(step, "memfd", errno, "F_ADD_SEALS");
  return fd;
}

Result<policy::InstancePlan> read_launch_plan(int fd) {
  const char* step = "read_plan";
  UniqueFd owned(fd);
  struct stat st {};
  if (::fstat(fd, &st) != 0)
    return step_error(step, "fd " + std::to_string(fd), errno,
                      "no launch plan (start the knot with lithos_tree or lithos_cmd)");
  // Sealed: nobody, the sender included, can change it after our checks.
  int seals = ::fcntl(fd, F_GET_SEALS);
  if (!S_ISREG(st.st_mode) || seals < 0 || (seals & kRequiredSeals) != kRequiredSeals)
    return step_error(step, "fd " + std::to_string(fd), seals < 0 ? errno : 0,
                      "the launch plan must be a sealed memfd");
  if (st.st_size <= 0 || static_cast<std::uint64_t>(st.st_size) > policy::kMaxPlanBytes)
    return step_error(step, "fd " + std::to_string(fd), 0,
                      "launch plan of " + std::to_string(st.st_size) + " bytes (limit " +
                          std::to_string(policy::kMaxPlanBytes) + ")");
  std::string bytes(static_cast<std::size_t>(st.st_size), '\0');
  std::size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::pread(fd, bytes.data() + done, bytes.size() - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return step_error(step, "fd " + std::to_string(fd), errno, "read");
    if (n == 0) return step_error(step, "fd " + std::to_string(fd), 0, "short read");
    done += static_cast<std::size_t>(n);
  }
  auto plan = policy::decode_plan(bytes);
  if (!plan) return step_error(step, "", 0, plan.error());
  return std::move(plan.value());
}

Result<void> place_host_sockets(const policy::InstancePlan& plan) {
  const char* step = "place_sockets";
  std::vector<std::pair<int, int>> moves;  // (handed-over number, planned number)
  int above = policy::kPlanFd;
  for (const auto& sp : plan.sockets) {
    if (!sp.host_side) continue;
    int from = policy::kPlanFd + 1 + static_cast<int>(moves.size());
    if (sp.fd > 1'000'000) return step_error(step, "", EINVAL, "planned fd out of range");
    struct stat st {};
    if (::fstat(from, &st) != 0 || !S_ISSOCK(st.st_mode))
      return step_error(step, "fd " + std::to_string(from), errno,
                        "the socket for port " + std::to_string(sp.port) + " was not handed over");
    moves.emplace_back(from, static_cast<int>(sp.fd));
    above = std::max({above, from, static_cast<int>(sp.fd)});
  }
  // Out of the way first, so that no planned number clobbers a socket not
  // yet moved; close-on-exec (the container child clears it).
  std::vector<int> parked;
  for (auto [from, to] : moves) {
    int tmp = ::fcntl(from, F_DUPFD_CLOEXEC, above + 1);
    if (tmp < 0) return step_error(step, "fd " + std::to_string(from), errno, "F_DUPFD_CLOEXEC");
    ::close(from);
    parked.push_back(tmp);
  }
  for (std::size_t i = 0; i < moves.size(); ++i) {
    if (::dup3(parked[i], moves[i].second, O_CLOEXEC) < 0)
      return step_error(step, "fd " + std::to_string(moves[i].second), errno, "dup3");
    ::close(parked[i]);
  }
  return {};
}

Result<void> open_plan_log(Logger& log, const policy::InstancePlan& plan) {
  if (plan.syslog_facility) {
    SyslogTarget target;
    target.facility = *plan.syslog_facility;
    target.ident = plan.syslog_ident;
    return log.open_syslog(std::move(target), false);
  }
  return log.open(plan.log_file);
}

}  // namespace lithos::runtime
