// Scalar grammars. All Boost.Spirit X3 code of the project lives in this one
// translation unit: one rule per scalar kind, always used full-match (the
// iterator must reach the end), no expectation points (`>`), and every parse
// wrapped so that no exception can cross the API. Arithmetic (overflow
// checks, suffix multiplication) is plain C++ on the text that a rule has
// already validated.
// One file over 600 lines on purpose: X3's compile cost is paid in one
// translation unit.
#include "lithos/policy/scalars.hpp"
#include "lithos/common/text.hpp"

#include <boost/fusion/include/adapt_struct.hpp>
#include <boost/spirit/home/x3.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>
#include <optional>
#include <system_error>

// Four dotted-quad octets, the attribute of the strict IPv4 rule.
namespace lithos::policy::scalars::detail {
struct Octets4 {
  unsigned a = 0, b = 0, c = 0, d = 0;
};
}  // namespace lithos::policy::scalars::detail

BOOST_FUSION_ADAPT_STRUCT(lithos::policy::scalars::detail::Octets4, a, b, c, d)

namespace lithos::policy::scalars {
namespace {

namespace x3 = boost::spirit::x3;
using detail::Octets4;

// ---------------------------------------------------------------------------
// Text helpers

// Decodes one UTF-8 code point starting at `i`; returns its length or 0 when
// the bytes are not a well-formed sequence.
std::size_t utf8_at(std::string_view s, std::size_t i, char32_t& cp) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  std::size_t len = 0;
  if (b0 < 0x80) {
    cp = b0;
    return 1;
  } else if ((b0 & 0xE0) == 0xC0) {
    len = 2;
    cp = b0 & 0x1F;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3;
    cp = b0 & 0x0F;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4;
    cp = b0 & 0x07;
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  for (std::size_t k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b & 0x3F);
  }
  return len;
}

// The Unicode White_Space property (what the original's `trim` removes).
bool is_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

// An ASCII byte other than 0x09-0x0D and space: no White_Space code point
// starts or ends with it (the common case, decided without decoding).
bool plain_ascii_edge(char c) {
  const auto b = static_cast<unsigned char>(c);
  return b < 0x80 && b != 0x20 && (b < 0x09 || b > 0x0D);
}

std::string_view trim_start(std::string_view s) {
  if (!s.empty() && plain_ascii_edge(s.front())) return s;
  while (!s.empty()) {
    char32_t cp = 0;
    const std::size_t len = utf8_at(s, 0, cp);
    if (len == 0 || !is_space(cp)) break;
    s.remove_prefix(len);
  }
  return s;
}

std::string_view trim_end(std::string_view s) {
  if (!s.empty() && plain_ascii_edge(s.back())) return s;
  while (!s.empty()) {
    // Find the start of the last code point (at most 4 bytes back).
    std::size_t start = s.size() - 1;
    while (start > 0 && s.size() - start < 4 &&
           (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) {
      --start;
    }
    char32_t cp = 0;
    const std::size_t len = utf8_at(s, start, cp);
    if (len == 0 || start + len != s.size() || !is_space(cp)) break;
    s.remove_suffix(len);
  }
  return s;
}

std::string_view trim(std::string_view s) {
  return trim_end(trim_start(s));
}

std::string quote(std::string_view s) {
  return lithos::debug_quote(s);
}

// Runs `parser` over the whole of `text`. False unless the parser succeeds
// and consumes every byte. Nothing escapes (the rules use no expectation
// points, but an allocation failure must not cross the API either).
template <class Parser, class... Attr>
bool full_match(std::string_view text, const Parser& parser, Attr&... attr) {
  static_assert(sizeof...(Attr) <= 1);
  const char* first = text.data();
  const char* const last = text.data() + text.size();
  try {
    return x3::parse(first, last, parser, attr...) && first == last;
  } catch (...) {
    return false;
  }
}

// ---------------------------------------------------------------------------
// Rules

auto const dec_digit = x3::char_('0', '9');
auto const hex_digit = x3::char_('0', '9') | x3::char_('a', 'f') | x3::char_('A', 'F');
auto const oct_digit = x3::char_('0', '7');
auto const bin_digit = x3::char_('0', '1');
auto const sign = x3::lit('+') | x3::lit('-');

// numeric digits, one rule per radix: sign, a digit, then digits/`_`.
x3::rule<class numeric10_id> const numeric10 = "decimal number";
x3::rule<class numeric16_id> const numeric16 = "hexadecimal number";
x3::rule<class numeric8_id> const numeric8 = "octal number";
x3::rule<class numeric2_id> const numeric2 = "binary number";
auto const numeric10_def = -sign >> dec_digit >> *(dec_digit | '_');
auto const numeric16_def = -sign >> hex_digit >> *(hex_digit | '_');
auto const numeric8_def = -sign >> oct_digit >> *(oct_digit | '_');
auto const numeric2_def = -sign >> bin_digit >> *(bin_digit | '_');

// plain int: optional '+', decimal digits.
x3::rule<class plain_uint_id> const plain_uint = "plain unsigned integer";
auto const plain_uint_def = -x3::lit('+') >> +dec_digit;

// Exactly true or false.
x3::rule<class boolean_id, bool> const boolean = "boolean";
auto const boolean_def =
    (x3::lit("true") >> x3::attr(true)) | (x3::lit("false") >> x3::attr(false));

// Decimal seconds with a fraction: digits '.' digits.
x3::rule<class decimal_id> const decimal = "decimal";
auto const decimal_def = +dec_digit >> '.' >> +dec_digit;

// Range: N or A-B, each half a plain u32 (validated by value later).
x3::rule<class range_id> const range = "range";
auto const range_def = plain_uint >> -('-' >> plain_uint);

// An IPv4 octet: "0" or 1..3 digits without a leading zero, value <= 255.
auto const octet_value = [](auto& ctx) {
  unsigned v = 0;
  for (const char ch : _attr(ctx)) v = v * 10 + static_cast<unsigned>(ch - '0');
  _val(ctx) = v;
  _pass(ctx) = v <= 255;
};
x3::rule<class octet_id, unsigned> const octet = "octet";
auto const octet_def =
    x3::raw[x3::lit('0') | (x3::char_('1', '9') >> x3::repeat(0, 2)[dec_digit])][octet_value];

// Strict dotted quad.
x3::rule<class ipv4_id, Octets4> const ipv4 = "IPv4 address";
auto const ipv4_def = octet >> '.' >> octet >> '.' >> octet >> '.' >> octet;

// IPv6 (RFC 4291 section 2.2). The rule only checks the token structure and records
// the groups and the position of "::" in a builder passed with x3::with; the
// group count is checked afterwards. An embedded IPv4 tail must end the text.
struct V6Builder {
  std::vector<std::uint16_t> groups;
  int gap = -1;  // index in `groups` where "::" stands, or -1
};
struct v6_builder_tag;
template <class Context>
V6Builder& v6_builder(const Context& ctx) {
  auto& held = x3::get<v6_builder_tag>(ctx);
  if constexpr (std::is_same_v<std::decay_t<decltype(held)>, std::reference_wrapper<V6Builder>>) {
    return held.get();
  } else {
    return held;
  }
}
auto const push_group = [](auto& ctx) { v6_builder(ctx).groups.push_back(_attr(ctx)); };
auto const push_v4_tail = [](auto& ctx) {
  const Octets4& o = _attr(ctx);
  auto& b = v6_builder(ctx);
  b.groups.push_back(static_cast<std::uint16_t>(o.a << 8 | o.b));
  b.groups.push_back(static_cast<std::uint16_t>(o.c << 8 | o.d));
};
auto const mark_gap = [](auto& ctx) {
  auto& b = v6_builder(ctx);
  b.gap = static_cast<int>(b.groups.size());
};
auto const h16 = x3::uint_parser<std::uint16_t, 16, 1, 4>();
x3::rule<class v6_element_id> const v6_element = "IPv6 group";
x3::rule<class v6_elements_id> const v6_elements = "IPv6 groups";
x3::rule<class ipv6_id> const ipv6 = "IPv6 address";
auto const v6_element_def = (ipv4 >> x3::eoi)[push_v4_tail] | h16[push_group];
auto const v6_elements_def = v6_element % ':';
auto const ipv6_def = (x3::lit("::")[mark_gap] >> -v6_elements) |
                      (v6_elements >> -(x3::lit("::")[mark_gap] >> -v6_elements));

// Network: IPv4 with 1..4 octets, or IPv6; optional /PREFIX.
auto const prefix_digits = x3::uint_parser<unsigned, 10, 1, 3>();
x3::rule<class net_prefix_id, unsigned> const net_prefix = "prefix";
auto const net_prefix_def = '/' >> prefix_digits;
x3::rule<class ipv4_partial_id, std::vector<unsigned>> const ipv4_partial = "IPv4 network";
auto const ipv4_partial_def = octet % '.';

// Templates (docs/configs.md): literal text up to the next "@{"; "@{" NAME "}" where NAME
// is everything up to the first "}"; an "@{" without a "}" after it makes the
// rest of the text literal.
struct TemplateBuilder {
  std::vector<TemplatePart> parts;
  void literal(std::string_view s) {
    if (s.empty()) return;
    if (!parts.empty() && !parts.back().is_variable) {
      parts.back().text += s;
    } else {
      parts.push_back({false, std::string(s)});
    }
  }
};
struct template_builder_tag;
template <class Context>
TemplateBuilder& template_builder(const Context& ctx) {
  auto& held = x3::get<template_builder_tag>(ctx);
  if constexpr (std::is_same_v<std::decay_t<decltype(held)>,
                               std::reference_wrapper<TemplateBuilder>>) {
    return held.get();
  } else {
    return held;
  }
}
template <class Range>
std::string_view view_of(const Range& r) {
  return {&*r.begin(), static_cast<std::size_t>(r.end() - r.begin())};
}
template <class Range>
std::string_view view_or_empty(const Range& r) {
  return r.begin() == r.end() ? std::string_view() : view_of(r);
}
auto const push_literal = [](auto& ctx) {
  template_builder(ctx).literal(view_or_empty(_attr(ctx)));
};
auto const push_variable = [](auto& ctx) {
  template_builder(ctx).parts.push_back({true, std::string(trim(view_or_empty(_attr(ctx))))});
};
x3::rule<class template_text_id> const template_text = "template";
auto const template_text_def =
    *(x3::raw[+(x3::char_ - x3::lit("@{"))][push_literal] |
      (x3::lit("@{") >> x3::raw[*(x3::char_ - '}')] >> '}')[push_variable] |
      x3::raw[x3::lit("@{") >> *x3::char_][push_literal]);

BOOST_SPIRIT_DEFINE(numeric10, numeric16, numeric8, numeric2, plain_uint, boolean, decimal, range,
                    octet, ipv4, v6_element, v6_elements, ipv6, net_prefix, ipv4_partial,
                    template_text)

// ---------------------------------------------------------------------------
// numeric

constexpr std::string_view kInvalidDigit = "number error: invalid digit";
constexpr std::string_view kEmpty = "number error: number is empty";
constexpr std::string_view kOverflow =
    "number error: number is too large or too small (for negative)";

struct Suffix {
  std::string_view text;
  std::int64_t factor;
};
// Order matters: the first suffix that matches wins.
constexpr Suffix kSuffixes[] = {
    {"k", 1000},  {"M", 1000000},  {"G", 1000000000},  {"ki", 1024},
    {"Ki", 1024}, {"Mi", 1048576}, {"Gi", 1073741824},
};

int digit_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Steps 3-5 on a text whose suffix has been removed.
Result<std::int64_t> numeric_digits(std::string_view s, std::int64_t factor) {
  int radix = 10;
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'o' || s[1] == 'b')) {
    radix = s[1] == 'x' ? 16 : s[1] == 'o' ? 8 : 2;
    s.remove_prefix(2);
  }
  const bool valid = radix == 16  ? full_match(s, numeric16)
                     : radix == 8 ? full_match(s, numeric8)
                     : radix == 2 ? full_match(s, numeric2)
                                  : full_match(s, numeric10);
  if (!valid) return fail(std::string(kInvalidDigit));

