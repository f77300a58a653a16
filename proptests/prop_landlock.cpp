// Landlock rights by ABI: what lithos handles never exceeds what the ABI
// knows, newer ABIs only add rights, and the running kernel accepts the
// ruleset lithos builds for any ABI up to its own and any plan shape.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <cstdint>
#include <vector>

#include "lithos/runtime/landlock.hpp"

namespace {

using namespace lithos::runtime;
using namespace lithos::runtime::landlock;

bool subset(std::uint64_t a, std::uint64_t b) {
  return (a & ~b) == 0;
}

RC_GTEST_PROP(LandlockRights, HandledRightsAreSupportedAndGrowWithTheAbi, ()) {
  const int abi = *rc::gen::inRange(-3, 12);
  RC_ASSERT(subset(handled_fs(abi), supported_fs(abi)));
  RC_ASSERT(subset(write_files_rights(abi), handled_fs(abi)));
  RC_ASSERT(subset(supported_fs(abi), supported_fs(abi + 1)));
  RC_ASSERT(subset(supported_net(abi), supported_net(abi + 1)));
  RC_ASSERT(subset(supported_scopes(abi), supported_scopes(abi + 1)));
  // Reading and executing are never restricted.
  RC_ASSERT((handled_fs(abi) & (kFsReadFile | kFsReadDir | kFsExecute)) == 0u);
}

RC_GTEST_PROP(LandlockRuleset, KernelAcceptsTheRulesetForEveryAbiAndPlan, ()) {
  const int kernel = landlock_abi();
  RC_PRE(kernel >= kLandlockMinAbi);
  const int abi = *rc::gen::inRange(kLandlockMinAbi, kernel + 1);
  lithos::policy::LandlockPlan plan;
  plan.enabled = true;
  plan.writable = {"/tmp"};
  plan.write_files = *rc::gen::elementOf(
      std::vector<std::vector<std::string>>{{}, {"/dev"}, {"/dev", "/proc"}, {"/dev/null"}});
  plan.restrict_bind = *rc::gen::arbitrary<bool>();
  plan.bind_ports =
      *rc::gen::container<std::vector<std::uint16_t>>(rc::gen::arbitrary<std::uint16_t>());
  plan.scope_abstract_unix = *rc::gen::arbitrary<bool>();
  plan.scope_signals = *rc::gen::arbitrary<bool>();
  auto r = prepare_landlock(plan, abi);
  RC_ASSERT(r.ok());
  RC_ASSERT(r->ready());
  RC_ASSERT(subset(r->handled_fs, supported_fs(abi)));
  RC_ASSERT(subset(r->handled_net, supported_net(abi)));
  RC_ASSERT(subset(r->scoped, supported_scopes(abi)));
  RC_ASSERT((r->handled_net != 0) == (plan.restrict_bind && abi >= 4));
}

}  // namespace
