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
# A test key, committed on purpose; the knot accepts only a 0600 file owned
# by root, which a checkout cannot carry.
# Tests run this concurrently: each installs its own copy and renames it
# over the key, which is atomic.
install -m 0600 "$here/host/secrets.key" "$base/secrets.key.$$"
mv -f "$base/secrets.key.$$" "$base/secrets.key"