  const bool negative = s.front() == '-';
  if (s.front() == '+' || s.front() == '-') s.remove_prefix(1);
  std::int64_t acc = 0;
  for (const char c : s) {
    if (c == '_') continue;
    const int d = digit_value(c);
    if (__builtin_mul_overflow(acc, static_cast<std::int64_t>(radix), &acc) ||
        (negative ? __builtin_sub_overflow(acc, d, &acc) : __builtin_add_overflow(acc, d, &acc))) {
      return fail(std::string(kOverflow));
    }
  }
  if (__builtin_mul_overflow(acc, factor, &acc)) return fail(std::string(kOverflow));
  return acc;
}

Result<std::int64_t> numeric_core(std::string_view text) {
  std::string_view s = trim(text);
  if (s.empty()) return fail(std::string(kEmpty));
  // Most values are plain decimal digits: numeric10 accepts every such text
  // and no suffix applies, so the value is read directly (18 digits cannot
  // overflow).
  if (s.size() <= 18 &&
      std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    std::int64_t value = 0;
    for (const char c : s) value = value * 10 + (c - '0');
    return value;
  }
  std::int64_t factor = 1;
  for (const auto& suffix : kSuffixes) {
    if (s.size() > suffix.text.size() && s.ends_with(suffix.text)) {
      s = trim_end(s.substr(0, s.size() - suffix.text.size()));
      factor = suffix.factor;
      break;
    }
  }
  return numeric_digits(s, factor);
}

