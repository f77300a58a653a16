#!/usr/bin/env bash
# The Debian packages (cmake/package.cmake, scripts/package.sh):
#   * scripts/package.sh makes lithos, lithos-dev and lithos-dbgsym;
#   * lintian reports no error (E:) on any of them;
#   * lithos installs with dpkg into a throwaway root (maintainer scripts run
#     chrooted there, with busybox as /bin/sh), its lithos_check prints the
#     project's version and passes the shipped /etc/lithos/master.yaml, the
#     unit names /usr/bin;
#   * installing it again over itself keeps an edited master.yaml (conffile);
#   * removing it keeps the edited master.yaml, the host's sandbox config,
#     and what lives under the state, image and log directories.
# Needs root (dpkg chroots into the throwaway root): without it, a failure
# with that reason (CI runs as root). Usage: debian_package.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
source_dir=$(cd "$1" && pwd)
build_dir=$(cd "$2" && pwd)
if [[ $(id -u) -ne 0 ]]; then
  echo "debian_package: needs root (dpkg --root chroots for the maintainer scripts)" >&2
  exit 1
fi
for tool in lintian dpkg dpkg-deb dpkg-shlibdeps cpack; do
  command -v "$tool" >/dev/null || { echo "debian_package: $tool missing (scripts/install-deps.sh)" >&2; exit 1; }
done
busybox=${BUSYBOX:-/bin/busybox}
[[ -x $busybox ]] || { echo "debian_package: $busybox missing (busybox-static)" >&2; exit 1; }

