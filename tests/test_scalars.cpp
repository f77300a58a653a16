// Table-driven tests of the scalar grammars (numbers, plain ints, ranges,
// addresses, templates; docs/configs.md "Scalars": `Ki`, decimal timeouts,
// A > B ranges rejected).
#include "lithos/policy/scalars.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace {

using namespace lithos::policy::scalars;

constexpr const char* kInvalid = "number error: invalid digit";
constexpr const char* kEmpty = "number error: number is empty";
constexpr const char* kOverflow = "number error: number is too large or too small (for negative)";
const std::string kHint =
    " (hint: unit suffixes are k, M, G (powers of 1000) and ki/Ki, Mi, Gi (powers of 1024); ";

// ---------------------------------------------------------------------------
// numeric

struct NumericOk {
  const char* text;
  std::int64_t value;
};

class NumericAccepts : public ::testing::TestWithParam<NumericOk> {};

TEST_P(NumericAccepts, Value) {
  const auto r = parse_numeric(GetParam().text);
  ASSERT_TRUE(r.ok()) << GetParam().text << ": " << r.error();
  EXPECT_EQ(*r, GetParam().value) << GetParam().text;
}

constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();

INSTANTIATE_TEST_SUITE_P(
    Spec, NumericAccepts,
    ::testing::Values(
        NumericOk{"0", 0}, NumericOk{"42", 42}, NumericOk{"+42", 42}, NumericOk{"-42", -42},
        NumericOk{"0700", 700},  // a leading zero is not octal
        NumericOk{"1_000", 1000}, NumericOk{"1__0_", 10}, NumericOk{"12_M", 12000000},
        NumericOk{"10k", 10000}, NumericOk{"10M", 10000000}, NumericOk{"10G", 10000000000},
        NumericOk{"10ki", 10240}, NumericOk{"10Ki", 10240},  // Ki: fix #13
        NumericOk{"10Mi", 10485760}, NumericOk{"10Gi", 10737418240}, NumericOk{"10 Mi", 10485760},
        NumericOk{"10 \t k", 10000}, NumericOk{"  7  ", 7}, NumericOk{"\t-3\n", -3},
        NumericOk{"100Mi", 104857600}, NumericOk{"-2k", -2000}, NumericOk{"0x10", 16},
        NumericOk{"0xfF", 255}, NumericOk{"0x-10", -16}, NumericOk{"0x+10", 16},
        NumericOk{"0o777", 511}, NumericOk{"0o-7", -7}, NumericOk{"0b101", 5},
        NumericOk{"0b1_0000_0000", 256}, NumericOk{"0x1_0", 16}, NumericOk{"0x10k", 16000},
        NumericOk{"0x1 Ki", 1024}, NumericOk{"0k", 0}, NumericOk{"9223372036854775807", kMax},
        NumericOk{"-9223372036854775808", kMin}, NumericOk{"0x7fffffffffffffff", kMax},
        NumericOk{"0x-8000000000000000", kMin}, NumericOk{"9223372036854775k", 9223372036854775000},
        NumericOk{"8Gi", 8589934592},
        NumericOk{"\xC2\xA0"
                  "5\xE3\x80\x80",
                  5}));  // U+00A0 and U+3000 are whitespace too

struct NumericErr {
  const char* text;
  std::string error;
};

class NumericRejects : public ::testing::TestWithParam<NumericErr> {};

TEST_P(NumericRejects, Message) {
  const auto r = parse_numeric(GetParam().text);
  ASSERT_FALSE(r.ok()) << GetParam().text << " = " << *r;
  EXPECT_EQ(r.error(), GetParam().error) << GetParam().text;
}

