// Properties of the scalar grammars: printing then parsing gives the value
// back, the parsers agree with independent models (a literal transcription
// of the number grammar of docs/configs.md "Scalars", glibc's
// inet_pton/inet_ntop, the `@{name}` scanning loop written with
// std::string::find), and no input makes them crash.
// One file over 600 lines on purpose: one model per grammar of one
// translation unit (policy/src/scalars.cpp).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "lithos/policy/scalars.hpp"

namespace {

using namespace lithos::policy::scalars;

// 128-bit integers for the models (a GCC extension; -Wpedantic is told so).
__extension__ typedef __int128 Int128;
__extension__ typedef unsigned __int128 UInt128;

// ---------------------------------------------------------------------------
// Generators

// Strings over a small alphabet, so that interesting structure is common.
rc::Gen<std::string> string_over(const std::string& alphabet, std::size_t max_len = 24) {
  return rc::gen::mapcat(rc::gen::inRange<std::size_t>(0, max_len + 1), [alphabet](std::size_t n) {
    return rc::gen::container<std::string>(n, rc::gen::elementOf(alphabet));
  });
}

// Strings glued from tokens (multi-character pieces such as "::" or "@{").
rc::Gen<std::string> tokens_over(const std::vector<std::string>& tokens, std::size_t max_tokens) {
  return rc::gen::map(rc::gen::mapcat(rc::gen::inRange<std::size_t>(0, max_tokens + 1),
                                      [tokens](std::size_t n) {
                                        return rc::gen::container<std::vector<std::string>>(
                                            n, rc::gen::elementOf(tokens));
                                      }),
                      [](const std::vector<std::string>& parts) {
                        std::string out;
                        for (const auto& p : parts) out += p;
                        return out;
                      });
}

// Any int64, biased towards the edges and towards round numbers.
rc::Gen<std::int64_t> any_int64() {
  return rc::gen::oneOf(
      rc::gen::arbitrary<std::int64_t>(),
      rc::gen::element(std::numeric_limits<std::int64_t>::min(),
                       std::numeric_limits<std::int64_t>::max(), std::int64_t{0}, std::int64_t{-1},
                       std::int64_t{1}),
      rc::gen::map(rc::gen::pair(rc::gen::inRange<std::int64_t>(-100000, 100000),
                                 rc::gen::element<std::int64_t>(1000, 1024, 1000000, 1048576,
                                                                1000000000, 1073741824)),
                   [](std::pair<std::int64_t, std::int64_t> p) { return p.first * p.second; }));
}

std::uint64_t magnitude(std::int64_t v) {
  return v < 0 ? std::uint64_t{0} - static_cast<std::uint64_t>(v) : static_cast<std::uint64_t>(v);
}

std::string digits_of(std::uint64_t m, unsigned radix, bool upper) {
  const char* digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  std::string out;
  do {
    out.insert(out.begin(), digits[m % radix]);
    m /= radix;
  } while (m != 0);
  return out;
}

// Inserts `_` at random positions after the first digit.
std::string sprinkle_underscores(const std::string& digits) {
  std::string out(1, digits[0]);
  for (std::size_t i = 1; i < digits.size(); ++i) {
    const auto n = *rc::gen::inRange(0, 3);
    if (n == 0) out.append(static_cast<std::size_t>(*rc::gen::inRange(0, 3)), '_');
    out += digits[i];
  }
  if (*rc::gen::inRange(0, 4) == 0) out += '_';
  return out;
}

// ---------------------------------------------------------------------------
// numeric

RC_GTEST_PROP(NumericProps, DecimalRoundTrips, ()) {
  const auto v = *any_int64();
  const auto r = parse_numeric(std::to_string(v));
  RC_ASSERT(r.ok());
  RC_ASSERT(*r == v);
}

RC_GTEST_PROP(NumericProps, AnyPrintingRoundTrips, ()) {
  struct S {
    const char* text;
    std::int64_t factor;
  };
  const S suffixes[] = {{"", 1},      {"k", 1000},  {"M", 1000000},  {"G", 1000000000},
                        {"ki", 1024}, {"Ki", 1024}, {"Mi", 1048576}, {"Gi", 1073741824}};
  const auto& s = suffixes[*rc::gen::inRange<std::size_t>(0, std::size(suffixes))];
  const std::string suffix = s.text;
  const std::int64_t factor = s.factor;
  // Any quotient whose product with the suffix fits, edges included.
  const std::int64_t lo = std::numeric_limits<std::int64_t>::min() / factor;
  const std::int64_t hi = std::numeric_limits<std::int64_t>::max() / factor;
  const std::int64_t q =
      *rc::gen::oneOf(rc::gen::element(lo, hi, std::int64_t{0}), rc::gen::inRange(lo, hi),
                      rc::gen::inRange<std::int64_t>(-5000, 5000));
  const std::int64_t v = q * factor;
  const unsigned radix = *rc::gen::element(10u, 16u, 8u, 2u);
  std::string digits = digits_of(magnitude(q), radix, *rc::gen::arbitrary<bool>());
  if (*rc::gen::arbitrary<bool>()) digits = sprinkle_underscores(digits);
  std::string sign = q < 0 ? "-" : (*rc::gen::arbitrary<bool>() ? "+" : "");
  std::string prefix = radix == 16 ? "0x" : radix == 8 ? "0o" : radix == 2 ? "0b" : "";
  std::string text = prefix + sign + digits;
  if (!suffix.empty()) text += *rc::gen::element<std::string>("", " ", "  ", "\t") + suffix;
  text = *rc::gen::element<std::string>("", " ", "\n") + text +
         *rc::gen::element<std::string>("", " ", "\t");
  RC_TAG(radix, suffix);
  const auto r = parse_numeric(text);
  RC_ASSERT(r.ok());
  RC_ASSERT(*r == v);
}

// A literal transcription of the number grammar (docs/configs.md, with Ki), in 128-bit
// arithmetic and without any grammar library: the independent model.
struct ModelResult {
  std::optional<std::int64_t> value;
  std::string error;
};

bool model_space(char c) {
  return c == ' ' || (c >= '\t' && c <= '\r');
}

ModelResult model_numeric(std::string s) {
  while (!s.empty() && model_space(s.front())) s.erase(0, 1);
  while (!s.empty() && model_space(s.back())) s.pop_back();
  if (s.empty()) return {std::nullopt, "number error: number is empty"};
  const std::pair<std::string, Int128> suffixes[] = {
      {"k", 1000},  {"M", 1000000},  {"G", 1000000000}, {"ki", 1024},
      {"Ki", 1024}, {"Mi", 1048576}, {"Gi", 1073741824}};
  Int128 factor = 1;
  for (const auto& [suf, f] : suffixes) {
    if (s.size() > suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0) {
      s.resize(s.size() - suf.size());
      while (!s.empty() && model_space(s.back())) s.pop_back();
      factor = f;
      break;
    }
  }
  int radix = 10;
  if (s.size() > 2 && s.rfind("0x", 0) == 0) radix = 16;
  if (s.size() > 2 && s.rfind("0o", 0) == 0) radix = 8;
  if (s.size() > 2 && s.rfind("0b", 0) == 0) radix = 2;
  if (radix != 10) s.erase(0, 2);
  bool negative = false;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    negative = s[0] == '-';
    s.erase(0, 1);
  }
  const std::string invalid = "number error: invalid digit";
  auto value_of = [radix](char c) -> int {
    int d = -1;
    if (c >= '0' && c <= '9') d = c - '0';
    if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
    return d >= 0 && d < radix ? d : -1;
  };
  if (s.empty() || value_of(s[0]) < 0) return {std::nullopt, invalid};
  Int128 acc = 0;
  bool big = false;
  for (const char c : s) {
    if (c == '_') continue;
    const int d = value_of(c);
    if (d < 0) return {std::nullopt, invalid};
    if (!big) acc = acc * radix + d;
    if (acc > (static_cast<Int128>(1) << 64)) big = true;
  }
  const std::string overflow = "number error: number is too large or too small (for negative)";
  if (big) return {std::nullopt, overflow};
  acc = (negative ? -acc : acc) * factor;
  if (acc > std::numeric_limits<std::int64_t>::max() ||
      acc < std::numeric_limits<std::int64_t>::min()) {
    return {std::nullopt, overflow};
  }
  return {static_cast<std::int64_t>(acc), ""};
}