fail() { echo "debian_package: FAIL: $*" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
version=$(sed -n 's/^project(lithos VERSION \([0-9.]*\).*/\1/p' "$source_dir/CMakeLists.txt")
[[ -n $version ]] || fail "no version in $source_dir/CMakeLists.txt"
arch=$(dpkg --print-architecture)

echo "== scripts/package.sh"
"$source_dir/scripts/package.sh" "$build_dir" "$work/packages" | tee "$work/list"
main=$work/packages/lithos_${version}_${arch}.deb
dev=$work/packages/lithos-dev_${version}_${arch}.deb
dbgsym=$work/packages/lithos-dbgsym_${version}_${arch}.ddeb
for p in "$main" "$dev" "$dbgsym"; do
  grep -qxF "$p" "$work/list" || fail "package.sh did not print $p"
  [[ -s $p ]] || fail "$p missing"
  printf '%s %s bytes\n' "$(basename "$p")" "$(stat -c %s "$p")"
done

echo "== package contents"
for p in "$main" "$dev" "$dbgsym"; do
  [[ $(dpkg-deb -f "$p" Version) == "$version" ]] || fail "$p: Version is not $version"
  if dpkg-deb -c "$p" | grep -E '\./usr/local/'; then fail "$p installs below /usr/local"; fi
done
dpkg-deb -c "$main" | awk '{print $NF}' >"$work/main.files"
for f in ./usr/bin/lithos_tree ./usr/bin/lithos_knot ./usr/bin/lithos_check ./usr/bin/lithos_mkdev \
  ./usr/lib/systemd/system/lithos.service ./etc/lithos/master.yaml \
  ./usr/share/doc/lithos/copyright ./usr/share/doc/lithos/changelog.gz \
  ./usr/share/man/man8/lithos_tree.8.gz ./usr/share/doc/lithos/operations.md; do
  grep -qxF "$f" "$work/main.files" || fail "lithos lacks $f"
done
dpkg-deb --ctrl-tarfile "$main" | tar -t >"$work/main.control"
if grep -E '(^|/)(prerm|postrm|preinst)$' "$work/main.control"; then
  fail "lithos has a prerm/postrm/preinst: removal or upgrade must stop nothing"
fi
# (Whole outputs into grep: grep -q would end a pipe early, and pipefail.)
pc=$(dpkg-deb --fsys-tarfile "$dev" | tar -xO ./usr/lib/pkgconfig/lithos-policy.pc)
grep -qx 'prefix=/usr' <<<"$pc" || fail "lithos-dev: lithos-policy.pc does not say prefix=/usr"
grep -q '/usr/lib/debug/\.build-id/.*\.debug$' <<<"$(dpkg-deb -c "$dbgsym")" ||
  fail "lithos-dbgsym has no .debug files"

echo "== lintian"
status=0
lintian --tag-display-limit 0 --display-info "$main" "$dev" "$dbgsym" >"$work/lintian" 2>&1 || status=$?
grep -v '^running with root privileges' "$work/lintian" || true
if grep -q '^E: ' "$work/lintian"; then fail "lintian reported errors"; fi
# 1: lintian itself failed; 2: an --fail-on tag (E:, caught above).
((status != 1)) || fail "lintian failed to run (exit 1)"

echo "== install into a throwaway root"
root=$work/root
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates" "$root/bin" "$root/tmp"
: >"$root/var/lib/dpkg/status"
: >"$root/var/lib/dpkg/available"
# The maintainer scripts run chrooted into the root: a static shell there.
cp "$busybox" "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
dpkg_root() {
  dpkg --root="$root" --force-depends --force-confold --force-confdef --force-not-root "$@"
}
dpkg_root -i "$main"
grep -q '^Status: install ok installed' <<<"$(dpkg --root="$root" -s lithos)" || fail "lithos not installed"
got=$("$root/usr/bin/lithos_check" --version)
[[ $got == "lithos_check $version" ]] || fail "lithos_check --version printed '$got', not 'lithos_check $version'"
echo "lithos_check --version: $got"
unit=$root/usr/lib/systemd/system/lithos.service
grep -qx 'ExecStart=/usr/bin/lithos_tree --config /etc/lithos/master.yaml' "$unit" ||
  fail "the unit does not start /usr/bin/lithos_tree"
if grep -n '/usr/local\|@[A-Z_]*@' "$unit"; then fail "the unit names /usr/local or a placeholder"; fi
grep -q '^ /etc/lithos/master.yaml [0-9a-f]\{32\}$' <<<"$(dpkg --root="$root" -s lithos)" ||
  fail "/etc/lithos/master.yaml is not a conffile"
# The shipped config checks clean for a config repository (no devfs yet).
"$root/usr/bin/lithos_check" --root "$root" --offline -C "$root/etc/lithos/master.yaml" ||
  fail "lithos_check --offline rejects the shipped master.yaml"

echo "== the host's edits and state"
printf '# edited on this host\nlog-level: info\n' >>"$root/etc/lithos/master.yaml"
sed -i 's/^log-level: warn$/#log-level: warn/' "$root/etc/lithos/master.yaml"
cp "$root/etc/lithos/master.yaml" "$work/master.edited"
"$root/usr/bin/lithos_check" --root "$root" --offline -C "$root/etc/lithos/master.yaml" >/dev/null ||
  fail "the edited master.yaml does not check"
state_files=(etc/lithos/sandboxes/demo.yaml etc/lithos/processes/demo.yaml
  var/lib/lithos/dev/keep var/lib/lithos/images/demo.v1/bin/keep var/log/lithos/master.log)
for f in "${state_files[@]}"; do
  mkdir -p "$(dirname "$root/$f")"
  echo "host data" >"$root/$f"
done

echo "== install the same package again (an upgrade over itself)"
dpkg_root -i "$main" </dev/null
cmp -s "$work/master.edited" "$root/etc/lithos/master.yaml" ||
  fail "reinstalling replaced the edited /etc/lithos/master.yaml"
for f in "${state_files[@]}"; do [[ -f $root/$f ]] || fail "reinstalling deleted /$f"; done

echo "== remove"
dpkg_root -r lithos
[[ ! -e $root/usr/bin/lithos_check ]] || fail "lithos_check still there after removal"
grep -q '^Status: deinstall ok config-files' <<<"$(dpkg --root="$root" -s lithos)" ||
  fail "lithos is not in state config-files after removal"
cmp -s "$work/master.edited" "$root/etc/lithos/master.yaml" ||
  fail "removal deleted or changed the edited /etc/lithos/master.yaml"
for f in "${state_files[@]}"; do [[ -f $root/$f ]] || fail "removal deleted /$f"; done
echo "debian_package: ok"