INSTANTIATE_TEST_SUITE_P(
    Spec, NumericRejects,
    ::testing::Values(
        NumericErr{"", kEmpty}, NumericErr{"   ", kEmpty}, NumericErr{"\n\t", kEmpty},
        NumericErr{"+", kInvalid}, NumericErr{"-", kInvalid}, NumericErr{"_12", kInvalid},
        NumericErr{"-_1", kInvalid}, NumericErr{"1 2", kInvalid}, NumericErr{"1.5", kInvalid},
        NumericErr{"-0x10", std::string(kInvalid) +
                                " (hint: the sign goes after the radix prefix, e.g. 0x-10)"},
        NumericErr{"0X10", kInvalid},  // upper-case prefix is not a prefix
        NumericErr{"0x", kInvalid}, NumericErr{"0b", kInvalid},  // too short for a radix
        NumericErr{"0xg", kInvalid}, NumericErr{"0o8", kInvalid}, NumericErr{"0b2", kInvalid},
        NumericErr{"0x_1", kInvalid}, NumericErr{"k", kInvalid}, NumericErr{"Mi", kInvalid},
        NumericErr{"1kk", kInvalid}, NumericErr{"1 k k", kInvalid},
        NumericErr{"0xk", kInvalid},  // "0x" is not longer than 2 chars
        NumericErr{"100m", std::string(kInvalid) + kHint + "did you mean 100M or 100Mi?)"},
        NumericErr{"10 m", std::string(kInvalid) + kHint + "did you mean 10M or 10Mi?)"},
        NumericErr{"10K", std::string(kInvalid) + kHint + "did you mean 10k or 10Ki?)"},
        NumericErr{"5MB", std::string(kInvalid) + kHint + "did you mean 5M or 5Mi?)"},
        NumericErr{"5kB", std::string(kInvalid) + kHint + "did you mean 5k or 5Ki?)"},
        NumericErr{"5KB", std::string(kInvalid) + kHint + "did you mean 5k or 5Ki?)"},
        NumericErr{"5GB", std::string(kInvalid) + kHint + "did you mean 5G or 5Gi?)"},
        NumericErr{"5KiB", std::string(kInvalid) + kHint + "did you mean 5Ki?)"},
        NumericErr{"5MiB", std::string(kInvalid) + kHint + "did you mean 5Mi?)"},
        NumericErr{"5GiB", std::string(kInvalid) + kHint + "did you mean 5Gi?)"},
        NumericErr{"5mi", std::string(kInvalid) + kHint + "did you mean 5Mi?)"},
        NumericErr{"5gi", std::string(kInvalid) + kHint + "did you mean 5Gi?)"},
        NumericErr{"0x10m", std::string(kInvalid) + kHint + "did you mean 0x10M or 0x10Mi?)"},
        NumericErr{"2T", std::string(kInvalid) + kHint + "did you mean 2000G?)"},
        NumericErr{"2TB", std::string(kInvalid) + kHint + "did you mean 2000G?)"},
        NumericErr{"2Ti", std::string(kInvalid) + kHint + "did you mean 2048Gi?)"},
        NumericErr{"2TiB", std::string(kInvalid) + kHint + "did you mean 2048Gi?)"},
        NumericErr{"9223372036854775807T", std::string(kInvalid) + kHint + "there is no T suffix)"},
        NumericErr{"abcm", kInvalid},  // no hint when the number itself is bad
        NumericErr{"9223372036854775808", kOverflow}, NumericErr{"-9223372036854775809", kOverflow},
        NumericErr{"9223372036854775807k", kOverflow},
        NumericErr{"-9223372036854775808k", kOverflow}, NumericErr{"9223372036854776Ki", kOverflow},
        NumericErr{"0x8000000000000000", kOverflow},
        NumericErr{"99999999999999999999999999", kOverflow}, NumericErr{"\xFF", kInvalid}));

TEST(Numeric, EmbeddedNulIsInvalid) {
  const auto r = parse_numeric(std::string_view("1\0", 2));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), kInvalid);
}

// ---------------------------------------------------------------------------
// plain ints

TEST(PlainInt, U32) {
  struct Case {
    const char* text;
    bool ok;
    std::uint32_t value;
    const char* error;
  };
  const Case cases[] = {
      {"0", true, 0, ""},
      {"65534", true, 65534, ""},
      {"+80", true, 80, ""},
      {"007", true, 7, ""},
      {"4294967295", true, 4294967295u, ""},
      {"4294967296", false, 0, "number too large to fit in target type"},
      {"", false, 0, "cannot parse integer from empty string"},
      {"+", false, 0, "invalid digit found in string"},
      {"-1", false, 0, "invalid digit found in string"},
      {" 1", false, 0, "invalid digit found in string"},
      {"1 ", false, 0, "invalid digit found in string"},
      {"1_000", false, 0, "invalid digit found in string"},
      {"1k", false, 0, "invalid digit found in string"},
      {"0x10", false, 0, "invalid digit found in string"},
      {"++1", false, 0, "invalid digit found in string"},
  };
  for (const auto& c : cases) {
    const auto r = parse_plain_u32(c.text);
    ASSERT_EQ(r.ok(), c.ok) << c.text;
    if (c.ok) {
      EXPECT_EQ(*r, c.value) << c.text;
    } else {
      EXPECT_EQ(r.error(), c.error) << c.text;
    }
  }
}

