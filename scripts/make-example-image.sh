#!/bin/sh
# Builds a busybox image directory: make-example-image.sh [DIR]
# (default examples/basic/images/demo.v1). Uses Debian's busybox-static
# (/bin/busybox, statically linked). Creates the directories the knot mounts
# on (/dev /sys /proc /tmp), /etc with resolv.conf and hosts (bind targets),
# /state, /www and /bin/sh. Files already in DIR (config/) are kept.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$here/examples/basic/images/demo.v1}
busybox=${BUSYBOX:-/bin/busybox}
if ! [ -x "$busybox" ]; then
  echo "make-example-image: $busybox not found (apt-get install busybox-static)" >&2
  exit 1
fi
mkdir -p "$dir/bin" "$dir/dev" "$dir/sys" "$dir/proc" "$dir/tmp" "$dir/etc" "$dir/state" \
  "$dir/www" "$dir/data" "$dir/config"
cp "$busybox" "$dir/bin/busybox.new"
chmod 0755 "$dir/bin/busybox.new"
mv -f "$dir/bin/busybox.new" "$dir/bin/busybox"
ln -sfn busybox "$dir/bin/sh"
: >"$dir/etc/resolv.conf"
: >"$dir/etc/hosts"
printf 'root:x:0:0:root:/:/bin/sh\nuser:x:1000:1000:user:/:/bin/sh\n' >"$dir/etc/passwd"
printf 'root:x:0:\nuser:x:1000:\n' >"$dir/etc/group"
printf '<h1>hello from lithos</h1>\n' >"$dir/www/index.html"
chmod 1777 "$dir/tmp"
echo "image ready: $dir"
