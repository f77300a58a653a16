#include "lithos/runtime/notify.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>

#include "lithos/runtime/fd.hpp"

namespace lithos::runtime {

namespace {
constexpr std::string_view kVariable = "NOTIFY_SOCKET=";
}

ServiceNotifier ServiceNotifier::from_environment(const std::vector<std::string>& env) {
  ServiceNotifier notifier;
  std::string_view path;
  for (const auto& entry : env)
    if (std::string_view(entry).starts_with(kVariable))
      path = std::string_view(entry).substr(kVariable.size());
  // Absolute paths and abstract names only; the NUL a path needs must fit.
  if (path.size() < 2 || path.size() >= sizeof(notifier.address_.sun_path) ||
      (path.front() != '/' && path.front() != '@') || path.find('\0') != std::string_view::npos)
    return notifier;
  notifier.address_.sun_family = AF_UNIX;
  std::memcpy(notifier.address_.sun_path, path.data(), path.size());
  if (path.front() == '@') {
    notifier.address_.sun_path[0] = '\0';  // abstract: the length ends the name
    notifier.length_ = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size());
  } else {
    notifier.length_ = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
  }
  return notifier;
}

bool ServiceNotifier::send(std::string_view state) const {
  if (!enabled()) return true;
  UniqueFd socket(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!socket) return false;
  ssize_t sent = ::sendto(socket.get(), state.data(), state.size(), MSG_NOSIGNAL,
                          reinterpret_cast<const sockaddr*>(&address_), length_);
  return sent == static_cast<ssize_t>(state.size());
}

std::vector<std::string> without_notify_socket(std::vector<std::string> env) {
  std::erase_if(env,
                [](const std::string& e) { return std::string_view(e).starts_with(kVariable); });
  return env;
}

}  // namespace lithos::runtime