TEST(PlainInt, U64) {
  EXPECT_EQ(*parse_plain_u64("18446744073709551615"), 18446744073709551615u);
  EXPECT_EQ(*parse_plain_u64("4294967296"), 4294967296u);
  EXPECT_EQ(parse_plain_u64("18446744073709551616").error(),
            "number too large to fit in target type");
  EXPECT_EQ(parse_plain_u64("1M").error(), "invalid digit found in string");
}

// ---------------------------------------------------------------------------
// bool

TEST(Bool, ExactlyTrueOrFalse) {
  EXPECT_TRUE(*parse_bool("true"));
  EXPECT_FALSE(*parse_bool("false"));
  for (const char* bad : {"yes", "True", "TRUE", "1", "on", "", " true", "false ", "truex"}) {
    const auto r = parse_bool(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error(), std::string("bad boolean \"") + bad + "\"");
  }
  EXPECT_EQ(parse_bool("a\"b\n").error(), "bad boolean \"a\\\"b\\n\"");
}

// ---------------------------------------------------------------------------
// seconds

TEST(Seconds, Accepts) {
  struct Case {
    const char* text;
    double value;
  };
  const Case cases[] = {{"5", 5},        {"0", 0},        {"0.5", 0.5},   {"1.25", 1.25},
                        {"1_000", 1000}, {" 2.5 ", 2.5},  {"10.000", 10}, {"0x10", 16},
                        {"2k", 2000},    {"007.50", 7.5}, {"+3", 3},      {"12_0", 120}};
  for (const auto& c : cases) {
    const auto r = parse_seconds(c.text);
    ASSERT_TRUE(r.ok()) << c.text << ": " << r.error();
    EXPECT_DOUBLE_EQ(*r, c.value) << c.text;
  }
}

TEST(Seconds, Rejects) {
  for (const char* bad : {"", " ", "-1", "-0.5", ".5", "5.", "1e3", "1.5e3", "inf", "nan",
                          "infinity", "5s", "0.5.1", "1_0.5", "0.5_0", "+0.5", "abc", "1,5"}) {
    const auto r = parse_seconds(bad);
    EXPECT_FALSE(r.ok()) << bad << " = " << *r;
  }
  EXPECT_EQ(parse_seconds("-1").error(), "timeout \"-1\" must not be negative");
  EXPECT_EQ(parse_seconds("5s").error(),
            "invalid timeout \"5s\" (expected seconds: a whole number such as 5 or 1_000, or a "
            "decimal such as 0.5)");
  EXPECT_EQ(parse_seconds("99999999999999999999").error(), kOverflow);
}

// ---------------------------------------------------------------------------
// ranges

TEST(Range, Accepts) {
  struct Case {
    const char* text;
    Range value;
  };
  const Case cases[] = {{"5", {5, 5}},
                        {"0", {0, 0}},
                        {"1-99", {1, 99}},
                        {"1000-2000", {1000, 2000}},
                        {"7-7", {7, 7}},
                        {"+1-+5", {1, 5}},
                        {"0-4294967295", {0, 4294967295u}}};
  for (const auto& c : cases) {
    const auto r = parse_range(c.text);
    ASSERT_TRUE(r.ok()) << c.text << ": " << r.error();
    EXPECT_EQ(*r, c.value) << c.text;
  }
}

TEST(Range, Rejects) {
  for (const char* bad : {"5-", "-5", "1 - 5", "0x10", "", "-", "1-2-3", " 1", "1k", "1_0",
                          "4294967296", "1-4294967296", "a-b", "1--5"}) {
    const auto r = parse_range(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error(), "Error parsing range") << bad;
  }
  const auto r = parse_range("10-5");  // fix #14
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), "range start 10 is greater than its end 5");
}

TEST(Range, Format) {
  EXPECT_EQ(format_range({5, 5}), "5");
  EXPECT_EQ(format_range({1, 99}), "1-99");
  EXPECT_EQ(format_range({0, 4294967295u}), "0-4294967295");
}

// ---------------------------------------------------------------------------
// IP addresses

IpAddress v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
  IpAddress ip;
  ip.bytes[0] = a;
  ip.bytes[1] = b;
  ip.bytes[2] = c;
  ip.bytes[3] = d;
  return ip;
}