void check_against_model(const std::string& text) {
  const auto r = parse_numeric(text);
  const auto m = model_numeric(text);
  RC_ASSERT(r.ok() == m.value.has_value());
  if (r.ok()) {
    RC_ASSERT(*r == *m.value);
  } else {
    // The implementation may append a hint to "invalid digit", nothing else.
    RC_ASSERT(r.error().rfind(m.error, 0) == 0);
    if (r.error() != m.error) {
      RC_ASSERT(m.error == "number error: invalid digit");
      RC_ASSERT(r.error().substr(m.error.size(), 8) == " (hint: ");
      RC_ASSERT(r.error().back() == ')');
    }
  }
}

RC_GTEST_PROP(NumericProps, AgreesWithModelOnNumberLikeText, ()) {
  check_against_model(*string_over("0123456789_+- xobkMGiKmTBafAF", 16));
}

RC_GTEST_PROP(NumericProps, AgreesWithModelOnStructuredText, ()) {
  check_against_model(*tokens_over({"0x",
                                    "0o",
                                    "0b",
                                    "-",
                                    "+",
                                    "_",
                                    " ",
                                    "1",
                                    "0",
                                    "7",
                                    "9",
                                    "f",
                                    "F",
                                    "k",
                                    "M",
                                    "G",
                                    "ki",
                                    "Ki",
                                    "Mi",
                                    "Gi",
                                    "m",
                                    "T",
                                    "KiB",
                                    "9223372036854775807",
                                    "9223372036854775808"},
                                   6));
}

