#!/usr/bin/env bash
# Runs every test: unit, corpus, property and integration tests (the latter
# start real containers and need root), a sanitizer build of all of them, and
# a short smoke run of each libFuzzer target. This is what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh

echo "== build (RelWithDebInfo, warnings as errors)"
./scripts/build.sh build -DCMAKE_BUILD_TYPE=RelWithDebInfo

echo "== fuzz smoke (clang, libFuzzer)"
./scripts/fuzz.sh 15

echo "== tests under AddressSanitizer + UndefinedBehaviorSanitizer"
./scripts/build.sh build-asan -DCMAKE_BUILD_TYPE=Debug -DLITHOS_SANITIZE=ON
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build-asan --output-on-failure -j2

echo "== tests"
ctest --test-dir build --output-on-failure -j2
