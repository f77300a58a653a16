#!/usr/bin/env bash
# consumer_test.sh BUILD_DIR SOURCE_DIR (CTest: InstalledPolicyLibrary)
#
# The policy library as another program uses it (cmake/install.cmake): installs
# the `dev` component of BUILD_DIR into a temporary prefix, builds
# tests/consumer/ against it twice, with find_package(lithos CONFIG) and with
# pkg-config, and runs both on a small config tree: each must print the plan
# of the tree's one instance. Nothing of the source or build tree is on the
# consumer's include or link path, so a header or library missing from the
# install fails the build.
#
# Environment: CXX (compiler of both builds), CXXFLAGS, LDFLAGS (sanitizer
# builds: the libraries' runtime), CMAKE (cmake to use), CMAKE_GENERATOR.
set -euo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 BUILD_DIR SOURCE_DIR" >&2
  exit 2
fi
build=$(cd "$1" && pwd)
source=$(cd "$2" && pwd)
cmake=${CMAKE:-cmake}
cxx=${CXX:-g++}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/lithos-consumer.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

echo "== install (component dev) into $prefix"
"$cmake" --install "$build" --prefix "$prefix" --component dev
# The dev component is the library alone: no programs.
[ ! -e "$prefix/bin" ] || fail "component dev installed programs in $prefix/bin"

echo "== a config tree: one sandbox, one process entry, one image"
tree=$tmp/tree
mkdir -p "$tree/sandboxes" "$tree/processes" "$tree/images/demo.v1/config" "$tree/dev/pts"
cat >"$tree/master.yaml" <<YAML
runtime-dir: $tmp/run
sandboxes-dir: $tree/sandboxes
processes-dir: $tree/processes
devfs-dir: $tree/dev
default-log-dir: $tmp/log
config-log-dir: $tmp/log/config
stdio-log-dir: $tmp/log/stderr
cgroup-name: ~
YAML
cat >"$tree/sandboxes/demo.yaml" <<YAML
image-dir: $tree/images
allow-users: [1-65535]
allow-groups: [1-65535]
default-user: 1000
default-group: 1000
allow-tcp-ports: [8000-8999]
YAML
cat >"$tree/processes/demo.yaml" <<'YAML'
web:
  instances: 1
  image: demo.v1
  config: /config/web.yaml
  variables:
    port: "8080"
YAML
cat >"$tree/images/demo.v1/config/web.yaml" <<'YAML'
kind: Daemon
executable: /bin/busybox
arguments: [httpd, -f, -p, "@{port}", -h, /www]
variables:
  port: !TcpPort
YAML
expected="plan demo/web.0 executable /bin/busybox"

check_output() {  # LABEL PROGRAM
  local out
  if ! out=$("$2" "$tree/master.yaml"); then
    fail "$1: $2 exited with an error"
  fi
  printf '%s\n' "$out"
  printf '%s\n' "$out" | grep -qxF "$expected" || fail "$1: no line \"$expected\""
}

echo "== find_package(lithos CONFIG) + lithos::policy"
"$cmake" -S "$source/tests/consumer" -B "$tmp/cmake-build" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_FIND_PACKAGE_NO_PACKAGE_REGISTRY=ON \
  -DCMAKE_FIND_PACKAGE_NO_SYSTEM_PACKAGE_REGISTRY=ON -DCMAKE_CXX_COMPILER="$cxx"
found=$(sed -n 's/^lithos_DIR:PATH=//p' "$tmp/cmake-build/CMakeCache.txt")
case $found in
  "$prefix"/*) ;;
  *) fail "find_package(lithos) used $found, not the installed package" ;;
esac
"$cmake" --build "$tmp/cmake-build"
check_output cmake "$tmp/cmake-build/lithos_consumer"

echo "== pkg-config --static lithos-policy"
pc=$(find "$prefix" -name lithos-policy.pc -path '*/pkgconfig/*' | head -1)
[ -n "$pc" ] || fail "lithos-policy.pc not installed"
PKG_CONFIG_PATH=$(dirname "$pc")${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
export PKG_CONFIG_PATH
[ "$(pkg-config --variable=prefix lithos-policy)" = "$prefix" ] ||
  fail "lithos-policy.pc: prefix $(pkg-config --variable=prefix lithos-policy), not $prefix"
# shellcheck disable=SC2046,SC2086  # flags are words
"$cxx" -std=c++20 ${CXXFLAGS:-} -o "$tmp/pc-consumer" "$source/tests/consumer/main.cpp" \
  $(pkg-config --cflags --static --libs lithos-policy) ${LDFLAGS:-}
check_output pkg-config "$tmp/pc-consumer"

echo "PASS: the installed policy library builds and runs a consumer (CMake and pkg-config)"
