#!/usr/bin/env bash
# Fuzzing at depth: every libFuzzer target (configs, secrets, the plan
# decoder) for RUNS executions each (default 10 million) under
# AddressSanitizer + UndefinedBehaviorSanitizer, seeded from corpus/fuzz/.
# Prints one figure line per target for bench/RESULTS.md. A crash stops the
# script; its input is kept as corpus/fuzz/TARGET/crash-SHA1 (commit it as a
# seed once fixed: scripts/fuzz.sh and the unit tests then replay it).
#   bench/fuzz_depth.sh [RUNS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10000000}
shift || true
CXX=clang++ ./scripts/build.sh build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DLITHOS_FUZZ=ON -DLITHOS_TESTS=OFF -DLITHOS_WERROR=OFF
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
  for f in build-fuzz/fuzz/fuzz_*; do targets+=("$(basename "$f")"); done
fi
printf '%-18s %12s %9s %10s %8s\n' target executions seconds "exec/s" corpus
for name in "${targets[@]}"; do
  seeds=corpus/fuzz/${name#fuzz_}
  work=$(mktemp -d)
  artifacts=$(mktemp -d)
  [[ -d $seeds ]] && cp -r "$seeds"/. "$work"/ 2>/dev/null || true
  start=$(date +%s.%N)
  if ! "build-fuzz/fuzz/$name" -runs="$runs" -max_len=8192 -rss_limit_mb=2048 -timeout=10 \
    -artifact_prefix="$artifacts/" -print_final_stats=1 "$work" >"$work.log" 2>&1; then
    tail -40 "$work.log"
    for crash in "$artifacts"/*; do
      [[ -f $crash ]] || continue
      mkdir -p "$seeds"
      cp "$crash" "$seeds/crash-$(sha1sum "$crash" | cut -c1-16)"
      echo "kept $seeds/crash-$(sha1sum "$crash" | cut -c1-16)"
    done
    exit 1
  fi
  end=$(date +%s.%N)
  done_runs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$work.log" | grep -Eo '[0-9]+$')
  corpus=$(find "$work" -type f | wc -l)
  awk -v n="$name" -v r="$done_runs" -v s="$start" -v e="$end" -v c="$corpus" \
    'BEGIN { printf "%-18s %12d %9.0f %10.0f %8d\n", n, r, e - s, r / (e - s), c }'
  rm -rf "$work" "$work.log" "$artifacts"
done
