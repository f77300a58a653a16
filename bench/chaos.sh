#!/usr/bin/env bash
# The crash-only chaos campaigns of tests/test_tree_crash_only.cpp at full
# size (CI runs them small): kill -9 of the tree during churn, two trees
# started at the same instant, kill -9 of knots and containers (ROUNDS each,
# default 100) and reload-signal storms (ROUNDS x 10 signals). Needs root
# and a built tree (scripts/build.sh build). Figures go to bench/RESULTS.md.
#   bench/chaos.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-100}
LITHOS_CHAOS_ROUNDS=$rounds build/tests/test_tree_crash_only \
  --gtest_filter='CrashOnlyTest.KillNineDuringChurn*:CrashOnlyTest.TwoTreesStartedTogether*:CrashOnlyTest.KillingKnots*:CrashOnlyTest.ReloadStorms*:CrashOnlyTest.SwitchRaces*' |
  grep -E '^chaos|^\[  (PASSED|FAILED) |OK \]|FAILED \]'
