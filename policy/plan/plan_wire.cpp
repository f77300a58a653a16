// The launch plan's wire format (plan_wire.hpp). One field list, `visit`,
// drives both directions, so the encoder and the decoder cannot disagree on
// the order of fields.
#include "lithos/policy/plan_wire.hpp"

#include <algorithm>
#include <charconv>
#include <limits>
#include <map>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

namespace lithos::policy {

namespace {

class Writer {
 public:
  static constexpr bool kReading = false;
  // The tree encodes a plan per instance (thousands at a start): digits go
  // straight into the output, with no string per number.
  Writer(std::string_view head, PlanEncoder::ProgramMemo* memo) : memo_(memo) {
    out_.reserve(kInitialCapacity);
    out_ += head;
  }
  // Defined after io(SeccompInstruction).
  void program(std::vector<SeccompInstruction>& v);
  void integer(std::uint64_t v, bool negative) { digits(v, negative ? "-" : "", ';'); }
  template <class T>
  void number(T& v) {
    if constexpr (std::is_signed_v<T>) {
      auto wide = static_cast<std::int64_t>(v);
      integer(wide < 0 ? 0 - static_cast<std::uint64_t>(wide) : static_cast<std::uint64_t>(wide),
              wide < 0);
    } else {
      integer(static_cast<std::uint64_t>(v), false);
    }
  }
  void text(std::string& v) {
    digits(v.size(), "", ':');
    out_ += v;
  }
  std::size_t count(std::size_t n) {
    integer(n, false);
    return n;
  }
  bool ok() const { return true; }
  std::string take() { return std::move(out_); }

 private:
  // A plan with the default seccomp program is about 8 KiB.
  static constexpr std::size_t kInitialCapacity = 16384;
  void digits(std::uint64_t v, std::string_view sign, char end) {
    char buf[24];
    char* at = std::copy(sign.begin(), sign.end(), buf);
    at = std::to_chars(at, buf + sizeof buf - 1, v).ptr;
    *at++ = end;
    out_.append(buf, at);
  }
  std::string out_;
  PlanEncoder::ProgramMemo* memo_;
};

class Reader {
 public:
  static constexpr bool kReading = true;
  explicit Reader(std::string_view in) : in_(in), size_(in.size()) {}

  template <class T>
  void number(T& v) {
    bool negative = !in_.empty() && in_.front() == '-';
    if (negative) in_.remove_prefix(1);
    std::uint64_t magnitude = digits(';');
    if (!ok_) return;
    // "-0" would decode to what "0" encodes: one spelling per value.
    if (negative && magnitude == 0) return fail("non-canonical integer -0");
    if constexpr (std::is_signed_v<T>) {
      constexpr auto max = static_cast<std::uint64_t>(std::numeric_limits<T>::max());
      if (magnitude > max + (negative ? 1 : 0)) return fail("integer out of range");
      v = negative ? static_cast<T>(0 - magnitude) : static_cast<T>(magnitude);
    } else {
      if (negative || magnitude > std::numeric_limits<T>::max())
        return fail("integer out of range");
      v = static_cast<T>(magnitude);
    }
  }
  void text(std::string& v) {
    std::uint64_t size = digits(':');
    if (!ok_) return;
    if (size > in_.size()) return fail("string runs past the end");
    v.assign(in_.substr(0, size));
    in_.remove_prefix(size);
  }
  // A count of elements still to come: each takes at least two bytes.
  std::size_t count(std::size_t) {
    std::uint64_t n = digits(';');
    if (ok_ && n > in_.size() / 2) fail("count larger than the bytes left");
    return ok_ ? static_cast<std::size_t>(n) : 0;
  }
  void fail(const char* why) {
    if (!ok_) return;
    ok_ = false;
    error_ = std::string(why) + " at byte " + std::to_string(size_ - in_.size());
  }
  bool ok() const { return ok_; }
  bool at_end() const { return in_.empty(); }
  const std::string& error() const { return error_; }

