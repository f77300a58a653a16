// The rules that look at one container config alone (docs/configs.md):
// socket activation, template references, volume mount points, io-max
// devices, workdir and secrets. Also the whole of `lithos_check --check-container`.
#include <charconv>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "check_internal.hpp"
#include "lithos/crypt/crypt.hpp"

namespace lithos::policy::check_internal {

// Ports that socket activation assigns: variable name -> fd, in byte order.
std::map<std::string, std::uint32_t> activation_fds(const ContainerConfig& c) {
  std::map<std::string, std::uint32_t> out;
  std::uint32_t fd = 3;
  for (const auto& [name, var] : c.variables) {
    if (auto* tcp = std::get_if<TcpPortVariable>(&var);
        tcp && tcp->activation == Activation::Systemd)
      out[name] = fd++;
  }
  return out;
}

// "MAJOR:MINOR" of io-max, as the kernel prints device numbers.
std::optional<std::pair<std::uint32_t, std::uint32_t>> parse_device_numbers(std::string_view text) {
  auto colon = text.find(':');
  if (colon == std::string_view::npos) return std::nullopt;
  auto number = [](std::string_view digits) -> std::optional<std::uint32_t> {
    std::uint32_t value = 0;
    if (digits.empty() || digits.size() > 10) return std::nullopt;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    if (ec != std::errc{} || end != digits.data() + digits.size()) return std::nullopt;
    return value;
  };
  auto major = number(text.substr(0, colon));
  auto minor = number(text.substr(colon + 1));
  if (!major || !minor) return std::nullopt;
  return std::pair{*major, *minor};
}

namespace {

constexpr std::string_view kActivationNames[] = {"LISTEN_FDS", "LISTEN_FDNAMES", "LISTEN_PID"};

void check_templates(const Loaded<ContainerCodec>& doc, Reporter& report) {
  const auto& c = doc.value;
  // `path_of` makes the mark path, only needed for a message.
  auto check = [&](std::string_view text, const auto& path_of, bool environ_value) {
    if (environ_value && text == kPidVariable) return;
    if (text.find("@{") == std::string_view::npos) return;  // literal text only
    for (const auto& part : scalars::parse_template(text)) {
      if (!part.is_variable) continue;
      if (c.variables.count(part.text)) continue;
      if (std::string_view(part.text) == "lithos:pid") {
        report.error(doc.file, doc.marks.find(path_of()), Code::Template,
                     "lithos:pid variable can only be used in environment as a sole value");
      } else if (!is_builtin_variable(part.text)) {
        std::vector<std::string> known{"lithos:name", "lithos:config_filename"};
        for (const auto& declared : c.variables) known.push_back(declared.first);
        std::string hint = schema::nearest_name(part.text, known);
        report.error(doc.file, doc.marks.find(path_of()), Code::Template,
                     "undefined variable " + quote(part.text) +
                         (hint.empty() ? " (declare it in `variables`)"
                                       : " (did you mean " + quote(hint) +
                                             "? or declare it in `variables`)"));
      }
    }
  };
  for (std::size_t i = 0; i < c.arguments.size(); ++i)
    check(
        c.arguments[i], [&] { return key_path(".arguments", std::to_string(i)); }, false);
  // Plain names, not structured bindings: clang 14 (the fuzz build) cannot
  // capture those in a lambda.
  for (const auto& entry : c.environ) {
    const std::string& name = entry.first;
    check(
        entry.second, [&] { return key_path(".environ", name) + ":value"; }, true);
  }
  for (const auto& entry : c.tcp_ports) {
    const std::string& key = entry.first;
    check(
        key, [&] { return key_path(".tcp-ports", key); }, false);
  }
}

void check_activation(const Loaded<ContainerCodec>& doc, Reporter& report) {
  const auto& c = doc.value;
  auto fds = activation_fds(c);
  if (fds.empty()) return;
  for (auto name : kActivationNames) {
    std::string n(name);
    if (c.environ.count(n))
      report.error(doc.file, doc.marks.find(key_path(".environ", n)), Code::Activation,
                   n + " is set by socket activation and must not be in environ");
    if (c.secret_environ.count(n))
      report.error(doc.file, doc.marks.find(key_path(".secret-environ", n)), Code::Activation,
                   n + " is set by socket activation and must not be in secret-environ");
  }
  for (const auto& [key, port] : c.tcp_ports) {
    for (const auto& [var, fd] : fds) {
      if (port.fd == fd)
        report.error(
            doc.file, doc.marks.find(key_path(".tcp-ports", key) + ".fd"), Code::Activation,
            "fd " + std::to_string(fd) + " is used by socket activation of variable " + quote(var));
    }
  }
}

}  // namespace

void check_container_rules(const Loaded<ContainerCodec>& doc, Reporter& report) {
  check_activation(doc, report);
  check_templates(doc, report);
  const auto& c = doc.value;
  for (const auto& [mp, volume] : c.volumes) {
    if (!absolute_clean(mp))
      report.error(doc.file, doc.marks.find(key_path(".volumes", mp)), Code::BadPath,
                   "volume mount point " + quote(mp) + " must be absolute without . or ..");
  }
  std::map<std::pair<std::uint32_t, std::uint32_t>, std::string> devices;
  for (const auto& [device, limits] : c.io_max) {
    Mark where = doc.marks.find(key_path(".io-max", device));
    auto numbers = parse_device_numbers(device);
    if (!numbers)
      report.error(doc.file, where, Code::CgroupLimit,
                   "io-max device " + quote(device) +
                       " must be MAJOR:MINOR, the numbers of a block device (lsblk shows them)");
    else if (auto [seen, fresh] = devices.emplace(*numbers, device); !fresh)
      report.error(
          doc.file, where, Code::CgroupLimit,
          "io-max device " + quote(device) + " is the same device as " + quote(seen->second));
    if (limits == IoLimits{})
      report.error(doc.file, where, Code::CgroupLimit,
                   "io-max device " + quote(device) +
                       " has no limit: give read-bps, write-bps, read-iops or write-iops");
  }
  if (!absolute_clean(c.workdir))
    report.error(doc.file, doc.marks.find(".workdir"), Code::BadPath,
                 "workdir " + quote(c.workdir) + " must be absolute without . or ..");
  if (c.secret_environ_file && !c.secret_environ.empty())
    report.error(doc.file, doc.marks.find(".secret-environ-file"), Code::SecretConfig,
                 "secret-environ and secret-environ-file settings are mutually exclusive");
  for (const auto& [name, values] : c.secret_environ) {
    for (const auto& value : values) {
      if (auto parsed = crypt::parse_v2(value); !parsed) {
        report.error(doc.file, doc.marks.find(key_path(".secret-environ", name) + ":value"),
                     Code::BadSecret, "secret " + quote(name) + ": " + parsed.error());
      }
    }
  }
}

}  // namespace lithos::policy::check_internal

namespace lithos::policy {

void check_container_alone(const Loaded<ContainerCodec>& container, Diagnostics& diags) {
  check_internal::Reporter report(diags);
  check_internal::check_container_rules(container, report);
}

}  // namespace lithos::policy
