#!/usr/bin/env bash
# The systemd unit (packaging/lithos.service.in) is valid for systemd: the
# unit generated into the build tree has every placeholder filled, and the
# same template pointed at the built binaries passes `systemd-analyze
# verify` without a word. Man pages are not looked up (--man=no): the
# build's are not installed where man looks.
#
# Usage: systemd_unit.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
source_dir=$1
build_dir=$2

generated="$build_dir/packaging/lithos.service"
if [[ ! -s $generated ]]; then
  echo "no generated unit at $generated" >&2
  exit 1
fi
if grep -n '@[A-Z_]*@' "$generated"; then
  echo "placeholders left in $generated" >&2
  exit 1
fi
for line in 'Type=notify' 'Delegate=yes' 'KillMode=process' 'OOMScoreAdjust=-900'; do
  grep -qx "$line" "$generated" || { echo "$generated lacks $line" >&2; exit 1; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sed -e "s|@LITHOS_BINDIR@|$build_dir/bin|g" -e "s|@LITHOS_DOCDIR@|$source_dir/docs|g" \
  "$source_dir/packaging/lithos.service.in" >"$work/lithos.service"
output=$(systemd-analyze verify --man=no "$work/lithos.service" 2>&1) || {
  echo "systemd-analyze verify failed: $output" >&2
  exit 1
}
if [[ -n $output ]]; then
  echo "systemd-analyze verify warned: $output" >&2
  exit 1
fi
echo "lithos.service: verified"