 private:
  std::uint64_t digits(char end) {
    if (!ok_) return 0;
    std::uint64_t v = 0;
    auto [ptr, ec] = std::from_chars(in_.data(), in_.data() + in_.size(), v);
    if (ec == std::errc::result_out_of_range) return fail("integer out of range"), 0;
    if (ec != std::errc{} || ptr == in_.data() + in_.size() || *ptr != end ||
        (ptr - in_.data() > 1 && in_.front() == '0'))
      return fail("malformed field"), 0;
    in_.remove_prefix(static_cast<std::size_t>(ptr - in_.data()) + 1);
    return v;
  }
  std::string_view in_;
  std::size_t size_;
  bool ok_ = true;
  std::string error_;
};

template <class IO>
void io(IO& w, bool& v) {
  int n = v ? 1 : 0;
  w.number(n);
  if constexpr (IO::kReading) {
    if (n != 0 && n != 1) w.fail("boolean out of range");
    v = n == 1;
  }
}
template <class IO, class T>
requires std::is_integral_v<T>
void io(IO& w, T& v) {
  w.number(v);
}
template <class IO>
void io(IO& w, std::string& v) {
  w.text(v);
}
// Enumerations: their underlying value, checked against the last one.
template <class E>
constexpr int kEnumLast = -1;
template <>
constexpr int kEnumLast<ProcessKind> = static_cast<int>(ProcessKind::Command);
template <>
constexpr int kEnumLast<ContainerKind> = static_cast<int>(ContainerKind::CommandOrDaemon);
template <>
constexpr int kEnumLast<MountPlan::Kind> = static_cast<int>(MountPlan::Kind::Tmpfs);
template <class IO, class E>
requires std::is_enum_v<E>
void io(IO& w, E& v) {
  static_assert(kEnumLast<E> >= 0, "every enumeration on the wire names its last value");
  int n = static_cast<int>(v);
  w.number(n);
  if constexpr (IO::kReading) {
    if (n < 0 || n > kEnumLast<E>) w.fail("enumeration out of range");
    v = static_cast<E>(n);
  }
}
template <class IO, class T>
void io(IO& w, std::optional<T>& v) {
  bool present = v.has_value();
  io(w, present);
  if constexpr (IO::kReading) {
    if (present && w.ok()) io(w, v.emplace());
  } else if (present) {
    io(w, *v);
  }
}
template <class IO, class T>
void io(IO& w, std::vector<T>& v) {
  std::size_t n = w.count(v.size());
  if constexpr (IO::kReading) {
    v.clear();
    for (std::size_t i = 0; i < n && w.ok(); ++i) io(w, v.emplace_back());
  } else {
    for (auto& item : v) io(w, item);
  }
}
template <class IO, class A, class B>
void io(IO& w, std::pair<A, B>& v) {
  io(w, v.first);
  io(w, v.second);
}
template <class IO, class K, class V>
void io(IO& w, std::map<K, V>& v) {
  std::size_t n = w.count(v.size());
  if constexpr (IO::kReading) {
    v.clear();
    for (std::size_t i = 0; i < n && w.ok(); ++i) {
      std::pair<K, V> item;
      io(w, item);
      if (!w.ok()) break;
      // Keys in strictly increasing order, as the encoder writes a map.
      if (!v.empty() && !(v.rbegin()->first < item.first)) return w.fail("map keys out of order");
      v.emplace_hint(v.end(), std::move(item));
    }
  } else {
    for (auto& [key, value] : v) {
      K k = key;
      io(w, k);
      io(w, value);
    }
  }
}
template <class IO, std::size_t N>
void io(IO& w, std::array<std::uint8_t, N>& v) {
  for (auto& b : v) io(w, b);
}

template <class IO>
void io(IO& w, IdMapEntry& v) {
  io(w, v.inside);
  io(w, v.outside);
  io(w, v.count);
}
template <class IO>
void io(IO& w, scalars::IpAddress& v) {
  io(w, v.v6);
  io(w, v.bytes);
}
template <class IO>
void io(IO& w, MountPlan& v) {
  io(w, v.kind);
  io(w, v.volume);
  io(w, v.source);
  io(w, v.target);
  io(w, v.data);
  io(w, v.create);
  io(w, v.mode);
  io(w, v.owner_uid);
  io(w, v.owner_gid);
  io(w, v.confine_to);
}
template <class IO>
void io(IO& w, SocketPlan& v) {
  io(w, v.port);
  io(w, v.host);
  io(w, v.fd);
  io(w, v.reuse_addr);
  io(w, v.reuse_port);
  io(w, v.set_non_block);
  io(w, v.listen_backlog);
  io(w, v.host_side);
}
template <class IO>
void io(IO& w, NetworkPlan& v) {
  io(w, v.bridge);
  io(w, v.ip);
  io(w, v.prefix);
  io(w, v.gateway);
  io(w, v.host_interface);
  io(w, v.container_interface);
  io(w, v.after_setup_command);
}
template <class IO>
void io(IO& w, SecretsPlan& v) {
  io(w, v.private_key_path);
  io(w, v.allowed_namespaces);
  io(w, v.values);
  io(w, v.file);
}
template <class IO>
void io(IO& w, IoLimits& v) {
  io(w, v.read_bps);
  io(w, v.write_bps);
  io(w, v.read_iops);
  io(w, v.write_iops);
}
template <class IO>
void io(IO& w, IoMaxPlan& v) {
  io(w, v.major);
  io(w, v.minor);
  io(w, v.limits);
}
template <class IO>
void io(IO& w, CgroupPlan& v) {
  io(w, v.parent);
  io(w, v.scope);
  io(w, v.controllers);
  io(w, v.memory_limit);
  io(w, v.cpu_shares);
  io(w, v.pids_limit);
  io(w, v.memory_high);
  io(w, v.memory_low);
  io(w, v.memory_oom_group);
  io(w, v.cpu_quota_us);
  io(w, v.cpu_period_us);
  io(w, v.io_weight);
  io(w, v.io_max);
}
template <class IO>
void io(IO& w, SeccompInstruction& v) {
  io(w, v.code);
  io(w, v.jt);
  io(w, v.jf);
  io(w, v.k);
}
// The program's bytes are the same for every plan with an equal program:
// an encoder that has written them once appends them again.
void Writer::program(std::vector<SeccompInstruction>& v) {
  if (memo_ && memo_->valid && memo_->program == v) {
    out_ += memo_->bytes;
    return;
  }
  const std::size_t from = out_.size();
  count(v.size());
  for (auto& instruction : v) io(*this, instruction);
  if (memo_) {
    memo_->program = v;
    memo_->bytes.assign(out_, from);
    memo_->valid = true;
  }
}
void io(Writer& w, std::vector<SeccompInstruction>& v) {
  w.program(v);
}

template <class IO>
void io(IO& w, SeccompPlan& v) {
  io(w, v.enabled);
  io(w, v.denied);
  io(w, v.argument_rules);
  io(w, v.program);
  io(w, v.skipped);
  io(w, v.namespace_rules);
}
template <class IO>
void io(IO& w, LandlockPlan& v) {
  io(w, v.enabled);
  io(w, v.writable);
  io(w, v.write_files);
  io(w, v.restrict_bind);
  io(w, v.bind_ports);
  io(w, v.scope_abstract_unix);
  io(w, v.scope_signals);
}

}  // namespace

// Declaration order of InstancePlan (plan.hpp).
template <class IO>
static void visit_plan(IO& w, InstancePlan& p) {
  io(w, p.name);
  io(w, p.sandbox);
  io(w, p.child);
  io(w, p.index);
  io(w, p.kind);
  io(w, p.container_kind);
  io(w, p.identity);
  io(w, p.image_root);
  io(w, p.mount_root);
  io(w, p.state_dir);
  io(w, p.devfs_dir);
  io(w, p.mounts);
  io(w, p.mount_resolv_conf);
  io(w, p.require_resolv_conf);
  io(w, p.resolv_conf_source);
  io(w, p.mount_hosts);
  io(w, p.require_hosts);
  io(w, p.hosts_copy_source);
  io(w, p.hosts_localhost);
  io(w, p.hosts_public_hostname);
  io(w, p.additional_hosts);
  io(w, p.write_hosts);
  io(w, p.uid);
  io(w, p.gid);
  io(w, p.uid_map);
  io(w, p.gid_map);
  io(w, p.user_namespace);
  io(w, p.executable);
  io(w, p.argv);
  io(w, p.environ);
  io(w, p.pid_variables);
  io(w, p.workdir);
  io(w, p.secrets);
  io(w, p.fileno_limit);
  io(w, p.cgroup);
  io(w, p.capabilities);
  io(w, p.capability_mask);
  io(w, p.seccomp);
  io(w, p.landlock);
  io(w, p.apparmor_profile);
  io(w, p.selinux_label);
  io(w, p.network);
  io(w, p.sockets);
  io(w, p.restart_timeout_ms);
  io(w, p.kill_timeout_ms);
  io(w, p.restart_process_only);
  io(w, p.normal_exit_codes);
  io(w, p.interactive);
  io(w, p.stdout_stderr_file);
  io(w, p.stdio_log);
  io(w, p.log_file);
  io(w, p.log_level);
  io(w, p.syslog_facility);
  io(w, p.syslog_ident);
}

namespace {
std::string encode_with(const InstancePlan& plan, PlanEncoder::ProgramMemo* memo) {
  Writer w(kPlanMagic, memo);
  // The writer only reads; visit_plan is shared with the reader.
  visit_plan(w, const_cast<InstancePlan&>(plan));
  return w.take();
}
}  // namespace

std::string PlanWire::encode(const InstancePlan& plan) {
  return encode_with(plan, nullptr);
}

std::string PlanEncoder::encode(const InstancePlan& plan) {
  return encode_with(plan, &memo_);
}

Result<InstancePlan> PlanWire::decode(std::string_view bytes) {
  if (bytes.size() > kMaxPlanBytes)
    return fail("plan of " + std::to_string(bytes.size()) + " bytes is larger than the limit of " +
                std::to_string(kMaxPlanBytes));
  if (bytes.substr(0, kPlanMagic.size()) != kPlanMagic)
    return fail(std::string(bytes.substr(0, 11) == kPlanMagic.substr(0, 11)
                                ? "plan of another version"
                                : "not a launch plan (no \"lithos-plan\" header)"));
  Reader r(bytes.substr(kPlanMagic.size()));
  InstancePlan plan;
  visit_plan(r, plan);
  if (!r.ok()) return fail("malformed plan: " + r.error());
  if (!r.at_end()) return fail(std::string("malformed plan: trailing bytes after the last field"));
  // What the knot's own safety relies on, beyond the framing.
  if (plan.seccomp.program.size() > 4096)
    return fail(std::string("malformed plan: seccomp program longer than 4096 instructions"));
  if (plan.argv.empty()) return fail(std::string("malformed plan: empty argv"));
  return plan;
}

}  // namespace lithos::policy