// Near misses of the unit suffixes, longest first. `suggest` lists the valid
// suffixes to propose; `tera` marks units that have no valid counterpart and
// are proposed as a multiple of G / Gi instead.
struct NearMiss {
  std::string_view unit;
  std::string_view suggest[2];
  int tera;  // 0, 1000 (T -> G) or 1024 (Ti -> Gi)
};
constexpr NearMiss kNearMisses[] = {
    {"KiB", {"Ki", {}}, 0}, {"kiB", {"Ki", {}}, 0}, {"KIB", {"Ki", {}}, 0}, {"MiB", {"Mi", {}}, 0},
    {"MIB", {"Mi", {}}, 0}, {"mib", {"Mi", {}}, 0}, {"GiB", {"Gi", {}}, 0}, {"GIB", {"Gi", {}}, 0},
    {"gib", {"Gi", {}}, 0}, {"TiB", {}, 1024},      {"TIB", {}, 1024},      {"KB", {"k", "Ki"}, 0},
    {"kB", {"k", "Ki"}, 0}, {"Kb", {"k", "Ki"}, 0}, {"kb", {"k", "Ki"}, 0}, {"MB", {"M", "Mi"}, 0},
    {"Mb", {"M", "Mi"}, 0}, {"mb", {"M", "Mi"}, 0}, {"GB", {"G", "Gi"}, 0}, {"Gb", {"G", "Gi"}, 0},
    {"gb", {"G", "Gi"}, 0}, {"TB", {}, 1000},       {"tb", {}, 1000},       {"Ti", {}, 1024},
    {"ti", {}, 1024},       {"KI", {"Ki", {}}, 0},  {"mi", {"Mi", {}}, 0},  {"MI", {"Mi", {}}, 0},
    {"gi", {"Gi", {}}, 0},  {"GI", {"Gi", {}}, 0},  {"m", {"M", "Mi"}, 0},  {"K", {"k", "Ki"}, 0},
    {"g", {"G", "Gi"}, 0},  {"T", {}, 1000},        {"t", {}, 1000},
};

