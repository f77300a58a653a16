// The service manager's readiness protocol (systemd's sd_notify(3), written
// here in a few lines rather than linking libsystemd): one datagram of
// `KEY=VALUE` lines to the AF_UNIX socket that NOTIFY_SOCKET names. The tree
// says READY=1 once it supervises, RELOADING=1 before a re-exec (and READY=1
// again from the new image, or from itself when the reload is refused),
// STOPPING=1 when a shutdown begins (docs/operations.md, "systemd").
#pragma once

#include <sys/socket.h>
#include <sys/un.h>

#include <string>
#include <string_view>
#include <vector>

namespace lithos::runtime {

class ServiceNotifier {
 public:
  ServiceNotifier() = default;
  // From an environment of `KEY=VALUE` strings; without NOTIFY_SOCKET, or
  // with one that is no usable socket address, every send is a no-op.
  // `@name` is a Linux abstract socket, as systemd writes it.
  static ServiceNotifier from_environment(const std::vector<std::string>& env);

  bool enabled() const noexcept { return length_ != 0; }
  // One message; false (errno set) when it could not be sent. Never blocks.
  bool send(std::string_view state) const;

 private:
  sockaddr_un address_{};
  socklen_t length_ = 0;
};

// The environment without NOTIFY_SOCKET: what a child of the tree gets,
// since only the tree itself speaks for the service.
std::vector<std::string> without_notify_socket(std::vector<std::string> env);

}  // namespace lithos::runtime
