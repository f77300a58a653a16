// Seccomp argument rules (docs/hardening.md, Argument rules): the bit
// patterns that deny personality(2) values agree with the plain list of
// allowed values for every 32-bit value, and each rule masks only the low 32
// bits the kernel reads.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <cstdint>

#include "lithos/policy/hardening.hpp"

using namespace lithos::policy;

namespace {

// Values near the allowed ones and single bits: where a wrong pattern would
// show first.
rc::Gen<std::uint32_t> personality_values() {
  return rc::gen::oneOf(
      rc::gen::arbitrary<std::uint32_t>(),
      rc::gen::map(rc::gen::inRange<unsigned>(0, 32), [](unsigned b) { return 1u << b; }),
      rc::gen::map(
          rc::gen::pair(rc::gen::elementOf(std::vector<std::uint32_t>(
                            std::begin(kPersonalityAllowed), std::end(kPersonalityAllowed))),
                        rc::gen::inRange<unsigned>(0, 32)),
          [](std::pair<std::uint32_t, unsigned> p) { return p.first ^ (1u << p.second); }));
}

}  // namespace

RC_GTEST_PROP(Hardening, PersonalityPatternsDenyExactlyTheValuesNotAllowed, ()) {
  const auto rules = personality_deny_rules();
  const std::uint32_t value = *personality_values();
  RC_ASSERT(denied_by(rules, value) == !personality_allowed(value));
}

TEST(Hardening, EveryAllowedPersonalityPasses) {
  const auto rules = personality_deny_rules();
  for (std::uint32_t value : kPersonalityAllowed) EXPECT_FALSE(denied_by(rules, value)) << value;
  EXPECT_TRUE(denied_by(rules, 0x0400000));  // READ_IMPLIES_EXEC
  EXPECT_TRUE(denied_by(rules, 0x0040000));  // ADDR_NO_RANDOMIZE
  EXPECT_TRUE(denied_by(rules, 0xfffffffe));
  EXPECT_EQ(rules.size(), 60u);
}

TEST(Hardening, DefaultArgumentRulesCoverTerminalInjectionAndVsock) {
  const auto rules = default_argument_rules();
  auto has = [&](std::string_view call, unsigned arg, std::uint32_t value) {
    for (const auto& r : rules)
      if (r.syscall == call && r.argument == arg && r.mask == 0xffffffff && r.value == value)
        return true;
    return false;
  };
  EXPECT_TRUE(has("ioctl", 1, kTiocsti));
  EXPECT_TRUE(has("ioctl", 1, kTioclinux));
  EXPECT_TRUE(has("socket", 0, kAfVsock));
  for (const auto& r : rules) EXPECT_NE(r.mask, 0u) << r.syscall;
}
