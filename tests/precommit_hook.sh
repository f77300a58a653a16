#!/usr/bin/env bash
# Runs Debian's pre-commit with the repository's .pre-commit-hooks.yaml on a
# sample config repository (docs/ci.md): a good config commits, a bad one is
# refused with lithos_check's diagnostic. Usage: precommit_hook.sh SOURCE_DIR BIN_DIR
set -euo pipefail
src=$1 bin=$2
work=$(mktemp -d /tmp/lithos-precommit-XXXXXX)
trap 'rm -rf "$work"' EXIT
export PATH="$bin:$PATH" PRE_COMMIT_HOME="$work/cache" HOME="$work"
git config --global user.email test@example.org
git config --global user.name test
git config --global init.defaultBranch main

# The hooks repository: this project's hook definition, committed.
mkdir "$work/hooks" && cp "$src/.pre-commit-hooks.yaml" "$work/hooks/"
git -C "$work/hooks" init -q && git -C "$work/hooks" add . && git -C "$work/hooks" commit -qm hooks
rev=$(git -C "$work/hooks" rev-parse HEAD)

repo="$work/repo"
mkdir -p "$repo/etc/lithos/sandboxes" "$repo/etc/lithos/processes"
cat >"$repo/etc/lithos/master.yaml" <<'YAML'
runtime-dir: /run/lithos
devfs-dir: /var/lib/lithos/dev
cgroup-name: ~
YAML
cat >"$repo/etc/lithos/sandboxes/app.yaml" <<'YAML'
image-dir: /var/lib/lithos/images/app
image-dir-levels: 1
allow-users: [1000-1999]
allow-groups: [1000-1999]
YAML
cat >"$repo/etc/lithos/processes/app.yaml" <<'YAML'
web:
  image: v1
  config: /config/web.yaml
YAML
cat >"$repo/.pre-commit-config.yaml" <<YAML
repos:
  - repo: $work/hooks
    rev: $rev
    hooks:
      - id: lithos-check
YAML
cd "$repo"
git init -q && git add . 
pre-commit run --all-files >"$work/good.log" 2>&1 || { cat "$work/good.log"; echo "FAIL: good config refused"; exit 1; }
git commit -qm good

sed -i 's/image: v1/image: ..\/v1/' etc/lithos/processes/app.yaml
git add .
if pre-commit run --all-files >"$work/bad.log" 2>&1; then
  cat "$work/bad.log"; echo "FAIL: bad config passed"; exit 1
fi
grep -q 'error\[image-path\]' "$work/bad.log" || { cat "$work/bad.log"; echo "FAIL: no image-path diagnostic"; exit 1; }
echo "pre-commit hook: good config passes, bad config refused"
