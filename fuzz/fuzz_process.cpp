// libFuzzer target: the config round-trip property (config_round_trip.hpp)
// for the process config.
#include "config_round_trip.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return lithos::fuzz::check_config_round_trip<lithos::policy::ProcessConfigCodec>(data, size);
}