constexpr std::string_view kSuffixHint =
    " (hint: unit suffixes are k, M, G (powers of 1000) and ki/Ki, Mi, Gi (powers of 1024)";

// A hint for an input that failed with "invalid digit", or "".
std::string numeric_hint(std::string_view text) {
  const std::string_view s = trim(text);
  for (const auto& miss : kNearMisses) {
    if (s.size() <= miss.unit.size() || !s.ends_with(miss.unit)) continue;
    const std::string_view number = trim_end(s.substr(0, s.size() - miss.unit.size()));
    const auto value = numeric_core(number);
    if (!value.ok()) return {};
    std::vector<std::string> options;
    if (miss.tera != 0) {
      std::int64_t scaled = 0;
      if (!__builtin_mul_overflow(*value, static_cast<std::int64_t>(miss.tera), &scaled)) {
        options.push_back(std::to_string(scaled) + (miss.tera == 1000 ? "G" : "Gi"));
      }
    } else {
      for (const auto unit : miss.suggest) {
        if (!unit.empty()) options.push_back(std::string(number) + std::string(unit));
      }
    }
    std::string hint(kSuffixHint);
    if (options.empty()) {
      hint += "; there is no ";
      hint += miss.unit;
      hint += " suffix)";
    } else {
      hint += "; did you mean " + options[0];
      if (options.size() > 1) hint += " or " + options[1];
      hint += "?)";
    }
    return hint;
  }
  // "-0x10": the sign belongs after the radix prefix.
  if (s.size() > 3 && (s[0] == '-' || s[0] == '+') && s[1] == '0' &&
      (s[2] == 'x' || s[2] == 'o' || s[2] == 'b')) {
    std::string moved = std::string(s.substr(1, 2)) + s[0] + std::string(s.substr(3));
    if (numeric_core(moved).ok()) {
      return " (hint: the sign goes after the radix prefix, e.g. " + moved + ")";
    }
  }
  return {};
}