RC_GTEST_PROP(NumericProps, NeverCrashesOnArbitraryBytes, (const std::string& text)) {
  const auto r = parse_numeric(text);
  if (!r.ok()) RC_ASSERT(r.error().rfind("number error: ", 0) == 0);
}

// ---------------------------------------------------------------------------
// plain ints, seconds, booleans

RC_GTEST_PROP(PlainProps, U32RoundTripsAndMatchesModel, (std::uint32_t v)) {
  RC_ASSERT(*parse_plain_u32(std::to_string(v)) == v);
  RC_ASSERT(*parse_plain_u32("+" + std::to_string(v)) == v);
  const auto text = *string_over("0123456789+- _x", 12);
  const auto r = parse_plain_u32(text);
  // Model: optional '+', then one or more digits, value below 2^32.
  const std::string digits = !text.empty() && text[0] == '+' ? text.substr(1) : text;
  bool ok = !digits.empty() && digits.find_first_not_of("0123456789") == std::string::npos;
  if (ok) {
    UInt128 acc = 0;
    for (const char c : digits) {
      acc = acc * 10 + static_cast<unsigned>(c - '0');
      if (acc > 0xFFFFFFFFu) break;
    }
    ok = acc <= 0xFFFFFFFFu;
    if (ok) RC_ASSERT(r.ok() && *r == static_cast<std::uint32_t>(acc));
  }
  RC_ASSERT(r.ok() == ok);
}

RC_GTEST_PROP(SecondsProps, DecimalsRoundTrip, ()) {
  const auto whole = *rc::gen::inRange<std::uint32_t>(0, 1000000);
  const auto frac_digits = *string_over("0123456789", 6);
  std::string text = std::to_string(whole);
  if (!frac_digits.empty()) text += "." + frac_digits;
  const auto r = parse_seconds(text);
  RC_ASSERT(r.ok());
  RC_ASSERT(*r == std::strtod(text.c_str(), nullptr));
}

RC_GTEST_PROP(SecondsProps, NeverNegativeNeverCrashes, ()) {
  const auto text =
      *rc::gen::oneOf(string_over("0123456789._-+eE infa ", 10), rc::gen::arbitrary<std::string>());
  const auto r = parse_seconds(text);
  if (r.ok()) RC_ASSERT(*r >= 0.0);
}

RC_GTEST_PROP(BoolProps, OnlyTrueAndFalse, (const std::string& text)) {
  const auto r = parse_bool(text);
  RC_ASSERT(r.ok() == (text == "true" || text == "false"));
  if (r.ok()) RC_ASSERT(*r == (text == "true"));
}

// ---------------------------------------------------------------------------
// ranges

RC_GTEST_PROP(RangeProps, RoundTrips, (std::uint32_t a, std::uint32_t b)) {
  const Range range{std::min(a, b), std::max(a, b)};
  const auto r = parse_range(format_range(range));
  RC_ASSERT(r.ok());
  RC_ASSERT(*r == range);
  if (a != b) {
    const auto reversed =
        parse_range(std::to_string(std::max(a, b)) + "-" + std::to_string(std::min(a, b)));
    RC_ASSERT(!reversed.ok());
  }
}

