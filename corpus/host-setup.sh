#!/bin/sh
# Creates the host state that the corpus cases name (corpus/README.md, "Host
# state"): the host directories their volumes bind and the private key their
# secrets are encrypted for. lithos_check reports each of them missing, as
# the knot would refuse to start without them; the corpus and parity tests
# run this first. Idempotent; touches nothing outside /tmp/lithos-corpus.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
base=/tmp/lithos-corpus
for dir in a ab/c data/b data/z dx/y ro rw/c rw/i; do
  mkdir -p "$base/$dir"
done
# A host file and a host UNIX socket for the file volumes (a socket cannot
# be committed).
mkdir -p "$base/files"
echo "setting=1" > "$base/files/app.conf"
if [ ! -S "$base/files/app.sock" ]; then
  rm -f "$base/files/app.sock"
  python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' \
    "$base/files/app.sock.$$"
  mv -f "$base/files/app.sock.$$" "$base/files/app.sock"
fi
# A test key, committed on purpose; the knot accepts only a 0600 file owned
# by root, which a checkout cannot carry.
# Tests run this concurrently: each installs its own copy and renames it
# over the key, which is atomic.
install -m 0600 "$here/host/secrets.key" "$base/secrets.key.$$"
mv -f "$base/secrets.key.$$" "$base/secrets.key"
