#!/usr/bin/env bash
# The main job on the bundled example: installs dependencies, builds, and runs
# lithos_check on examples/basic (a sandbox with a two-instance daemon and a
# command), printing the effective configuration and the JSON report.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/build.sh build -DCMAKE_BUILD_TYPE=RelWithDebInfo
bin=$PWD/build/bin
cd examples/basic
echo "== lithos_check -C examples/basic/master.yaml"
"$bin/lithos_check" -C master.yaml
echo "== effective configuration"
"$bin/lithos_check" -C master.yaml --print-effective 2>/dev/null
echo "== the same check as JSON (for CI gates)"
"$bin/lithos_check" -C master.yaml --format json
echo "== a broken process config is rejected with every problem listed"
broken=$(mktemp)
trap 'rm -f "$broken"' EXIT
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
echo "== build the demo image (busybox) and the device dir, then run a Command container"
../../scripts/make-example-image.sh "$PWD/images/demo.v1"
if [ -c dev/null ]; then
  echo "dev/ already populated"
else
  "$bin/lithos_mkdev" "$PWD/dev" 2>/dev/null
fi
echo "== lithos_cmd --master master.yaml demo hello"
"$bin/lithos_cmd" --master master.yaml demo hello
echo "== the command's exit code is lithos_cmd's own: $?"
echo "== example done"
