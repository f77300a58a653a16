#!/usr/bin/env bash
# Builds the libFuzzer targets with clang and runs each for N seconds
# (default 60), seeded from corpus/. Any crash fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
CXX=clang++ ./scripts/build.sh build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DLITHOS_FUZZ=ON -DLITHOS_TESTS=OFF -DLITHOS_WERROR=OFF
shopt -s nullglob
for fuzzer in build-fuzz/fuzz/fuzz_*; do
  name=$(basename "$fuzzer")
  seeds=corpus/fuzz/${name#fuzz_}
  work=$(mktemp -d)
  [[ -d $seeds ]] && cp -r "$seeds"/. "$work"/ 2>/dev/null || true
  echo "-- $name for ${seconds}s"
  "$fuzzer" -max_total_time="$seconds" -max_len=8192 -rss_limit_mb=2048 -timeout=10 \
    -print_final_stats=0 "$work" 2>"$work.log" || { tail -40 "$work.log"; exit 1; }
  grep -E '^#[0-9]+ *DONE' "$work.log" | tail -1 || true
  rm -rf "$work" "$work.log"
done
