// The instance identity (docs/tree.md, "The loop") and the config-log JSON of
// a process config (docs/operations.md, "Logs"): one compact JSON encoder that
// walks the schema field tables, so both say each key as the reader spells it.
#include "lithos/policy/identity.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>

namespace lithos::policy {

std::optional<InstanceIdentity> parse_instance_identity(std::string_view text, Diagnostics& diags) {
  auto doc = decode_text<schema::Struct<InstanceIdentity>>(text, "--config", diags);
  if (!doc) return std::nullopt;
  return doc->value;
}

namespace {

// Strings that nlohmann's dump writes as themselves, with only `"` and `\`
// escaped: printable ASCII. Anything else takes the nlohmann path below.
bool plain_json_text(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c <= 0x7E; });
}

// Compact JSON, byte for byte what nlohmann::ordered_json's dump(-1) with
// invalid UTF-8 replaced writes for the same values: identities are compared
// as bytes (the tree adopts a running instance whose identity is unchanged,
// docs/tree.md), so the first writers' output is kept exactly.
class JsonOut {
 public:
  void open(char bracket) {
    out_ += bracket;
    fresh_ = true;
  }
  void close(char bracket) {
    out_ += bracket;
    fresh_ = false;
  }
  // Before each member of an object.
  void key(std::string_view name) {
    separate();
    string(name);
    out_ += ':';
    fresh_ = true;
  }
  // Before each item of an array.
  void item() { separate(); }
  void string(std::string_view s) {
    if (plain_json_text(s)) {
      out_ += '"';
      for (char c : s) {
        if (c == '"' || c == '\\') out_ += '\\';
        out_ += c;
      }
      out_ += '"';
    } else {
      // Control characters, non-ASCII text and invalid UTF-8: nlohmann's
      // escaping (a string is escaped alike alone or inside an object).
      out_ += nlohmann::ordered_json(std::string(s))
                  .dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
    }
    fresh_ = false;
  }
  template <class N>
  void number(N n) {
    out_ += std::to_string(n);
    fresh_ = false;
  }
  std::string take() { return std::move(out_); }

 private:
  void separate() {
    if (!fresh_) out_ += ',';
  }
  std::string out_;
  bool fresh_ = true;
};

template <class C>
inline constexpr bool is_seq = false;
template <class C>
inline constexpr bool is_seq<schema::Seq<C>> = true;
template <class C>
inline constexpr bool is_map = false;
template <class C>
inline constexpr bool is_map<schema::Map<C>> = true;
template <class C>
inline constexpr bool is_enum = false;
template <class E>
inline constexpr bool is_enum<schema::Enum<E>> = true;
template <class C>
inline constexpr bool is_numeric = false;
template <class T, std::int64_t Min, std::int64_t Max>
inline constexpr bool is_numeric<schema::Numeric<T, Min, Max>> = true;
template <class C>
struct inner_codec;
template <class C>
struct inner_codec<schema::Seq<C>> {
  using type = C;
};
template <class C>
struct inner_codec<schema::Map<C>> {
  using type = C;
};

// A value as its codec reads it back: the same text a YAML config would hold.
template <class C>
void write_value(JsonOut& out, const typename C::value_type& v) {
  if constexpr (is_seq<C>) {
    out.open('[');
    for (const auto& item : v) {
      out.item();
      write_value<typename inner_codec<C>::type>(out, item);
    }
    out.close(']');
  } else if constexpr (is_map<C>) {
    out.open('{');
    for (const auto& [name, item] : v) {
      out.key(name);
      write_value<typename inner_codec<C>::type>(out, item);
    }
    out.close('}');
  } else if constexpr (std::is_same_v<C, schema::Str>) {
    out.string(v);
  } else if constexpr (std::is_same_v<C, schema::IpCodec>) {
    out.string(scalars::format_ip(v));
  } else if constexpr (is_enum<C>) {
    out.string(C::name_of(v));
  } else if constexpr (is_numeric<C>) {
    out.number(v);
  } else {
    static_assert(!sizeof(C), "no JSON form for this codec yet");
  }
}

// One field, under its underscore spelling. An unset optional and an empty
// list or mapping are left out (the reader takes them as their default);
// every scalar is written.
template <class F, class S>
void write_field(JsonOut& out, const S& value, const F& field) {
  using C = typename F::codec;
  const auto& member = value.*field.member;
  if constexpr (requires { member.has_value(); }) {
    if (!member) return;
    out.key(field.name);
    write_value<C>(out, *member);
  } else {
    if constexpr (is_seq<C> || is_map<C>)
      if (member.empty()) return;
    out.key(field.name);
    write_value<C>(out, member);
  }
}

// The fields of Schema<S> as a JSON object, in the order `keys` gives: the
// order of the first writers, frozen with the bytes (it is not the table's
// for a process entry, whose `kind` comes last).
template <class S, std::size_t N>
void write_struct(JsonOut& out, const S& value, const std::string_view (&keys)[N]) {
  out.open('{');
  for (std::string_view key : keys)
    std::apply(
        [&](const auto&... field) {
          ((field.name == key ? write_field(out, value, field) : void()), ...);
        },
        Schema<S>::fields);
  out.close('}');
}

// Every field of the table is placed, once: a new field of the identity or
// of a process entry fails the build here until it is given a place.
template <class S, std::size_t N>
constexpr bool places_every_field(const std::string_view (&keys)[N]) {
  constexpr std::size_t fields = std::tuple_size_v<std::decay_t<decltype(Schema<S>::fields)>>;
  if (N != fields) return false;
  for (std::size_t i = 0; i < N; ++i) {
    const bool known = std::apply(
        [&](const auto&... field) { return ((field.name == keys[i]) || ...); }, Schema<S>::fields);
    if (!known) return false;
    for (std::size_t j = 0; j < i; ++j)
      if (keys[j] == keys[i]) return false;
  }
  return true;
}

constexpr std::string_view kIdentityKeys[] = {
    "instances", "image", "config", "variables", "extra_secrets_namespaces", "ip_address", "kind"};
constexpr std::string_view kConfigLogKeys[] = {
    "instances",    "image", "config", "variables", "extra_secrets_namespaces",
    "ip_addresses", "kind"};
static_assert(places_every_field<InstanceIdentity>(kIdentityKeys));
static_assert(places_every_field<ProcessEntry>(kConfigLogKeys));

}  // namespace

std::string instance_identity(const ProcessEntry& entry, std::optional<scalars::IpAddress> ip,
                              ProcessKind kind) {
  // One instance of the entry: `instances` is always 1 here.
  const InstanceIdentity identity{
      1, entry.image, entry.config, entry.variables, entry.extra_secrets_namespaces, ip, kind};
  JsonOut out;
  write_struct(out, identity, kIdentityKeys);
  return out.take();
}

std::string process_config_json(const ProcessConfig& config) {
  JsonOut out;
  out.open('{');
  for (const auto& [name, entry] : config) {
    out.key(name);
    write_struct(out, entry, kConfigLogKeys);
  }
  out.close('}');
  return out.take();
}

}  // namespace lithos::policy