IpAddress v6(std::initializer_list<std::uint16_t> groups) {
  IpAddress ip;
  ip.v6 = true;
  std::size_t i = 0;
  for (const auto g : groups) {
    ip.bytes[i++] = static_cast<std::uint8_t>(g >> 8);
    ip.bytes[i++] = static_cast<std::uint8_t>(g & 0xFF);
  }
  return ip;
}

TEST(Ip, ParsesV4) {
  EXPECT_EQ(*parse_ip("10.0.0.1"), v4(10, 0, 0, 1));
  EXPECT_EQ(*parse_ip("0.0.0.0"), v4(0, 0, 0, 0));
  EXPECT_EQ(*parse_ip("255.255.255.255"), v4(255, 255, 255, 255));
  EXPECT_EQ(*parse_ip("192.168.100.20"), v4(192, 168, 100, 20));
}

TEST(Ip, ParsesV6) {
  struct Case {
    const char* text;
    IpAddress value;
  };
  const Case cases[] = {
      {"::", v6({0, 0, 0, 0, 0, 0, 0, 0})},
      {"::1", v6({0, 0, 0, 0, 0, 0, 0, 1})},
      {"1::", v6({1, 0, 0, 0, 0, 0, 0, 0})},
      {"2001:db8::1", v6({0x2001, 0xdb8, 0, 0, 0, 0, 0, 1})},
      {"2001:DB8::A", v6({0x2001, 0xdb8, 0, 0, 0, 0, 0, 0xa})},
      {"1:2:3:4:5:6:7:8", v6({1, 2, 3, 4, 5, 6, 7, 8})},
      {"0001:0002:0003:0004:0005:0006:0007:0008", v6({1, 2, 3, 4, 5, 6, 7, 8})},
      {"1::8", v6({1, 0, 0, 0, 0, 0, 0, 8})},
      {"1:2:3::5:6:7:8", v6({1, 2, 3, 0, 5, 6, 7, 8})},  // "::" for one group is legal text
      {"1:2:3:4:5:6:7::", v6({1, 2, 3, 4, 5, 6, 7, 0})},
      {"::2:3:4:5:6:7:8", v6({0, 2, 3, 4, 5, 6, 7, 8})},
      {"::ffff:1.2.3.4", v6({0, 0, 0, 0, 0, 0xffff, 0x0102, 0x0304})},
      {"::1.2.3.4", v6({0, 0, 0, 0, 0, 0, 0x0102, 0x0304})},
      {"64:ff9b::192.0.2.1", v6({0x64, 0xff9b, 0, 0, 0, 0, 0xc000, 0x0201})},
      {"1:2:3:4:5:6:1.2.3.4", v6({1, 2, 3, 4, 5, 6, 0x0102, 0x0304})},
      {"1:2:3:4:5::1.2.3.4", v6({1, 2, 3, 4, 5, 0, 0x0102, 0x0304})},
      {"fe80::1:0:0:0", v6({0xfe80, 0, 0, 0, 1, 0, 0, 0})},
  };
  for (const auto& c : cases) {
    const auto r = parse_ip(c.text);
    ASSERT_TRUE(r.ok()) << c.text << ": " << r.error();
    EXPECT_EQ(*r, c.value) << c.text;
  }
}

TEST(Ip, Rejects) {
  for (const char* bad : {"",
                          " ",
                          "1.2.3",
                          "1.2.3.4.5",
                          "256.1.1.1",
                          "1.2.3.-1",
                          "01.2.3.4",
                          "1.2.3.04",
                          "1.2.3.00",
                          "1.2.3.4 ",
                          " 1.2.3.4",
                          "1..2.3",
                          "1.2.3.4.",
                          "localhost",
                          "0x1.2.3.4",
                          ":",
                          ":::",
                          "1:",
                          ":1",
                          "1:2:3:4:5:6:7",
                          "1:2:3:4:5:6:7:8:9",
                          "1:2:3:4:5:6:7:8::",
                          "::1:2:3:4:5:6:7:8",
                          "1::2::3",
                          "12345::",
                          "1:::2",
                          "g::",
                          "::1.2.3",
                          "::1.2.3.4:5",
                          "1.2.3.4::",
                          "::ffff:01.2.3.4",
                          "::ffff:256.2.3.4",
                          "1:2:3:4:5:6:7:1.2.3.4",
                          "::1:2:3:4:5:6:1.2.3.4",
                          "fe80::1%eth0",
                          "[::1]",
                          "::1/128",
                          "1.2.3.4/32"}) {
    const auto r = parse_ip(bad);
    ASSERT_FALSE(r.ok()) << bad << " = " << format_ip(*r);
    EXPECT_EQ(r.error(), std::string("invalid IP address \"") + bad + "\"");
  }
}

