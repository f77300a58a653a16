// The launch plan's one wire format: what lithos_tree and lithos_cmd write
// into a sealed memfd for lithos_knot (docs/knot.md, "The launch plan").
//
// Text-safe framing, no escaping: "lithos-plan 3\n", then every field of
// InstancePlan in declaration order, numbers as `N;` and byte strings as
// `LEN:BYTES`, optionals and lists prefixed by a count. decode_plan accepts
// exactly what encode_plan writes (decode(encode(p)) == p, a property in
// proptests/prop_plan_wire.cpp) and refuses anything else with one line:
// another version, a truncated or oversized plan, trailing bytes, an
// enumeration or integer out of range. It checks the wire, not the policy.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "lithos/common/result.hpp"
#include "lithos/policy/plan.hpp"

namespace lithos::policy {

inline constexpr std::string_view kPlanMagic = "lithos-plan 3\n";
// Far above any real plan (a few KiB; the seccomp program is at most 4096
// instructions): a bigger memfd is refused before it is read.
inline constexpr std::size_t kMaxPlanBytes = std::size_t{4} << 20;

struct PlanWire {
  static std::string encode(const InstancePlan& plan);
  // Error: one line saying what is wrong and at which byte.
  static Result<InstancePlan> decode(std::string_view bytes);
};

// Encodes plan after plan, byte for byte as encode_plan does. The
// instances of one entry share their seccomp program, which is most of a
// plan's bytes: its encoding is kept and appended again while the next
// plan's program is equal (the tree's config reader encodes thousands).
class PlanEncoder {
 public:
  std::string encode(const InstancePlan& plan);

  struct ProgramMemo {
    bool valid = false;
    std::vector<SeccompInstruction> program;
    std::string bytes;
  };

 private:
  ProgramMemo memo_;
};

inline std::string encode_plan(const InstancePlan& plan) {
  return PlanWire::encode(plan);
}
inline Result<InstancePlan> decode_plan(std::string_view bytes) {
  return PlanWire::decode(bytes);
}

}  // namespace lithos::policy