RC_GTEST_PROP(RangeProps, AcceptsExactlyTheGrammar, ()) {
  const auto text = *string_over("0123456789-+ x", 12);
  const auto r = parse_range(text);
  // Model: split at the first '-', both halves plain u32, start <= end.
  const auto dash = text.find('-');
  const auto a = parse_plain_u32(text.substr(0, dash));
  const auto b = dash == std::string::npos ? a : parse_plain_u32(text.substr(dash + 1));
  const bool ok = a.ok() && b.ok() && *a <= *b;
  RC_ASSERT(r.ok() == ok);
  if (ok) RC_ASSERT(r->start == *a && r->end == *b);
}

// ---------------------------------------------------------------------------
// IP addresses (glibc's inet_pton / inet_ntop as the model)

std::optional<IpAddress> pton(const std::string& text) {
  IpAddress ip;
  if (inet_pton(AF_INET, text.c_str(), ip.bytes.data()) == 1) return ip;
  ip.v6 = true;
  if (inet_pton(AF_INET6, text.c_str(), ip.bytes.data()) == 1) return ip;
  return std::nullopt;
}

std::string ntop(const IpAddress& ip) {
  char buf[INET6_ADDRSTRLEN];
  const char* s = inet_ntop(ip.v6 ? AF_INET6 : AF_INET, ip.bytes.data(), buf, sizeof buf);
  return s ? s : "";
}

rc::Gen<IpAddress> any_v4() {
  return rc::gen::map(rc::gen::arbitrary<std::uint32_t>(), [](std::uint32_t v) {
    IpAddress ip;
    for (std::size_t i = 0; i < 4; ++i) ip.bytes[i] = static_cast<std::uint8_t>(v >> (24 - 8 * i));
    return ip;
  });
}

// IPv6 with many zero groups (to exercise "::"), sometimes IPv4-mapped.
rc::Gen<IpAddress> any_v6() {
  const auto group =
      rc::gen::oneOf(rc::gen::just<std::uint16_t>(0), rc::gen::just<std::uint16_t>(0xffff),
                     rc::gen::arbitrary<std::uint16_t>());
  return rc::gen::map(rc::gen::pair(rc::gen::container<std::vector<std::uint16_t>>(8, group),
                                    rc::gen::inRange(0, 4)),
                      [](const std::pair<std::vector<std::uint16_t>, int>& p) {
                        IpAddress ip;
                        ip.v6 = true;
                        auto groups = p.first;
                        if (p.second == 0) {  // IPv4-mapped
                          for (std::size_t i = 0; i < 5; ++i) groups[i] = 0;
                          groups[5] = 0xffff;
                        }
                        for (std::size_t i = 0; i < 8; ++i) {
                          ip.bytes[2 * i] = static_cast<std::uint8_t>(groups[i] >> 8);
                          ip.bytes[2 * i + 1] = static_cast<std::uint8_t>(groups[i] & 0xff);
                        }
                        return ip;
                      });
}

rc::Gen<IpAddress> any_ip() {
  return rc::gen::oneOf(any_v4(), any_v6());
}

RC_GTEST_PROP(IpProps, FormatThenParseIsIdentity, ()) {
  const auto ip = *any_ip();
  const auto text = format_ip(ip);
  const auto back = parse_ip(text);
  RC_ASSERT(back.ok());
  RC_ASSERT(*back == ip);
  // The model agrees on what the text means...
  const auto model = pton(text);
  RC_ASSERT(model.has_value());
  RC_ASSERT(*model == ip);
  // ...and on what inet_ntop's (differently canonical) text means.
  const auto from_ntop = parse_ip(ntop(ip));
  RC_ASSERT(from_ntop.ok());
  RC_ASSERT(*from_ntop == ip);
  RC_ASSERT(format_ip(*from_ntop) == text);
}