// ---------------------------------------------------------------------------
// plain integers

constexpr std::string_view kPlainInvalid = "invalid digit found in string";
constexpr std::string_view kPlainEmpty = "cannot parse integer from empty string";
constexpr std::string_view kPlainOverflow = "number too large to fit in target type";

template <class T>
Result<T> plain_unsigned(std::string_view text) {
  if (text.empty()) return fail(std::string(kPlainEmpty));
  if (!full_match(text, plain_uint)) return fail(std::string(kPlainInvalid));
  if (text.front() == '+') text.remove_prefix(1);
  T acc = 0;
  for (const char c : text) {
    if (__builtin_mul_overflow(acc, T{10}, &acc) ||
        __builtin_add_overflow(acc, static_cast<T>(c - '0'), &acc)) {
      return fail(std::string(kPlainOverflow));
    }
  }
  return acc;
}

// ---------------------------------------------------------------------------
// IP addresses

std::optional<IpAddress> parse_ipv4_strict(std::string_view text) {
  Octets4 o;
  if (!full_match(text, ipv4, o)) return std::nullopt;
  IpAddress ip;
  ip.bytes[0] = static_cast<std::uint8_t>(o.a);
  ip.bytes[1] = static_cast<std::uint8_t>(o.b);
  ip.bytes[2] = static_cast<std::uint8_t>(o.c);
  ip.bytes[3] = static_cast<std::uint8_t>(o.d);
  return ip;
}

std::optional<IpAddress> parse_ipv6(std::string_view text) {
  V6Builder builder;
  if (!full_match(text, x3::with<v6_builder_tag>(std::ref(builder))[ipv6])) return std::nullopt;
  const auto& g = builder.groups;
  std::array<std::uint16_t, 8> groups{};
  if (builder.gap < 0) {
    if (g.size() != 8) return std::nullopt;
    std::copy(g.begin(), g.end(), groups.begin());
  } else {
    // "::" stands for at least one zero group.
    if (g.size() > 7) return std::nullopt;
    const auto gap = static_cast<std::size_t>(builder.gap);
    std::copy(g.begin(), g.begin() + static_cast<std::ptrdiff_t>(gap), groups.begin());
    std::copy(g.begin() + static_cast<std::ptrdiff_t>(gap), g.end(),
              groups.end() - static_cast<std::ptrdiff_t>(g.size() - gap));
  }
  IpAddress ip;
  ip.v6 = true;
  for (std::size_t i = 0; i < 8; ++i) {
    ip.bytes[2 * i] = static_cast<std::uint8_t>(groups[i] >> 8);
    ip.bytes[2 * i + 1] = static_cast<std::uint8_t>(groups[i] & 0xFF);
  }
  return ip;
}

}  // namespace

// ---------------------------------------------------------------------------
// Public API

Result<std::int64_t> parse_numeric(std::string_view text) {
  auto result = numeric_core(text);
  if (!result.ok() && result.error() == kInvalidDigit) {
    result.error() += numeric_hint(text);
  }
  return result;
}

Result<std::uint32_t> parse_plain_u32(std::string_view text) {
  return plain_unsigned<std::uint32_t>(text);
}

Result<std::uint64_t> parse_plain_u64(std::string_view text) {
  return plain_unsigned<std::uint64_t>(text);
}

Result<bool> parse_bool(std::string_view text) {
  bool value = false;
  if (!full_match(text, boolean, value)) return fail("bad boolean " + quote(text));
  return value;
}

