// Properties of the shared text helpers (common/text.hpp): hex and decimal
// numbers have one spelling each way.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <cstdint>
#include <optional>
#include <string>

#include "lithos/common/text.hpp"

RC_GTEST_PROP(Text, DecodeHexInvertsAppendHex, (const std::string& bytes)) {
  std::string hex = "prefix";
  lithos::append_hex(hex, bytes);
  RC_ASSERT(hex.size() == 6 + 2 * bytes.size());
  RC_ASSERT(lithos::decode_hex(std::string_view(hex).substr(6)) ==
            std::optional<std::string>(bytes));
}

RC_GTEST_PROP(Text, OnlyWhatAppendHexWritesDecodes, (const std::string& text)) {
  const auto bytes = lithos::decode_hex(text);
  if (!bytes) return;
  std::string again;
  lithos::append_hex(again, *bytes);
  RC_ASSERT(again == text);
}

RC_GTEST_PROP(Text, DecimalNumbersReadBack, (std::uint64_t value, std::int64_t signed_value)) {
  RC_ASSERT(lithos::to_u64(std::to_string(value)) == std::optional<std::uint64_t>(value));
  RC_ASSERT(lithos::to_i64(std::to_string(signed_value)) ==
            std::optional<std::int64_t>(signed_value));
}

RC_GTEST_PROP(Text, NumbersWithAnythingButDigitsAreRefused, (std::uint32_t value)) {
  const std::string digits = std::to_string(value);
  const char junk = *rc::gen::elementOf(std::string(" +-x.\n\t"));
  const auto at = *rc::gen::inRange<std::size_t>(0, digits.size() + 1);
  std::string text = digits;
  text.insert(at, 1, junk);
  if (junk == '-' && at == 0) {  // a sign: only the signed reader takes it
    RC_ASSERT(!lithos::to_u64(text));
    RC_ASSERT(lithos::to_i64(text) == std::optional<std::int64_t>(-std::int64_t{value}));
    return;
  }
  RC_ASSERT(!lithos::to_u64(text));
  RC_ASSERT(!lithos::to_i64(text));
}

TEST(Text, EmptyAndOverflowingNumbersAreRefused) {
  EXPECT_FALSE(lithos::to_u64(""));
  EXPECT_FALSE(lithos::to_u64("18446744073709551616"));
  EXPECT_EQ(lithos::to_u64("18446744073709551615"), std::optional<std::uint64_t>(UINT64_MAX));
  EXPECT_FALSE(lithos::decode_hex("0"));
  EXPECT_FALSE(lithos::decode_hex("AB"));  // lower case only
}
