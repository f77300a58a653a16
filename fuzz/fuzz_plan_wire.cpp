// libFuzzer target: the launch plan's decoder, the one parser lithos_knot runs
// as root. Nothing may crash, and the wire is canonical: whatever decodes
// re-encodes to exactly the bytes it came from.
//
//   fuzz_plan_wire corpus/fuzz/plan_wire
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "lithos/policy/plan_wire.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  if (auto plan = lithos::policy::decode_plan(input); plan.ok()) {
    if (lithos::policy::encode_plan(*plan) != input) __builtin_trap();
  }
  return 0;
}
