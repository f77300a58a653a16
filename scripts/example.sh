#!/usr/bin/env bash
# The main job on the bundled example: installs dependencies, builds, and runs
# lithos_check on examples/basic (a sandbox with a two-instance daemon and a
# command), printing the effective configuration and the JSON report.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/build.sh build -DCMAKE_BUILD_TYPE=RelWithDebInfo
bin=${LITHOS_BIN:-$PWD/build/bin}
cd examples/basic
# lithos_check passes only what the knot can start: the image and the
# device dir come first.
echo "== build the demo image (busybox) and the device dir"
../../scripts/make-example-image.sh "$PWD/images/demo.v1"
if [ -c dev/null ]; then
  echo "dev/ already populated"
else
  "$bin/lithos_mkdev" "$PWD/dev" 2>/dev/null
fi
echo "== lithos_check -C examples/basic/master.yaml"
"$bin/lithos_check" -C master.yaml
echo "== effective configuration"
"$bin/lithos_check" -C master.yaml --print-effective 2>/dev/null
echo "== the same check as JSON (for CI gates: {\"version\": 1, ..., \"diagnostics\": [...]})"
"$bin/lithos_check" -C master.yaml --format json
echo "== a broken process config is rejected with every problem listed"
broken=$(mktemp)
trap 'rm -f "$broken"' EXIT  # replaced by a fuller trap once the tree runs
cat >"$broken" <<'YAML'
web:
  instances: 2
  image: demo.v1
  config: /config/web.yaml
  variables: {port: "80", greeting: "not a name!"}
escape:
  image: ../demo.v1
  config: config/web.yaml
YAML
if "$bin/lithos_check" -C master.yaml --sandbox demo --alternate-config "$broken"; then
  echo "expected the broken config to fail" >&2
  exit 1
fi
echo "== the same problems as GitHub Actions annotations (--format github; also sarif, gitlab)"
status=0
"$bin/lithos_check" -C master.yaml --sandbox demo --alternate-config "$broken" \
  --format github --srcroot "$PWD" || status=$?
if [ "$status" != 1 ]; then
  echo "expected exit status 1 from the broken config, got $status" >&2
  exit 1
fi
echo "== lithos_cmd --master master.yaml demo hello"
"$bin/lithos_cmd" --master master.yaml demo hello
echo "== the command's exit code is lithos_cmd's own: $?"

# The supervisor: one web server and two workers, kept running by lithos_tree.
running() {  # running NAME-PREFIX: knots of that prefix whose container has started
  local n=0 pid
  for pid in $(pgrep -f -- "lithos_knot --name demo/$1" || true); do
    if [ -n "$(pgrep -P "$pid" || true)" ]; then n=$((n + 1)); fi
  done
  echo "$n"
}
wait_for() {  # wait_for NAME-PREFIX COUNT: until exactly COUNT run (30 s at most)
  local i
  for i in $(seq 300); do
    if [ "$(running "$1")" = "$2" ]; then return 0; fi
    sleep 0.1
  done
  echo "expected $2 running instance(s) of demo/$1, found $(running "$1")" >&2
  return 1
}
original=$(mktemp)
cp processes/demo.yaml "$original"
tree_log=$(mktemp)
tree_pid=
stop_tree() {
  if [ -n "$tree_pid" ]; then
    kill -TERM "$tree_pid" 2>/dev/null || true
    wait "$tree_pid" || true
    tree_pid=
  fi
}
trap 'stop_tree; cp "$original" processes/demo.yaml; rm -f "$broken" "$original" "$tree_log" one-worker.yaml' EXIT

echo "== lithos_tree -C master.yaml (log: $tree_log)"
"$bin/lithos_tree" -C master.yaml --log-stderr --log-level info 2>"$tree_log" &
tree_pid=$!
wait_for web. 1
wait_for worker. 2
echo "== lithos_ps"
"$bin/lithos_ps" --no-color
echo "== the web instance answers on 127.0.0.1:8080"
/bin/busybox wget -q -O - http://127.0.0.1:8080/
echo "== a killed worker is restarted after its restart-timeout (0.5 s)"
victim=$(pgrep -f -- "lithos_knot --name demo/worker.1" | head -n1)
kill -KILL "$victim"
sleep 1
wait_for worker. 2
echo "worker.1: pid $victim killed, now pid $(pgrep -f -- "lithos_knot --name demo/worker.1" | head -n1)"
echo "== lithos_switch: two workers become one (checked first, then written atomically)"
sed 's/instances: 2/instances: 1/' "$original" >one-worker.yaml
"$bin/lithos_switch" --master master.yaml demo one-worker.yaml
wait_for worker. 1
"$bin/lithos_ps" --no-color
echo "== switch back to the original config"
"$bin/lithos_switch" --master master.yaml demo "$original"
wait_for worker. 2
echo "== SIGTERM: the tree stops every instance and exits"
stop_tree
for prefix in web. worker.; do
  if [ "$(running "$prefix")" != 0 ]; then
    echo "instances of demo/$prefix survived the tree" >&2
    exit 1
  fi
done
echo "== the tree's log"
cat "$tree_log"
echo "== example done"