// RFC 5952 shape of the IPv6 text, checked independently of the formatter.
RC_GTEST_PROP(IpProps, V6TextIsRfc5952, ()) {
  const auto ip = *any_v6();
  const auto text = format_ip(ip);
  RC_ASSERT(text.find_first_of("ABCDEF") == std::string::npos);
  RC_ASSERT(text.find("::") == text.rfind("::"));
  RC_ASSERT(text.find(":::") == std::string::npos);
  // Count zero groups in the address and find the longest run.
  std::vector<unsigned> g(8);
  for (std::size_t i = 0; i < 8; ++i) g[i] = unsigned{ip.bytes[2 * i]} << 8 | ip.bytes[2 * i + 1];
  std::size_t longest = 0;
  for (std::size_t i = 0; i < 8; ++i) {
    std::size_t j = i;
    while (j < 8 && g[j] == 0) ++j;
    longest = std::max(longest, j - i);
  }
  const bool mapped =
      g[0] == 0 && g[1] == 0 && g[2] == 0 && g[3] == 0 && g[4] == 0 && g[5] == 0xffff;
  if (mapped) {
    RC_ASSERT(text.rfind("::ffff:", 0) == 0);
    RC_ASSERT(text.find('.') != std::string::npos);
  } else {
    RC_ASSERT((text.find("::") != std::string::npos) == (longest >= 2));
    // No group has a leading zero.
    std::size_t start = 0;
    while (start <= text.size()) {
      auto end = text.find(':', start);
      if (end == std::string::npos) end = text.size();
      const auto piece = text.substr(start, end - start);
      RC_ASSERT(piece.size() <= 4);
      if (piece.size() > 1) RC_ASSERT(piece[0] != '0');
      start = end + 1;
    }
  }
}

void check_ip_against_pton(const std::string& text) {
  const auto r = parse_ip(text);
  const auto model = pton(text);
  RC_CLASSIFY(model.has_value(), "valid");
  RC_CLASSIFY(model && model->v6, "IPv6");
  RC_ASSERT(r.ok() == model.has_value());
  if (r.ok()) RC_ASSERT(*r == *model);
}

RC_GTEST_PROP(IpProps, AcceptsExactlyWhatInetPtonAccepts, ()) {
  check_ip_against_pton(
      *rc::gen::oneOf(tokens_over({":", "::", ".", "0", "1", "00", "01", "255", "256", "ffff",
                                   "FFFF", "abcd", "12345", "1.2.3.4", "0000", "g"},
                                  12),
                      string_over("0123456789abcdefABCDEF:.", 40),
                      rc::gen::map(any_ip(), [](const IpAddress& ip) { return ntop(ip); })));
}

RC_GTEST_PROP(IpProps, NeverCrashes, (const std::string& text)) {
  const auto r = parse_ip(text);
  if (r.ok()) RC_ASSERT(parse_ip(format_ip(*r)).ok());
}

// ---------------------------------------------------------------------------
// networks

RC_GTEST_PROP(NetworkProps, RoundTripsAndContainsMatchesBitModel, ()) {
  const auto ip = *any_ip();
  const int width = ip.v6 ? 128 : 32;
  const int prefix = *rc::gen::inRange(0, width + 1);
  const Network net{ip, prefix};
  const auto back = parse_network(format_network(net));
  RC_ASSERT(back.ok());
  RC_ASSERT(*back == net);
  RC_ASSERT(network_contains(net, ip));

  // A second address of either family, often sharing a prefix with the first.
  auto other = *any_ip();
  if (other.v6 == ip.v6 && *rc::gen::arbitrary<bool>()) {
    const int keep = *rc::gen::inRange(0, width + 1);
    for (int bit = 0; bit < keep; ++bit) {
      const auto byte = static_cast<std::size_t>(bit / 8);
      const auto mask = static_cast<std::uint8_t>(0x80 >> (bit % 8));
      other.bytes[byte] =
          static_cast<std::uint8_t>((other.bytes[byte] & ~mask) | (ip.bytes[byte] & mask));
    }
  }
  bool model = other.v6 == ip.v6;
  for (int bit = 0; model && bit < prefix; ++bit) {
    const auto byte = static_cast<std::size_t>(bit / 8);
    const auto mask = 0x80 >> (bit % 8);
    model = (other.bytes[byte] & mask) == (ip.bytes[byte] & mask);
  }
  RC_ASSERT(network_contains(net, other) == model);
}