TEST(Ip, FormatsRfc5952) {
  struct Case {
    IpAddress ip;
    const char* text;
  };
  const Case cases[] = {
      {v4(10, 0, 0, 1), "10.0.0.1"},
      {v4(0, 0, 0, 0), "0.0.0.0"},
      {v6({0, 0, 0, 0, 0, 0, 0, 0}), "::"},
      {v6({0, 0, 0, 0, 0, 0, 0, 1}), "::1"},
      {v6({1, 0, 0, 0, 0, 0, 0, 0}), "1::"},
      {v6({0x2001, 0xdb8, 0, 0, 0, 0, 0, 1}), "2001:db8::1"},
      {v6({1, 0, 1, 1, 1, 1, 1, 1}), "1:0:1:1:1:1:1:1"},                // single zero group stays
      {v6({0x2001, 0xdb8, 0, 0, 1, 0, 0, 1}), "2001:db8::1:0:0:1"},     // tie: first
      {v6({0x2001, 0, 0, 1, 0, 0, 0, 1}), "2001:0:0:1::1"},             // longest wins
      {v6({0xABCD, 0x00EF, 0, 0, 0, 0, 0, 0x0A00}), "abcd:ef::a00"},    // lower case
      {v6({0, 0, 0, 0, 0, 0xffff, 0x0102, 0x0304}), "::ffff:1.2.3.4"},  // mapped
      {v6({0, 0, 0, 0, 0, 0, 0x0102, 0x0304}), "::102:304"},            // compat: plain hex
      {v6({1, 2, 3, 4, 5, 6, 7, 8}), "1:2:3:4:5:6:7:8"},
      {v6({1, 2, 3, 4, 5, 6, 7, 0}), "1:2:3:4:5:6:7:0"},
      {v6({0, 2, 3, 4, 5, 6, 7, 8}), "0:2:3:4:5:6:7:8"},
      {v6({0, 0, 3, 4, 5, 6, 7, 8}), "::3:4:5:6:7:8"},
      {v6({1, 2, 3, 4, 5, 6, 0, 0}), "1:2:3:4:5:6::"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(format_ip(c.ip), c.text);
    const auto back = parse_ip(c.text);
    ASSERT_TRUE(back.ok()) << c.text;
    EXPECT_EQ(*back, c.ip) << c.text;
  }
  EXPECT_EQ(format_ip(*parse_ip("1:0:1:1:1:1:1:1")), "1:0:1:1:1:1:1:1");
  EXPECT_EQ(format_ip(*parse_ip("2001:0DB8:0000:0000:0000:0000:0000:0001")), "2001:db8::1");
}

// ---------------------------------------------------------------------------
// networks

TEST(Network, Parses) {
  struct Case {
    const char* text;
    IpAddress address;
    int prefix;
    const char* formatted;
  };
  const Case cases[] = {
      {"10.1", v4(10, 1, 0, 0), 32, "10.1.0.0/32"},
      {"10", v4(10, 0, 0, 0), 32, "10.0.0.0/32"},
      {"10.0.0.5/24", v4(10, 0, 0, 5), 24, "10.0.0.5/24"},  // host bits kept
      {"10.0.0.0/8", v4(10, 0, 0, 0), 8, "10.0.0.0/8"},
      {"0.0.0.0/0", v4(0, 0, 0, 0), 0, "0.0.0.0/0"},
      {"1.2.3.4/32", v4(1, 2, 3, 4), 32, "1.2.3.4/32"},
      {"172.16/12", v4(172, 16, 0, 0), 12, "172.16.0.0/12"},
      {"::", v6({0, 0, 0, 0, 0, 0, 0, 0}), 128, "::/128"},
      {"::/0", v6({0, 0, 0, 0, 0, 0, 0, 0}), 0, "::/0"},
      {"2001:db8::/32", v6({0x2001, 0xdb8, 0, 0, 0, 0, 0, 0}), 32, "2001:db8::/32"},
      {"fd00::1/128", v6({0xfd00, 0, 0, 0, 0, 0, 0, 1}), 128, "fd00::1/128"},
  };
  for (const auto& c : cases) {
    const auto r = parse_network(c.text);
    ASSERT_TRUE(r.ok()) << c.text << ": " << r.error();
    EXPECT_EQ(r->address, c.address) << c.text;
    EXPECT_EQ(r->prefix, c.prefix) << c.text;
    EXPECT_EQ(format_network(*r), c.formatted);
    const auto again = parse_network(format_network(*r));
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(*again, *r);
  }
}

TEST(Network, Rejects) {
  EXPECT_EQ(parse_network("10.0.0.0/33").error(),
            "invalid network \"10.0.0.0/33\": prefix 33 is larger than 32");
  EXPECT_EQ(parse_network("::/129").error(),
            "invalid network \"::/129\": prefix 129 is larger than 128");
  EXPECT_EQ(parse_network("1.2.3.4/").error(),
            "invalid network \"1.2.3.4/\": the prefix after / must be a number");
  for (const char* bad :
       {"", "/8", "1.2.3.4.5", "256.0.0.0/8", "01.0.0.0", "10.0.0.0/-1", "10.0.0.0/8/8",
        "10.0.0.0/ 8", "10.0.0.0/1000", "10./8", "host/24", "::1/x", "1.2.3.4 /8", "10.0.0.0/+8"}) {
    const auto r = parse_network(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().rfind(std::string("invalid network \"") + bad + "\": ", 0), 0u)
        << r.error();
  }
}

TEST(Network, Contains) {
  const auto net = *parse_network("10.0.0.5/24");
  EXPECT_TRUE(network_contains(net, v4(10, 0, 0, 1)));
  EXPECT_TRUE(network_contains(net, v4(10, 0, 0, 255)));
  EXPECT_FALSE(network_contains(net, v4(10, 0, 1, 1)));
  EXPECT_FALSE(network_contains(net, *parse_ip("::ffff:10.0.0.1")));  // family differs
  EXPECT_TRUE(network_contains(*parse_network("0.0.0.0/0"), v4(8, 8, 8, 8)));
  EXPECT_TRUE(network_contains(*parse_network("1.2.3.4"), v4(1, 2, 3, 4)));
  EXPECT_FALSE(network_contains(*parse_network("1.2.3.4"), v4(1, 2, 3, 5)));
  const auto n12 = *parse_network("172.16/12");
  EXPECT_TRUE(network_contains(n12, v4(172, 31, 255, 255)));
  EXPECT_FALSE(network_contains(n12, v4(172, 32, 0, 0)));
  const auto n6 = *parse_network("2001:db8::/33");
  EXPECT_TRUE(network_contains(n6, *parse_ip("2001:db8:7fff::1")));
  EXPECT_FALSE(network_contains(n6, *parse_ip("2001:db8:8000::1")));
  EXPECT_FALSE(network_contains(n6, v4(32, 1, 13, 184)));
}

// ---------------------------------------------------------------------------
// templates

TemplatePart lit(const char* s) {
  return {false, s};
}
TemplatePart var(const char* s) {
  return {true, s};
}

TEST(Template, ScanningAlgorithm) {
  struct Case {
    const char* text;
    std::vector<TemplatePart> parts;
  };
  const Case cases[] = {
      {"", {}},
      {"plain", {lit("plain")}},
      {"@{x}", {var("x")}},
      {"--port=@{port}", {lit("--port="), var("port")}},
      {"@{ a }-@{b}", {var("a"), lit("-"), var("b")}},
      {"@{a@{b}}", {var("a@{b"), lit("}")}},
      {"@{x", {lit("@{x")}},
      {"a@{x", {lit("a@{x")}},
      {"@{a}@{x", {var("a"), lit("@{x")}},
      {"@{}", {var("")}},
      {"@{ \t }", {var("")}},
      {"@{lithos:name}", {var("lithos:name")}},
      {"@x}{@", {lit("@x}{@")}},
      {"@", {lit("@")}},
      {"}@{a}}", {lit("}"), var("a"), lit("}")}},
      {"@@{a}", {lit("@"), var("a")}},
      {"@{a b}", {var("a b")}},
      {"\xC3\xA9@{ \xC3\xA9 }\xFF", {lit("\xC3\xA9"), var("\xC3\xA9"), lit("\xFF")}},
      {"@{\xC2\xA0x\xE3\x80\x80}", {var("x")}},  // Unicode whitespace is trimmed too
  };
  for (const auto& c : cases) {
    EXPECT_EQ(parse_template(c.text), c.parts) << c.text;
  }
}

}  // namespace
