// Properties of the identity encoder (identity.hpp), over random entries:
//  * it writes the same bytes as the three writers it replaced
//    (tests/identity_reference.hpp), for the instance identity and for the
//    config-log JSON, whatever the strings hold (invalid UTF-8 included);
//  * an identity of strings a config can hold reads back as written.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <string>
#include <vector>

#include "generators.hpp"
#include "identity_reference.hpp"
#include "lithos/policy/check.hpp"

namespace {

using namespace lithos::policy;
using lithos::proptest::gen_value;
using lithos::proptest::uniform;

// A string of a random entry, sometimes with a byte that is not UTF-8 (the
// writers replace it) or DEL (written as itself). Called inside a property.
std::string odd_bytes(std::string s) {
  switch (*uniform(0, 6)) {
    case 0:
      return s + "\xff";
    case 1:
      return "\xc3" + s;
    case 2:
      return s + "\x7f";
    default:
      return s;
  }
}

ProcessEntry with_odd_bytes(ProcessEntry e) {
  e.image = odd_bytes(e.image);
  e.config = odd_bytes(e.config);
  std::map<std::string, std::string> variables;
  for (const auto& [k, v] : e.variables) variables[odd_bytes(k)] = odd_bytes(v);
  e.variables = variables;
  for (auto& ns : e.extra_secrets_namespaces) ns = odd_bytes(ns);
  return e;
}

// Non-empty text as configs hold it: names, paths, values with quotes,
// backslashes, escaped control characters and non-ASCII letters. (The
// reader's own limits, such as an empty variable name next to another one
// in a flow mapping, or DEL, are the reader's, not the encoder's.)
rc::Gen<std::string> config_text() {
  static const std::vector<std::string> pieces = {"a",
                                                  "Z",
                                                  "9",
                                                  "-",
                                                  "_",
                                                  ".",
                                                  "/",
                                                  " ",
                                                  "\"",
                                                  "\\",
                                                  ":",
                                                  "#",
                                                  ",",
                                                  "@{x}",
                                                  "[",
                                                  "}",
                                                  "\t",
                                                  "\n",
                                                  "\x01",
                                                  "\xc3\xa9",
                                                  "\xe2\x82\xac",
                                                  "\xf0\x9f\x98\x80"};
  return rc::gen::map(rc::gen::mapcat(uniform<std::size_t>(1, 6),
                                      [](std::size_t n) {
                                        return rc::gen::container<std::vector<std::string>>(
                                            n, rc::gen::elementOf(pieces));
                                      }),
                      [](const std::vector<std::string>& parts) {
                        std::string out;
                        for (const auto& p : parts) out += p;
                        return out;
                      });
}

}  // namespace

RC_GTEST_PROP(IdentityJsonProp, SameBytesAsTheFormerWriters, ()) {
  auto e = with_odd_bytes(*gen_value<schema::Struct<ProcessEntry>>());
  std::optional<scalars::IpAddress> ip;
  if (*uniform(0, 4) != 0) ip = *gen_value<schema::IpCodec>();
  auto kind = *gen_value<schema::Enum<ProcessKind>>();
  RC_ASSERT(instance_identity(e, ip, kind) == reference::instance_identity(e, ip, kind));
  ProcessConfig config{{odd_bytes("entry"), e}};
  for (auto& [name, other] : *gen_value<ProcessConfigCodec>()) config[name] = other;
  RC_ASSERT(process_config_json(config) == reference::process_config_json(config));
}

RC_GTEST_PROP(IdentityJsonProp, ReadsBackAsWritten, ()) {
  InstanceIdentity identity;
  identity.image = *config_text();
  identity.config = *config_text();
  for (std::size_t i = *uniform<std::size_t>(0, 4); i > 0; --i)
    identity.variables[*config_text()] = *config_text();
  identity.extra_secrets_namespaces = *lithos::proptest::small_vector(config_text());
  if (*uniform(0, 4) != 0) identity.ip_address = *gen_value<schema::IpCodec>();
  identity.kind = *gen_value<schema::Enum<ProcessKind>>();
  ProcessEntry e;
  e.image = identity.image;
  e.config = identity.config;
  e.variables = identity.variables;
  e.extra_secrets_namespaces = identity.extra_secrets_namespaces;
  const auto text = instance_identity(e, identity.ip_address, identity.kind);
  Diagnostics diags;
  auto back = parse_instance_identity(text, diags);
  RC_LOG() << text << "\n" << (diags.empty() ? "" : diags.items()[0].message) << "\n";
  RC_ASSERT(back.has_value());
  RC_ASSERT(*back == identity);
}
