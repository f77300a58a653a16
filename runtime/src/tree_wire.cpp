// The configuration summary crossing the pipe from the tree's reading child
// (tree_support.hpp). Numbers are `N;`, strings `LEN:BYTES`, so nothing in a
// name or an identity needs escaping.
#include <algorithm>
#include <charconv>
#include <limits>

#include "tree_support.hpp"

namespace lithos::runtime::tree_detail {

namespace {

class Writer {
 public:
  void number(std::int64_t v) {
    out_ += std::to_string(v);
    out_ += ';';
  }
  void flag(bool v) { number(v ? 1 : 0); }
  void text(std::string_view v) {
    out_ += std::to_string(v.size());
    out_ += ':';
    out_ += v;
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool ok() const { return ok_; }
  bool at_end() const { return in_.empty(); }

  std::int64_t number() { return digits(';'); }
  bool flag() {
    auto v = number();
    if (v != 0 && v != 1) ok_ = false;
    return v == 1;
  }
  template <class T>
  T bounded() {
    auto v = number();
    if (v < static_cast<std::int64_t>(std::numeric_limits<T>::min()) ||
        static_cast<std::uint64_t>(v) > std::numeric_limits<T>::max())
      ok_ = false;
    return static_cast<T>(v);
  }
  std::string text() {
    auto size = digits(':');
    if (!ok_ || size < 0 || static_cast<std::uint64_t>(size) > in_.size()) {
      ok_ = false;
      return {};
    }
    std::string out(in_.substr(0, static_cast<std::size_t>(size)));
    in_.remove_prefix(static_cast<std::size_t>(size));
    return out;
  }
  // A count of records still to come: never more than the bytes left.
  std::size_t count() {
    auto n = number();
    if (n < 0 || static_cast<std::uint64_t>(n) > in_.size()) ok_ = false;
    return ok_ ? static_cast<std::size_t>(n) : 0;
  }

 private:
  std::int64_t digits(char end) {
    std::int64_t v = 0;
    auto [ptr, ec] = std::from_chars(in_.data(), in_.data() + in_.size(), v);
    if (!ok_ || ec != std::errc{} || ptr == in_.data() + in_.size() || *ptr != end) {
      ok_ = false;
      return 0;
    }
    in_.remove_prefix(static_cast<std::size_t>(ptr - in_.data()) + 1);
    return v;
  }

  std::string_view in_;
  bool ok_ = true;
};

}  // namespace

std::string encode_configuration(const LoadedConfiguration& loaded) {
  Writer w;
  w.number(loaded.sandboxes);
  w.number(static_cast<std::int64_t>(loaded.unreadable.size()));
  for (const auto& name : loaded.unreadable) w.text(name);
  w.number(static_cast<std::int64_t>(loaded.instances.size()));
  for (const auto& s : loaded.instances) {
    w.text(s.name);
    w.text(s.sandbox);
    w.text(s.child);
    w.text(s.identity);
    w.number(s.restart_timeout_ms);
    w.number(s.kill_timeout_ms);
    w.number(static_cast<std::int64_t>(s.fileno_limit));
    w.number(static_cast<std::int64_t>(s.plan_offset));
    w.number(static_cast<std::int64_t>(s.plan_size));
    w.number(static_cast<std::int64_t>(s.sockets.size()));
    for (const auto& sp : s.sockets) {
      w.number(sp.port);
      w.flag(sp.host.v6);
      w.text(std::string_view(reinterpret_cast<const char*>(sp.host.bytes.data()),
                              sp.host.bytes.size()));
      w.number(sp.fd);
      w.flag(sp.reuse_addr);
      w.flag(sp.reuse_port);
      w.flag(sp.set_non_block);
      w.number(sp.listen_backlog);
      w.flag(sp.host_side);
    }
    w.number(s.socket_owner.uid);
    w.number(s.socket_owner.gid);
    w.flag(s.cgroup.has_value());
    if (s.cgroup) {
      const auto& cg = *s.cgroup;
      w.text(cg.parent);
      w.text(cg.scope);
      w.number(static_cast<std::int64_t>(cg.controllers.size()));
      for (const auto& c : cg.controllers) w.text(c);
      // Limits are 64-bit unsigned: sent as their two's-complement bits.
      w.number(static_cast<std::int64_t>(cg.memory_limit));
      w.number(static_cast<std::int64_t>(cg.cpu_shares));
      w.flag(cg.pids_limit.has_value());
      if (cg.pids_limit) w.number(static_cast<std::int64_t>(*cg.pids_limit));
    }
  }
  w.number(static_cast<std::int64_t>(loaded.config_log.size()));
  for (const auto& [sandbox, line] : loaded.config_log) {
    w.text(sandbox);
    w.text(line);
  }
  return w.take();
}

std::optional<LoadedConfiguration> decode_configuration(std::string_view wire) {
  Reader r(wire);
  LoadedConfiguration out;
  out.sandboxes = r.number();
  for (std::size_t n = r.count(); r.ok() && n > 0; --n) out.unreadable.push_back(r.text());
  for (std::size_t n = r.count(); r.ok() && n > 0; --n) {
    PlanSummary s;
    s.name = r.text();
    s.sandbox = r.text();
    s.child = r.text();
    s.identity = r.text();
    s.restart_timeout_ms = r.number();
    s.kill_timeout_ms = r.number();
    s.fileno_limit = static_cast<std::uint64_t>(r.number());
    s.plan_offset = r.bounded<std::uint64_t>();
    s.plan_size = r.bounded<std::uint64_t>();
    for (std::size_t k = r.count(); r.ok() && k > 0; --k) {
      policy::SocketPlan sp;
      sp.port = r.bounded<std::uint16_t>();
      sp.host.v6 = r.flag();
      std::string bytes = r.text();
      if (bytes.size() != sp.host.bytes.size()) return std::nullopt;
      std::copy(bytes.begin(), bytes.end(), sp.host.bytes.begin());
      sp.fd = r.bounded<std::uint32_t>();
      sp.reuse_addr = r.flag();
      sp.reuse_port = r.flag();
      sp.set_non_block = r.flag();
      sp.listen_backlog = r.bounded<std::uint32_t>();
      sp.host_side = r.flag();
      s.sockets.push_back(sp);
    }
    s.socket_owner.uid = r.bounded<std::uint32_t>();
    s.socket_owner.gid = r.bounded<std::uint32_t>();
    if (r.flag()) {
      policy::CgroupPlan cg;
      cg.parent = r.text();
      cg.scope = r.text();
      for (std::size_t k = r.count(); r.ok() && k > 0; --k) cg.controllers.push_back(r.text());
      cg.memory_limit = static_cast<std::uint64_t>(r.number());
      cg.cpu_shares = static_cast<std::uint64_t>(r.number());
      if (r.flag()) cg.pids_limit = static_cast<std::uint64_t>(r.number());
      s.cgroup = std::move(cg);
    }
    if (!r.ok()) return std::nullopt;
    out.instances.push_back(std::move(s));
  }
  for (std::size_t n = r.count(); r.ok() && n > 0; --n) {
    std::string sandbox = r.text();
    std::string line = r.text();
    out.config_log.emplace_back(std::move(sandbox), std::move(line));
  }
  if (!r.ok() || !r.at_end()) return std::nullopt;
  return out;
}

}  // namespace lithos::runtime::tree_detail
