// RapidCheck generators derived from the schema field tables.
//
// `gen_value<Codec>()` yields values of `Codec::value_type` that the codec
// accepts. It is specialised per codec *kind*, never per config struct:
// `Struct<S>` walks `Schema<S>::fields`, `Tagged<variant>` walks the
// alternatives, `Enum<E>` draws from `Schema<E>::names`. A codec without a
// specialisation is a compile error, so a new codec kind cannot be silently
// skipped by the properties.
#pragma once

#include <rapidcheck.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "lithos/policy/config.hpp"
#include "lithos/policy/names.hpp"

namespace lithos::proptest {

namespace sc = lithos::policy::schema;
namespace scalars = lithos::policy::scalars;
using lithos::policy::Schema;

// rc::gen::inRange scales its range with RapidCheck's size (at size 0 it
// always yields `min`); counts and choices here use the whole range at every
// size, so distributions do not depend on RC_PARAMS or the test index.
template <class T>
rc::Gen<T> uniform(T min, T max_exclusive) {
  return rc::gen::resize(100, rc::gen::inRange<T>(min, max_exclusive));
}

// ------------------------------------------------------------------ text

// Pieces that stress quoting and scalar detection in the emitter and parser:
// null spellings, indicators, comments, quotes, whitespace at the ends, line
// breaks (including the Unicode ones libyaml treats as breaks), non-ASCII.
inline const std::vector<std::string>& awkward_pieces() {
  static const std::vector<std::string> pieces = {
      "",     "~",    "null",  "Null",   "NULL",   " ",      "  ",     "x",          "ab",
      "key",  "/var", "a b",   ":",      ": ",     "a:b",    "- x",    "-",          "#",
      " #c",  "\"",   "'",     "\\",     "\\n",    "é",      "日本",   "\U0001F600", "\n",
      "\n\n", "\r\n", "\t",    "@{x}",   "@{",     "[",      "]",      "{",          "}",
      ",",    "?",    "? x",   "!",      "!Tag",   "&a",     "*a",     "|",          ">",
      "%",    "`",    "<<",    "true",   "yes",    "0x10",   "07",     "1.5",        "---",
      "...",  "\x01", "\x7f",  "\u0085", "\u00a0", "\u2028", "\u2029", "\ufeff",     "\\u0041",
      "=",    "'a'",  "\"a\"", " - ",    "*",      "&",      "@",      "%YAML"};
  return pieces;
}

// Short strings glued from awkward pieces, or plain random printable text.
inline rc::Gen<std::string> awkward_string() {
  return rc::gen::oneOf(
      rc::gen::elementOf(awkward_pieces()),
      rc::gen::map(rc::gen::mapcat(uniform<std::size_t>(0, 5),
                                   [](std::size_t n) {
                                     return rc::gen::container<std::vector<std::string>>(
                                         n, rc::gen::elementOf(awkward_pieces()));
                                   }),
                   [](const std::vector<std::string>& parts) {
                     std::string out;
                     for (const auto& p : parts) out += p;
                     return out;
                   }),
      rc::gen::mapcat(uniform<std::size_t>(0, 12), [](std::size_t n) {
        return rc::gen::container<std::string>(n, uniform<char>(' ', '~' + 1));
      }));
}

inline rc::Gen<std::string> non_empty_awkward_string() {
  return rc::gen::suchThat(awkward_string(), [](const std::string& s) { return !s.empty(); });
}

// Up to `max` elements (exclusive bound + 1), independent of RapidCheck's size.
template <class T>
rc::Gen<std::vector<T>> small_vector(rc::Gen<T> item, std::size_t max = 3) {
  return rc::gen::mapcat(uniform<std::size_t>(0, max + 1), [item](std::size_t n) {
    return rc::gen::container<std::vector<T>>(n, item);
  });
}

// ------------------------------------------------------------------ codecs

template <class Codec>
struct GenValue;  // one specialisation per codec kind

template <class Codec>
rc::Gen<typename Codec::value_type> gen_value() {
  return GenValue<Codec>::gen();
}

template <>
struct GenValue<sc::Str> {
  static rc::Gen<std::string> gen() { return awkward_string(); }
};

// Codecs that only rename another for the key reference generate like it.
template <>
struct GenValue<sc::Path> : GenValue<sc::Str> {};

template <>
struct GenValue<sc::NonEmptyStr> {
  static rc::Gen<std::string> gen() { return non_empty_awkward_string(); }
};

template <>
struct GenValue<sc::Bool> {
  static rc::Gen<bool> gen() { return rc::gen::arbitrary<bool>(); }
};

// An integer in [lo, hi] (inclusive, any span of int64), edges favoured.
inline rc::Gen<std::int64_t> int_between(std::int64_t lo, std::int64_t hi) {
  const std::uint64_t span = static_cast<std::uint64_t>(hi) - static_cast<std::uint64_t>(lo);
  auto uniform = rc::gen::map(rc::gen::arbitrary<std::uint64_t>(), [lo, span](std::uint64_t r) {
    std::uint64_t off = span == std::numeric_limits<std::uint64_t>::max() ? r : r % (span + 1);
    return static_cast<std::int64_t>(static_cast<std::uint64_t>(lo) + off);
  });
  const std::int64_t zero = std::clamp<std::int64_t>(0, lo, hi);
  const std::int64_t one = std::clamp<std::int64_t>(1, lo, hi);
  return rc::gen::weightedOneOf<std::int64_t>(
      {{1, rc::gen::element(lo, hi, zero, one)}, {4, std::move(uniform)}});
}

template <class T, std::int64_t Min, std::int64_t Max>
struct GenValue<sc::Numeric<T, Min, Max>> {
  static rc::Gen<T> gen() {
    constexpr std::int64_t type_min =
        std::is_signed_v<T> ? static_cast<std::int64_t>(std::numeric_limits<T>::min()) : 0;
    constexpr std::int64_t lo = Min > type_min ? Min : type_min;
    return rc::gen::map(int_between(lo, Max), [](std::int64_t v) { return static_cast<T>(v); });
  }
};

template <>
struct GenValue<sc::Mode> : GenValue<sc::Numeric<std::uint32_t, 0, 01777>> {};

template <>
struct GenValue<sc::PlainU32> {
  static rc::Gen<std::uint32_t> gen() {
    return rc::gen::map(int_between(0, 0xffffffffLL),
                        [](std::int64_t v) { return static_cast<std::uint32_t>(v); });
  }
};

template <std::int64_t MaxSeconds>
struct GenValue<sc::Seconds<MaxSeconds>> {
  static rc::Gen<sc::Milliseconds> gen() {
    return rc::gen::map(int_between(0, MaxSeconds * 1000),
                        [](std::int64_t ms) { return sc::Milliseconds{ms}; });
  }
};

template <>
struct GenValue<sc::RangeCodec> {
  static rc::Gen<scalars::Range> gen() {
    return rc::gen::map(
        rc::gen::pair(gen_value<sc::PlainU32>(), gen_value<sc::PlainU32>()),
        [](std::pair<std::uint32_t, std::uint32_t> p) {
          return scalars::Range{std::min(p.first, p.second), std::max(p.first, p.second)};
        });
  }
};

inline rc::Gen<scalars::IpAddress> gen_ipv4() {
  return rc::gen::map(rc::gen::arbitrary<std::array<std::uint8_t, 4>>(),
                      [](const std::array<std::uint8_t, 4>& b) {
                        scalars::IpAddress ip;
                        std::copy(b.begin(), b.end(), ip.bytes.begin());
                        return ip;
                      });
}

// IPv6 with runs of zero groups common (so that `::` compression and the
// v4-mapped form are exercised).
inline rc::Gen<scalars::IpAddress> gen_ipv6() {
  return rc::gen::exec([] {
    scalars::IpAddress ip;
    ip.v6 = true;
    const int shape = *uniform(0, 4);
    for (std::size_t g = 0; g < 8; ++g) {
      std::uint16_t group = 0;
      if (shape == 0 || *uniform(0, 3) != 0) group = *rc::gen::arbitrary<std::uint16_t>();
      if (shape == 1 && g < 5) group = 0;  // ::ffff:a.b.c.d or ::x
      if (shape == 1 && g == 5) group = *rc::gen::element<std::uint16_t>(0, 0xffff);
      ip.bytes[2 * g] = static_cast<std::uint8_t>(group >> 8);
      ip.bytes[2 * g + 1] = static_cast<std::uint8_t>(group & 0xff);
    }
    return ip;
  });
}

template <>
struct GenValue<sc::IpCodec> {
  static rc::Gen<scalars::IpAddress> gen() { return rc::gen::oneOf(gen_ipv4(), gen_ipv6()); }
};

template <>
struct GenValue<sc::NetworkCodec> {
  static rc::Gen<scalars::Network> gen() {
    return rc::gen::exec([] {
      scalars::Network n;
      n.address = *gen_value<sc::IpCodec>();
      n.prefix = *uniform(0, n.address.v6 ? 129 : 33);
      return n;
    });
  }
};

template <class E>
struct GenValue<sc::Enum<E>> {
  static rc::Gen<E> gen() {
    std::vector<E> values;
    for (const auto& [value, name] : Schema<E>::names) values.push_back(value);
    return rc::gen::elementOf(values);
  }
};

template <class C>
struct GenValue<sc::Seq<C>> {
  static rc::Gen<typename sc::Seq<C>::value_type> gen() { return small_vector(gen_value<C>()); }
};

template <class C>
struct GenValue<sc::Map<C>> {
  using V = typename C::value_type;
  static rc::Gen<std::map<std::string, V>> gen() {
    return rc::gen::map(small_vector(rc::gen::pair(awkward_string(), gen_value<C>())),
                        [](const std::vector<std::pair<std::string, V>>& items) {
                          return std::map<std::string, V>(items.begin(), items.end());
                        });
  }
};

template <>
struct GenValue<sc::OneOrMany> {
  static rc::Gen<std::vector<std::string>> gen() { return small_vector(awkward_string()); }
};

template <>
struct GenValue<sc::AnyNode> {
  static rc::Gen<sc::Ignored> gen() { return rc::gen::just(sc::Ignored{}); }
};

// One field of a struct: required and defaulted fields always get a value
// (printing writes every field anyway); optional ones are unset a quarter of
// the time.
template <class S, class F>
void fill_field(const F& f, S& out) {
  using C = typename F::codec;
  if constexpr (requires { (out.*f.member).reset(); }) {
    if (*uniform(0, 4) == 0) {
      (out.*f.member).reset();
      return;
    }
  }
  out.*f.member = *gen_value<C>();
}

template <class S>
struct GenValue<sc::Struct<S>> {
  static rc::Gen<S> gen() {
    return rc::gen::exec([] {
      S s{};
      std::apply([&](const auto&... f) { (fill_field(f, s), ...); }, Schema<S>::fields);
      return s;
    });
  }
};

template <class Alt>
rc::Gen<Alt> gen_alternative() {
  if constexpr (sc::has_fields<Alt>) {
    return gen_value<sc::Struct<Alt>>();
  } else if constexpr (sc::has_body<Alt>) {
    return rc::gen::map(gen_value<typename Schema<Alt>::body>(), [](auto body) {
      Alt alt{};
      alt.*Schema<Alt>::member = std::move(body);
      return alt;
    });
  } else {
    return rc::gen::just(Alt{});
  }
}

template <class... Alts>
struct GenValue<sc::Tagged<std::variant<Alts...>>> {
  using V = std::variant<Alts...>;
  static rc::Gen<V> gen() {
    return rc::gen::oneOf(
        rc::gen::map(gen_alternative<Alts>(), [](Alts alt) { return V(std::move(alt)); })...);
  }
};

// ------------------------------------------------------------------ validating codecs

// Random ASCII case.
inline rc::Gen<std::string> random_case(std::string text) {
  return rc::gen::exec([text] {
    std::string out = text;
    for (char& c : out)
      if (c >= 'a' && c <= 'z' && *rc::gen::arbitrary<bool>()) c = static_cast<char>(c - 'a' + 'A');
    return out;
  });
}

template <>
struct GenValue<sc::SyslogFacility> {
  static rc::Gen<std::string> gen() {
    std::vector<std::string> names;
    for (auto f : lithos::policy::kSyslogFacilities) {
      names.emplace_back(f);
      names.push_back("log_" + std::string(f));
    }
    return rc::gen::mapcat(rc::gen::elementOf(names), random_case);
  }
};

template <>
struct GenValue<sc::LogLevel> {
  static rc::Gen<std::string> gen() {
    std::vector<std::string> names(std::begin(lithos::policy::kLogLevels),
                                   std::end(lithos::policy::kLogLevels));
    return rc::gen::mapcat(rc::gen::elementOf(names), random_case);
  }
};

// System calls that libseccomp knows on this architecture (the candidate list
// is filtered through the same lookup the codec uses).
inline const std::vector<std::string>& known_syscalls() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const char* n : {"read", "write", "openat", "close", "mount", "umount2", "ptrace",
                          "kexec_load", "socketpair", "bpf", "unshare", "setns", "reboot", "swapon",
                          "init_module", "keyctl", "personality", "userfaultfd"})
      if (lithos::policy::names::syscall_number(n)) out.emplace_back(n);
    return out;
  }();
  return names;
}

template <>
struct GenValue<sc::SyscallName> {
  static rc::Gen<std::string> gen() { return rc::gen::elementOf(known_syscalls()); }
};

// Capabilities in their canonical spelling (the codec canonicalises, so only
// canonical names round-trip exactly).
template <>
struct GenValue<sc::CapabilityName> {
  static rc::Gen<std::string> gen() {
    std::vector<std::string> names;
    for (const auto& cap : lithos::policy::names::all_capabilities()) names.push_back(cap.name);
    return rc::gen::elementOf(names);
  }
};

}  // namespace lithos::proptest
