#!/usr/bin/env bash
# Installs every build, test and benchmark dependency from Debian packages.
# Idempotent: packages already present are left alone; only apt-get is used.
set -euo pipefail

packages=(
  # toolchain
  g++ cmake ninja-build pkg-config clang clang-format libclang-rt-14-dev
  # libraries (see README "Dependencies" for why each is here)
  libboost-dev libyaml-dev libsodium-dev libseccomp-dev libcap-dev
  libcli11-dev nlohmann-json3-dev
  # tests
  googletest libgtest-dev librapidcheck-dev python3 python3-nacl openssh-client
  git pre-commit
  # systemd-analyze, which checks the unit (tests/systemd_unit.sh)
  systemd
  # man pages: scdoc generates them (man/), mandoc lints them (tests/man_pages.sh)
  scdoc mandoc
  # example images and benchmark peers
  busybox-static bubblewrap crun iproute2
  # the after-setup-command recipe of docs/configs.md (tests/test_knot.cpp)
  iputils-arping
  # Debian packages (scripts/package.sh): dpkg-shlibdeps, file and objcopy
  # for CPack, lintian for the test DebianPackage (tests/debian_package.sh)
  dpkg-dev file binutils lintian
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "install-deps: need root to install: ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
