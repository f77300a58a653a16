#!/usr/bin/env bash
# Builds the Debian packages from a built build directory with CPack
# (cmake/package.cmake): scripts/package.sh [BUILD_DIR [OUT_DIR]]
# (default: build, and BUILD_DIR/packages). Prints the path of each package:
# lithos_VERSION_ARCH.deb, lithos-dev_VERSION_ARCH.deb and the debug symbols
# lithos-dbgsym_VERSION_ARCH.ddeb. Packages install to /usr whatever the
# build's CMAKE_INSTALL_PREFIX. Needs dpkg-dev (dpkg-shlibdeps), file and
# binutils (scripts/install-deps.sh). Build first, e.g.
#   ./scripts/build.sh build -DCMAKE_BUILD_TYPE=RelWithDebInfo
# (with Ninja, cpack installs what is built and builds nothing itself).
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
out=${2:-$build/packages}
if [[ ! -f $build/CPackConfig.cmake ]]; then
  echo "package: $build has no CPackConfig.cmake; configure it with scripts/build.sh first" >&2
  exit 1
fi
mkdir -p "$out"
out=$(cd "$out" && pwd)
rm -f "$out"/*.deb "$out"/*.ddeb
log=$out/cpack.log
if ! cpack --config "$build/CPackConfig.cmake" -G DEB -B "$out" >"$log" 2>&1; then
  cat "$log" >&2
  echo "package: cpack failed (log: $log)" >&2
  exit 1
fi
rm -rf "$out/_CPack_Packages"
shopt -s nullglob
packages=("$out"/*.deb "$out"/*.ddeb)
if ((${#packages[@]} != 3)); then
  cat "$log" >&2
  echo "package: expected 3 packages in $out, found ${#packages[@]}" >&2
  exit 1
fi
printf '%s\n' "${packages[@]}"
