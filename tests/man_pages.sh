#!/usr/bin/env bash
# Checks the man pages generated from man/*.scd (man/CMakeLists.txt): every
# page exists, `mandoc -T lint -W warning` has nothing to say about it, it
# renders to text, and a tool's page names every option the tool's own help
# prints, so the pages cannot drift from the tools.
# Usage: man_pages.sh MAN_BUILD_DIR BIN_DIR
set -euo pipefail
man_dir=$1 bin=$2

if ! command -v mandoc >/dev/null; then
  echo "man_pages: mandoc is not installed (Debian package mandoc)" >&2
  exit 1
fi

tools=(lithos_check.1 lithos_ps.1 lithos_crypt.1
       lithos_tree.8 lithos_knot.8 lithos_cmd.8 lithos_switch.8 lithos_clean.8 lithos_mkdev.8)
configs=(lithos-master.yaml.5 lithos-sandbox.yaml.5 lithos-process.yaml.5 lithos-container.yaml.5)

# scdoc writes `.P` right before and right after every `.SH`; mandoc skips
# those empty paragraphs with these two warnings. No source text causes or
# avoids them, so exactly these two messages are ignored.
scdoc_noise='WARNING: skipping paragraph macro: PP (empty|after SH)$'

status=0
fail() {
  echo "man_pages: $*" >&2
  status=1
}

# Plain text, one paragraph per line (no wrapping that could split an
# option at its hyphen), without the overstrike of bold and underline.
render() { mandoc -T ascii -O width=1000 "$1" | sed 's/.\x08//g'; }

# The option tokens of a text, one per line: -x or --long-name, not preceded
# by a letter, digit, _ or - (ssh-keygen, lithos-mkdev are not options).
flags_in() {
  { grep -oE '(^|[^A-Za-z0-9_-])--?[A-Za-z0-9][A-Za-z0-9-]*' || true; } |
    sed -E 's/^[^-]//' | sort -u
}

# What the tool says about its options (stdout and stderr, any exit status).
help_text() {
  local tool=$1
  shift
  "$bin/$tool" "$@" --help 2>&1 || true
}

# The options in a help text: the first field of CLI11's option lines
# ("  -C,--config TEXT ..."), and everything in one-line usages
# ("Usage: lithos_cmd [--master FILE] ..." and the usage lines below it,
# "       lithos_cmd --help | --version").
help_flags() {
  awk '/^[ \t]+-/ { print $1; next } /^Usage: / || /^ +lithos_/ { print }' | tr ',' '\n' |
    flags_in
}

# CLI11 subcommands (lithos_crypt): the names listed under "Subcommands:".
subcommands() {
  awk '/^Subcommands:/ { on = 1; next } on && /^[^ \t]/ { on = 0 } on && NF { print $1 }'
}

check_page() {
  local page=$1 file=$man_dir/$1.gz
  if [[ ! -s $file ]]; then
    fail "$page: $file is missing or empty"
    return 1
  fi
  local lint rc=0
  lint=$(mandoc -T lint -W warning "$file" 2>&1) || rc=$?
  lint=$(grep -Ev "$scdoc_noise" <<<"$lint" || true)
  # mandoc exits 2 for warnings: allowed only when all of them were noise.
  if [[ -n $lint ]] || ((rc != 0 && rc != 2)); then
    fail "$page: mandoc -T lint -W warning (exit $rc):"$'\n'"$lint"
  fi
  local text
  text=$(render "$file")
  if ! grep -q '^NAME$' <<<"$text" || (($(wc -l <<<"$text") < 10)); then
    fail "$page: renders to almost nothing"
  fi
}

for page in "${configs[@]}"; do
  check_page "$page" || true
done

for page in "${tools[@]}"; do
  check_page "$page" || continue
  tool=${page%.*}
  if [[ ! -x $bin/$tool ]]; then
    fail "$page: $bin/$tool is not built"
    continue
  fi
  text=$(render "$man_dir/$page.gz")
  documented=$(flags_in <<<"$text")
  help=$(help_text "$tool")
  wanted=$(help_flags <<<"$help")
  for sub in $(subcommands <<<"$help"); do
    [[ $sub == help ]] && continue
    grep -qw -- "$sub" <<<"$text" || fail "$page: subcommand $sub is not documented"
    wanted+=$'\n'$(help_text "$tool" "$sub" | help_flags)
  done
  if [[ -z $wanted && $tool != lithos_mkdev ]]; then
    fail "$page: no options found in the help of $tool (help format changed?)"
  fi
  while read -r flag; do
    [[ -z $flag ]] || grep -qxF -- "$flag" <<<"$documented" ||
      fail "$page: option $flag of $tool is not documented"
  done < <(sort -u <<<"$wanted")
done

# A page added to man/ must be added here too.
for file in "$man_dir"/*.gz; do
  [[ -e $file ]] || continue
  name=$(basename "$file" .gz)
  [[ " ${tools[*]} ${configs[*]} " == *" $name "* ]] || fail "$name: not checked by $0"
done

if ((status == 0)); then
  echo "man_pages: $((${#tools[@]} + ${#configs[@]})) pages lint-clean, rendered, options complete"
fi
exit $status
