// The property generators' way to an InstancePlan: the type has no public
// constructor (only the plan builder makes one), and names this struct a
// friend for the tests.
#pragma once

#include "lithos/policy/plan.hpp"

namespace lithos::policy {

struct PlanTestAccess {
  static InstancePlan blank() { return InstancePlan(); }
};

}  // namespace lithos::policy