RC_GTEST_PROP(NetworkProps, ShortIpv4IsZeroFilled, ()) {
  const auto count = *rc::gen::inRange<std::size_t>(1, 5);
  const auto octets =
      *rc::gen::container<std::vector<std::uint8_t>>(count, rc::gen::arbitrary<std::uint8_t>());
  std::string text;
  IpAddress expected;
  for (std::size_t i = 0; i < count; ++i) {
    if (i) text += ".";
    text += std::to_string(octets[i]);
    expected.bytes[i] = octets[i];
  }
  const auto r = parse_network(text);
  RC_ASSERT(r.ok());
  RC_ASSERT(r->address == expected);
  RC_ASSERT(r->prefix == 32);
}

RC_GTEST_PROP(NetworkProps, NeverCrashes, ()) {
  const auto text =
      *rc::gen::oneOf(string_over("0123456789abcdef:./", 30), rc::gen::arbitrary<std::string>());
  const auto r = parse_network(text);
  if (r.ok()) {
    RC_ASSERT(r->prefix >= 0 && r->prefix <= (r->address.v6 ? 128 : 32));
    RC_ASSERT(*parse_network(format_network(*r)) == *r);
  }
}

// ---------------------------------------------------------------------------
// templates

// The `@{name}` scanning (docs/configs.md, "Variables") transcribed with
// std::string::find: the model. Names are
// trimmed of Unicode White_Space, matched here as UTF-8 byte sequences.
const char* const kSpaces[] = {" ",
                               "\t",
                               "\n",
                               "\v",
                               "\f",
                               "\r",
                               "\xC2\x85",
                               "\xC2\xA0",
                               "\xE1\x9A\x80",
                               "\xE2\x80\x80",
                               "\xE2\x80\x81",
                               "\xE2\x80\x82",
                               "\xE2\x80\x83",
                               "\xE2\x80\x84",
                               "\xE2\x80\x85",
                               "\xE2\x80\x86",
                               "\xE2\x80\x87",
                               "\xE2\x80\x88",
                               "\xE2\x80\x89",
                               "\xE2\x80\x8A",
                               "\xE2\x80\xA8",
                               "\xE2\x80\xA9",
                               "\xE2\x80\xAF",
                               "\xE2\x81\x9F",
                               "\xE3\x80\x80"};

std::string trim_unicode(std::string s) {
  for (bool again = true; again;) {
    again = false;
    for (const std::string sp : kSpaces) {
      if (s.size() >= sp.size() && s.compare(0, sp.size(), sp) == 0) {
        s.erase(0, sp.size());
        again = true;
      }
      if (s.size() >= sp.size() && s.compare(s.size() - sp.size(), sp.size(), sp) == 0) {
        s.resize(s.size() - sp.size());
        again = true;
      }
    }
  }
  return s;
}

std::string model_substitute(const std::string& text, std::string (*value)(const std::string&)) {
  std::string out;
  std::size_t pos = 0;
  while (true) {
    const auto open = text.find("@{", pos);
    if (open == std::string::npos) break;
    const auto close = text.find('}', open + 2);
    if (close == std::string::npos) break;
    out += text.substr(pos, open - pos);
    out += value(trim_unicode(text.substr(open + 2, close - open - 2)));
    pos = close + 1;
  }
  return out + text.substr(pos);
}

std::string bracket(const std::string& name) {
  return "<" + name + ">";
}

RC_GTEST_PROP(TemplateProps, PartsReconstructTheSubstitution, ()) {
  const auto text = *rc::gen::oneOf(
      tokens_over({"@{", "}", "@", "{", "a", "b", " ", "\t", "lithos:name", "$"}, 12),
      rc::gen::arbitrary<std::string>());
  const auto parts = parse_template(text);
  std::string substituted, literal_only;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const auto& part = parts[i];
    if (part.is_variable) {
      substituted += bracket(part.text);
      RC_ASSERT(trim_unicode(part.text) == part.text);
    } else {
      substituted += part.text;
      RC_ASSERT(!part.text.empty());
      if (i > 0) RC_ASSERT(parts[i - 1].is_variable);  // literals are merged
    }
  }
  RC_ASSERT(substituted == model_substitute(text, bracket));
  // With no variable the text is one literal (or nothing).
  if (text.find("@{") == std::string::npos) {
    RC_ASSERT(parts.size() == (text.empty() ? 0u : 1u));
  }
}

}  // namespace
