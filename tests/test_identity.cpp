// The instance identity and the config-log JSON (identity.hpp): one encoder,
// byte for byte what the three writers it replaced wrote (kept in
// identity_reference.hpp), and an identity reads back as what was written.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "identity_reference.hpp"
#include "lithos/policy/check.hpp"

using namespace lithos::policy;

namespace {

std::optional<scalars::IpAddress> ip(const char* text) {
  auto parsed = scalars::parse_ip(text);
  if (!parsed) throw std::runtime_error(std::string("bad test address ") + text);
  return *parsed;
}

ProcessEntry entry(std::string image, std::string config) {
  ProcessEntry e;
  e.image = std::move(image);
  e.config = std::move(config);
  return e;
}

// Entries covering every member set and unset, and strings of each kind the
// writers treat apart: printable ASCII (the old fast path), `"` and `\`,
// control characters, non-ASCII UTF-8, DEL and invalid UTF-8 (replaced).
std::vector<ProcessEntry> representative_entries() {
  std::vector<ProcessEntry> out;
  out.push_back(entry("demo.v1", "/config/web.yaml"));
  out.push_back(entry("", ""));
  {
    auto e = entry("demo/v2", "/config/web.yaml");
    e.variables = {{"greeting", "hello world"}, {"port", "8080"}, {"empty", ""}};
    out.push_back(e);
  }
  {
    auto e = entry("img", "/c");
    e.extra_secrets_namespaces = {"", "team-a", "team-b"};
    out.push_back(e);
  }
  {
    auto e = entry("a\"b\\c", "/with space/and:colon#hash");
    e.variables = {{"q\"uote", "back\\slash"}, {"brace", "@{not.a.variable}"}};
    e.extra_secrets_namespaces = {"\"", "\\"};
    out.push_back(e);
  }
  {
    auto e = entry("ctl\x01\x1f\n\t\r\b\f", "/del\x7f");
    e.variables = {{"tab\tkey", "line\nvalue"}};
    out.push_back(e);
  }
  {
    auto e = entry("caf\xc3\xa9", "/\xe2\x82\xac/\xf0\x9f\x98\x80");
    e.variables = {{"\xc3\xbc", "\xe2\x80\xa8"}};
    e.extra_secrets_namespaces = {"\xef\xbb\xbf"};
    out.push_back(e);
  }
  {
    auto e = entry("bad\xff", "/trunc\xc3");
    e.variables = {{"k\x80", "v\xfe\xfe"}};
    e.extra_secrets_namespaces = {"\xed\xa0\x80"};  // a UTF-16 surrogate
    out.push_back(e);
  }
  {
    auto e = entry("many", "/c");
    e.instances = std::numeric_limits<std::uint64_t>::max();
    e.kind = ProcessKind::Command;
    e.ip_addresses = {*ip("10.0.0.1"), *ip("fe80::1"), *ip("0.0.0.0")};
    out.push_back(e);
  }
  return out;
}

std::vector<std::optional<scalars::IpAddress>> addresses() {
  return {std::nullopt, ip("192.168.1.20"), ip("2001:db8::1"), ip("::")};
}

}  // namespace

TEST(IdentityJson, FixedBytes) {
  EXPECT_EQ(
      instance_identity(entry("demo.v1", "/config/web.yaml"), std::nullopt, ProcessKind::Daemon),
      R"({"instances":1,"image":"demo.v1","config":"/config/web.yaml","kind":"Daemon"})");

  auto e = entry("demo.v1", "/config/web.yaml");
  e.variables = {{"port", "8080"}, {"greeting", "hello"}};
  e.extra_secrets_namespaces = {"b", "a"};
  e.instances = 7;                     // never in an identity
  e.ip_addresses = {*ip("10.0.0.9")};  // nor the entry's list
  EXPECT_EQ(instance_identity(e, ip("10.0.0.1"), ProcessKind::Command),
            R"({"instances":1,"image":"demo.v1","config":"/config/web.yaml",)"
            R"("variables":{"greeting":"hello","port":"8080"},)"
            R"("extra_secrets_namespaces":["b","a"],"ip_address":"10.0.0.1","kind":"Command"})");

  // Control characters escaped, other text as UTF-8, invalid bytes replaced.
  EXPECT_EQ(
      instance_identity(entry("t\x01\n\"\\\xc3\xa9", "/x\xff"), std::nullopt, ProcessKind::Daemon),
      "{\"instances\":1,\"image\":\"t\\u0001\\n\\\"\\\\\xc3\xa9\","
      "\"config\":\"/x\xef\xbf\xbd\",\"kind\":\"Daemon\"}");

  ProcessConfig config;
  config["web"] = e;
  config["cmd"] = entry("c", "/c");
  config["cmd"].kind = ProcessKind::Command;
  EXPECT_EQ(
      process_config_json(config),
      R"({"cmd":{"instances":1,"image":"c","config":"/c","kind":"Command"},)"
      R"("web":{"instances":7,"image":"demo.v1","config":"/config/web.yaml",)"
      R"("variables":{"greeting":"hello","port":"8080"},)"
      R"("extra_secrets_namespaces":["b","a"],"ip_addresses":["10.0.0.9"],"kind":"Daemon"}})");
  EXPECT_EQ(process_config_json({}), "{}");
}

TEST(IdentityJson, SameBytesAsTheFormerWriters) {
  const auto entries = representative_entries();
  for (std::size_t i = 0; i < entries.size(); ++i) {
    for (const auto& address : addresses()) {
      for (auto kind : {ProcessKind::Daemon, ProcessKind::Command}) {
        EXPECT_EQ(instance_identity(entries[i], address, kind),
                  reference::instance_identity(entries[i], address, kind))
            << "entry " << i;
      }
    }
  }
  ProcessConfig config;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    ProcessConfig one{{"entry" + std::to_string(i), entries[i]}};
    EXPECT_EQ(process_config_json(one), reference::process_config_json(one)) << "entry " << i;
    config["e" + std::to_string(i)] = entries[i];
  }
  config["name \"with\" \x01 and \xff"] = entries[0];
  EXPECT_EQ(process_config_json(config), reference::process_config_json(config));
}

// What the tree writes is what the knot reads back (parse_instance_identity),
// for every string a config can hold.
TEST(IdentityJson, ReadsBackAsWritten) {
  const auto entries = representative_entries();
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const auto& e = entries[i];
    if (i == 5 || i == 7) continue;  // DEL or invalid UTF-8: no config holds them
    for (const auto& address : addresses()) {
      for (auto kind : {ProcessKind::Daemon, ProcessKind::Command}) {
        Diagnostics diags;
        auto back = parse_instance_identity(instance_identity(e, address, kind), diags);
        ASSERT_TRUE(back) << "entry " << i << ": "
                          << (diags.empty() ? "" : diags.items()[0].message);
        EXPECT_EQ(*back, (InstanceIdentity{1, e.image, e.config, e.variables,
                                           e.extra_secrets_namespaces, address, kind}))
            << "entry " << i;
      }
    }
  }
}
