// Properties of the configuration summary that crosses the pipe from the
// tree's reading child (runtime/src/tree_wire.cpp):
//  * decode(encode(x)) == x for any names, identities (any bytes, the
//    separators `:` and `;` and digits included), ports, flags and limits;
//  * a truncated message (a child that died mid-write) never decodes;
//  * arbitrary bytes never crash the decoder (run under the sanitizers).
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include "../runtime/src/tree_support.hpp"

namespace {

using lithos::runtime::tree_detail::decode_configuration;
using lithos::runtime::tree_detail::encode_configuration;
using lithos::runtime::tree_detail::LoadedConfiguration;
using lithos::runtime::tree_detail::PlanSummary;
namespace policy = lithos::policy;

rc::Gen<std::string> text() {
  return rc::gen::oneOf(rc::gen::string<std::string>(),
                        rc::gen::container<std::string>(rc::gen::element(':', ';', '1', '\0')));
}

template <class T>
rc::Gen<std::optional<T>> optional_of(rc::Gen<T> gen) {
  return rc::gen::map(rc::gen::maybe(std::move(gen)), [](rc::Maybe<T> m) {
    return m ? std::optional<T>(std::move(*m)) : std::nullopt;
  });
}

rc::Gen<policy::SocketPlan> socket_plan() {
  return rc::gen::apply(
      [](std::uint16_t port, bool v6, std::array<std::uint8_t, 16> bytes, std::uint32_t fd,
         std::array<bool, 4> flags, std::uint32_t backlog) {
        policy::SocketPlan sp;
        sp.port = port;
        sp.host.v6 = v6;
        sp.host.bytes = bytes;
        sp.fd = fd;
        sp.reuse_addr = flags[0];
        sp.reuse_port = flags[1];
        sp.set_non_block = flags[2];
        sp.host_side = flags[3];
        sp.listen_backlog = backlog;
        return sp;
      },
      rc::gen::arbitrary<std::uint16_t>(), rc::gen::arbitrary<bool>(),
      rc::gen::arbitrary<std::array<std::uint8_t, 16>>(), rc::gen::arbitrary<std::uint32_t>(),
      rc::gen::arbitrary<std::array<bool, 4>>(), rc::gen::arbitrary<std::uint32_t>());
}

rc::Gen<policy::CgroupPlan> cgroup_plan() {
  return rc::gen::apply(
      [](std::string parent, std::string scope, std::vector<std::string> controllers,
         std::uint64_t memory, std::uint64_t shares, std::optional<std::uint64_t> pids) {
        policy::CgroupPlan cg;
        cg.parent = std::move(parent);
        cg.scope = std::move(scope);
        cg.controllers = std::move(controllers);
        cg.memory_limit = memory;
        cg.cpu_shares = shares;
        cg.pids_limit = pids;
        return cg;
      },
      text(), text(), rc::gen::container<std::vector<std::string>>(text()),
      rc::gen::arbitrary<std::uint64_t>(), rc::gen::arbitrary<std::uint64_t>(),
      optional_of(rc::gen::arbitrary<std::uint64_t>()));
}

rc::Gen<PlanSummary> summary() {
  return rc::gen::apply(
      [](std::array<std::string, 4> names, std::int64_t restart, std::int64_t kill,
         std::vector<policy::SocketPlan> sockets, std::uint32_t uid, std::uint32_t gid,
         std::optional<policy::CgroupPlan> cgroup, std::uint64_t fileno_limit) {
        PlanSummary s;
        s.name = names[0];
        s.sandbox = names[1];
        s.child = names[2];
        s.identity = names[3];
        s.restart_timeout_ms = restart;
        s.kill_timeout_ms = kill;
        s.sockets = std::move(sockets);
        s.socket_owner = {uid, gid};
        s.cgroup = std::move(cgroup);
        s.fileno_limit = fileno_limit;
        return s;
      },
      rc::gen::apply(
          [](std::string a, std::string b, std::string c, std::string d) {
            return std::array<std::string, 4>{a, b, c, d};
          },
          text(), text(), text(), text()),
      rc::gen::arbitrary<std::int64_t>(), rc::gen::arbitrary<std::int64_t>(),
      rc::gen::container<std::vector<policy::SocketPlan>>(socket_plan()),
      rc::gen::arbitrary<std::uint32_t>(), rc::gen::arbitrary<std::uint32_t>(),
      optional_of(cgroup_plan()), rc::gen::arbitrary<std::uint64_t>());
}

rc::Gen<LoadedConfiguration> loaded() {
  return rc::gen::apply(
      [](std::vector<PlanSummary> instances, std::vector<std::string> unreadable,
         std::int64_t sandboxes, std::vector<std::pair<std::string, std::string>> config_log) {
        return LoadedConfiguration{std::move(instances), std::move(unreadable), sandboxes,
                                   std::move(config_log)};
      },
      rc::gen::container<std::vector<PlanSummary>>(summary()),
      rc::gen::container<std::vector<std::string>>(text()), rc::gen::arbitrary<std::int64_t>(),
      rc::gen::container<std::vector<std::pair<std::string, std::string>>>(
          rc::gen::pair(text(), text())));
}

RC_GTEST_PROP(TreeWire, RoundTrips, ()) {
  auto x = *loaded();
  auto back = decode_configuration(encode_configuration(x));
  RC_ASSERT(back.has_value());
  RC_ASSERT(*back == x);
}

RC_GTEST_PROP(TreeWire, TruncatedNeverDecodes, ()) {
  auto wire = encode_configuration(*loaded());
  auto cut = *rc::gen::inRange<std::size_t>(0, wire.size());
  RC_ASSERT(!decode_configuration(std::string_view(wire).substr(0, cut)).has_value());
}

RC_GTEST_PROP(TreeWire, ArbitraryBytesNeverCrash, ()) {
  auto bytes = *rc::gen::oneOf(
      rc::gen::string<std::string>(),
      rc::gen::container<std::string>(rc::gen::element('0', '1', '9', ':', ';', '-', 'x')));
  (void)decode_configuration(bytes);
}

TEST(TreeWire, EmptyConfigurationIsNotEmptyBytes) {
  LoadedConfiguration none;
  auto wire = encode_configuration(none);
  EXPECT_EQ(wire, "0;0;0;0;");
  EXPECT_EQ(decode_configuration(wire), none);
  EXPECT_FALSE(decode_configuration(""));  // a child that wrote nothing
}

}  // namespace