Result<double> parse_seconds(std::string_view text) {
  const std::string_view s = trim(text);
  if (full_match(s, decimal)) {
    double value = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
    if (ec != std::errc() || end != s.data() + s.size() || !std::isfinite(value)) {
      return fail("timeout " + quote(text) + " is too large");
    }
    return value;
  }
  const auto whole = numeric_core(s);
  if (whole.ok()) {
    if (*whole < 0) return fail("timeout " + quote(text) + " must not be negative");
    return static_cast<double>(*whole);
  }
  if (whole.error() == kOverflow) return fail(whole.error());
  if (s.empty()) return fail("timeout is empty (expected seconds such as 5 or 0.5)");
  return fail("invalid timeout " + quote(text) +
              " (expected seconds: a whole number such as 5 or 1_000, or a decimal such as 0.5)");
}

Result<Range> parse_range(std::string_view text) {
  if (!full_match(text, range)) return fail(std::string("Error parsing range"));
  const std::size_t dash = text.find('-');
  const auto start = parse_plain_u32(text.substr(0, dash));
  const auto end = dash == std::string_view::npos ? start : parse_plain_u32(text.substr(dash + 1));
  if (!start.ok() || !end.ok()) return fail(std::string("Error parsing range"));
  if (*start > *end) {
    return fail("range start " + std::to_string(*start) + " is greater than its end " +
                std::to_string(*end));
  }
  return Range{*start, *end};
}

std::string format_range(const Range& r) {
  if (r.start == r.end) return std::to_string(r.start);
  return std::to_string(r.start) + "-" + std::to_string(r.end);
}

Result<IpAddress> parse_ip(std::string_view text) {
  if (auto v4 = parse_ipv4_strict(text)) return *v4;
  if (auto v6 = parse_ipv6(text)) return *v6;
  return fail("invalid IP address " + quote(text));
}

Result<Network> parse_network(std::string_view text) {
  const std::size_t slash = text.find('/');
  const std::string_view addr = text.substr(0, slash);
  std::optional<unsigned> prefix;
  if (slash != std::string_view::npos) {
    unsigned p = 0;
    if (!full_match(text.substr(slash), net_prefix, p)) {
      return fail("invalid network " + quote(text) + ": the prefix after / must be a number");
    }
    prefix = p;
  }
  Network net;
  std::vector<unsigned> octets;
  if (full_match(addr, ipv4_partial, octets) && octets.size() <= 4) {
    for (std::size_t i = 0; i < octets.size(); ++i) {
      net.address.bytes[i] = static_cast<std::uint8_t>(octets[i]);
    }
    net.prefix = 32;
  } else if (auto v6 = parse_ipv6(addr)) {
    net.address = *v6;
    net.prefix = 128;
  } else {
    return fail("invalid network " + quote(text) +
                ": expected an IPv4 or IPv6 address, optionally followed by /PREFIX");
  }
  if (prefix) {
    if (*prefix > static_cast<unsigned>(net.prefix)) {
      return fail("invalid network " + quote(text) + ": prefix " + std::to_string(*prefix) +
                  " is larger than " + std::to_string(net.prefix));
    }
    net.prefix = static_cast<int>(*prefix);
  }
  return net;
}

std::string format_network(const Network& n) {
  return format_ip(n.address) + "/" + std::to_string(n.prefix);
}

bool network_contains(const Network& n, const IpAddress& ip) {
  if (n.address.v6 != ip.v6) return false;
  const int width = n.address.v6 ? 128 : 32;
  if (n.prefix < 0 || n.prefix > width) return false;
  int bits = n.prefix;
  for (std::size_t i = 0; bits > 0; ++i, bits -= 8) {
    const auto mask = static_cast<std::uint8_t>(bits >= 8 ? 0xFF : 0xFF << (8 - bits));
    if ((n.address.bytes[i] & mask) != (ip.bytes[i] & mask)) return false;
  }
  return true;
}

std::vector<TemplatePart> parse_template(std::string_view text) {
  // Without "@{" the grammar yields the whole text as one literal part.
  if (text.find("@{") == std::string_view::npos)
    return text.empty() ? std::vector<TemplatePart>{}
                        : std::vector<TemplatePart>{{false, std::string(text)}};
  TemplateBuilder builder;
  builder.parts.reserve(4);  // typical templates have a few parts: no regrowth
  if (!full_match(text, x3::with<template_builder_tag>(std::ref(builder))[template_text])) {
    // The grammar accepts every input; keep the text literal if it ever fails.
    return text.empty() ? std::vector<TemplatePart>{}
                        : std::vector<TemplatePart>{{false, std::string(text)}};
  }
  return std::move(builder.parts);
}

}  // namespace lithos::policy::scalars
