#!/usr/bin/env bash
# Regenerates tools/lithos_knot_hot.ld, the link order that puts the code a
# knot start runs in one run of pages (docs/knot.md, "Memory"). Run it as
# root after changing what a start executes, then rebuild and compare
# bench_knot_start's "knot peak RSS" line before and after.
#   scripts/knot-hot-text.sh [BUILD]   (BUILD default: build, a release build)
# It traces two commands of bench_knot_start's tree through lithos_cmd, one
# that exits at once (`true`) and one the knot supervises for a second
# (`sleep`), single-stepping every knot process (about a minute in all).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
if [[ $(id -u) -ne 0 ]]; then
  echo "knot-hot-text.sh: run as root (the knot starts containers)" >&2
  exit 2
fi
ninja -C "$build" lithos_knot lithos_cmd bench_knot_start knot_text_trace
work=$(mktemp -d)
kept=
cleanup() {
  rm -rf "$work"
  if [[ -n $kept && -d $kept ]]; then
    # the knots made the tree's slice again after the bench removed it
    slice=$(sed -n 's/^cgroup-name: //p' "$kept/master.yaml")
    if [[ -n $slice ]]; then
      for dir in /sys/fs/cgroup/"$slice" /sys/fs/cgroup/*/"$slice"; do
        [[ -d $dir ]] && find "$dir" -depth -type d -exec rmdir {} \; 2>/dev/null
      done
    fi
    rm -rf "$kept"
  fi
  return 0
}
trap cleanup EXIT
kept=$("$build/bin/bench_knot_start" 1 --keep | sed -n 's/^kept //p')
[[ -d $kept ]] || { echo "knot-hot-text.sh: bench_knot_start kept no tree" >&2; exit 1; }
for entry in true sleep; do
  "$build/bin/knot_text_trace" trace "$build/bin/lithos_knot" "$work/$entry" -- \
    "$build/bin/lithos_cmd" --master "$kept/master.yaml" box "$entry"
done
"$build/bin/knot_text_trace" script "$build/tools/lithos_knot.map" "$work/true" "$work/sleep" \
  >"$work/hot.ld"
mv "$work/hot.ld" tools/lithos_knot_hot.ld
echo "wrote tools/lithos_knot_hot.ld; rebuild $build to use it"
