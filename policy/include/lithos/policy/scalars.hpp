// Scalar grammars (Boost.Spirit X3, compiled once in src/scalars.cpp).
// Every parser is full-match: trailing garbage is an error, never ignored.
// Error strings are the user-facing messages (the original's wording).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "lithos/common/result.hpp"
#include "lithos/policy/plan_types.hpp"

namespace lithos::policy::scalars {

// "numeric" (docs/configs.md, "Scalars"): trims whitespace, suffixes k M G ki Ki Mi Gi
// (Ki is our addition), 0x/0o/0b prefixes (lower-case), sign after the
// prefix, `_` separators after the first digit, signed 64-bit with overflow
// checks. Errors: "number error: invalid digit", "number error: number is
// empty", "number error: number is too large or too small (for negative)";
// near misses (100m, 10K, 5MB, 1T ...) append a hint naming the valid suffixes.
//
// Details: "empty" only for an empty/all-whitespace text ("+" and "-" are
// invalid digits). Syntax is checked before the value, so an invalid digit
// is reported even in an overlong number. The hint, appended to the
// invalid-digit message only, looks like
//   " (hint: unit suffixes are k, M, G (powers of 1000) and ki/Ki, Mi, Gi
//   (powers of 1024); did you mean 100M or 100Mi?)"
// for m, K, g, mi, gi, KB, kB, MB, GB, KiB, MiB, GiB and similar spellings;
// T/TB/Ti/TiB propose the value in G/Gi ("1T" -> "did you mean 1000G?"), and
// "-0x10" proposes "0x-10".
Result<std::int64_t> parse_numeric(std::string_view text);

// "plain int" (docs/configs.md, "Scalars"): optional '+', ASCII digits only, must fit u32
// / u64. No whitespace, '_', units or prefixes. Errors (the original's
// wording): "cannot parse integer from empty string", "invalid digit found
// in string", "number too large to fit in target type".
Result<std::uint32_t> parse_plain_u32(std::string_view text);
Result<std::uint64_t> parse_plain_u64(std::string_view text);

// Exactly "true" or "false". Error: bad boolean "TEXT" (TEXT quoted with
// \" \\ \n \r \t \0 and \u{..} escapes).
Result<bool> parse_bool(std::string_view text);

// Timeouts in seconds: a non-negative decimal with an optional fraction
// ("5", "0.5", "1.25"); whole numbers also accept the numeric grammar's `_`.
//
// Precisely (the original took whole seconds): surrounding whitespace is trimmed, then
//  * DIGITS "." DIGITS (at least one digit on each side, no sign, no `_`,
//    no exponent) is a decimal, or
//  * anything parse_numeric accepts is a whole number of seconds, so every
//    value the original accepted stays valid ("5", "1_000", "2k", "0x10");
//    a negative value is rejected.
// Rejected: "", "-1", "-0.5", ".5", "5.", "1e3", "inf", "nan", "5s", "0.5.1".
// Errors: timeout "T" must not be negative; invalid timeout "T" (expected
// seconds: ...); the numeric overflow message for an overlong whole number.
Result<double> parse_seconds(std::string_view text);

// An inclusive id or port range: "N" or "A-B" (plain u32 halves, split at
// the first '-'; "+5" halves are allowed as in plain ints). A > B is rejected
// ("range start A is greater than its end B"; the original matched nothing); "5-",
// "-5", "1 - 5", "0x10" and halves above u32 are errors ("Error parsing
// range").
struct Range {
  std::uint32_t start = 0;
  std::uint32_t end = 0;
  friend bool operator==(const Range&, const Range&) = default;
};
Result<Range> parse_range(std::string_view text);
std::string format_range(const Range& r);  // "N" when start == end, else "A-B"

// IPv4 dotted quad (strict, four decimal octets) or IPv6 literal.
//
// IPv4: exactly four octets 0..255 written in decimal without leading zeros
// ("01", "00", "010" are rejected so that nobody can mean octal; this is
// also what inet_pton accepts). IPv6: RFC 4291 section 2.2 text forms: eight groups
// of 1-4 hex digits (either case), "::" at most once standing for one or
// more zero groups, and an optional embedded strict IPv4 tail in place of
// the last two groups ("::ffff:1.2.3.4", "64:ff9b::192.0.2.1"). No zone ids
// ("%eth0"), no brackets, no surrounding whitespace.
// Error: invalid IP address "TEXT".
// IpAddress and format_ip live in plan_types.hpp (the knot formats
// addresses too).
Result<IpAddress> parse_ip(std::string_view text);

// "ADDR/PREFIX" or "ADDR" (prefix = 32 or 128). IPv4 may have fewer than four
// octets ("10.1" = 10.1.0.0) as in the original; host bits may be set.
//
// IPv4 (1-4 octets, same no-leading-zero octet rule as parse_ip) is tried
// first, then IPv6 (as parse_ip). PREFIX is 1-3 decimal digits, at most 32 /
// 128. Errors start with: invalid network "TEXT": ...
// format_network always prints the prefix ("10.1" -> "10.1.0.0/32").
// network_contains compares the first `prefix` bits of both addresses (host
// bits of the network address are ignored); different families never match.
struct Network {
  IpAddress address;
  int prefix = 32;
  friend bool operator==(const Network&, const Network&) = default;
};
Result<Network> parse_network(std::string_view text);
std::string format_network(const Network& n);
bool network_contains(const Network& n, const IpAddress& ip);

// `@{name}` templates (docs/configs.md, "Variables"): the scanning algorithm exactly —
// next "@{", first "}" after it, name trimmed of surrounding whitespace, no
// escapes; an unterminated "@{" is literal text.
//
// Literal parts are never empty and never adjacent (they are merged), so
// "a@{x" is one literal part; variable names may be empty ("@{ }"). Total:
// every input gives a part list.
struct TemplatePart {
  bool is_variable = false;
  std::string text;  // literal text, or the trimmed variable name
  friend bool operator==(const TemplatePart&, const TemplatePart&) = default;
};
std::vector<TemplatePart> parse_template(std::string_view text);

}  // namespace lithos::policy::scalars
