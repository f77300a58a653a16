// The runtime's descriptor owner is the common one (lithos/common/fd.hpp).
#pragma once

#include "lithos/common/fd.hpp"

namespace lithos::runtime {

using lithos::read_all;
using lithos::ReadLimits;
using lithos::UniqueFd;

}  // namespace lithos::runtime
