#!/usr/bin/env bash
# Counts the core crate's public API from rustdoc's output (issue 14 part 5):
# one HTML page per public module and per public item, so the count is what a
# reader of the docs sees. `#[doc(hidden)]` items (the `__private` test door)
# get no page and are not counted.
#
#   bash scripts/public-api.sh            # builds the docs, then counts
#   TOKENKEEPER_NO_DOC_BUILD=1 bash scripts/public-api.sh   # counts existing docs
#
# Modules = index.html pages minus the crate root's (redirect pages skipped); items are counted by
# rustdoc's page prefix (struct., enum., fn., constant., trait., type., macro.).
set -euo pipefail
cd "$(dirname "$0")/.."

target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
doc="$target_dir/doc/tokenkeeper"
if [ "${TOKENKEEPER_NO_DOC_BUILD:-0}" != 1 ]; then
  # rustdoc never deletes a page: pages of modules that are gone would count.
  rm -rf "$doc"
  RUSTDOCFLAGS=-Dwarnings cargo doc --no-deps --all-features -p tokenkeeper >&2
fi
[ -d "$doc" ] || { echo "no docs at $doc" >&2; exit 1; }

# Pages that only redirect (an item's path inside a private module, kept so
# old links work) are not items a reader sees.
count() {
  { find "$doc" -name "$1" -exec grep -L 'http-equiv="refresh"' {} + || true; } | wc -l
}
modules=$(( $(count index.html) - 1 ))
total=0
line=""
for kind in struct enum fn constant trait type macro; do
  n=$(count "$kind.*.html")
  total=$((total + n))
  line="$line $n ${kind}s,"
done
root=$(grep -o 'href="[a-z_]*/index.html"' "$doc/index.html" | sort -u | wc -l)
echo "tokenkeeper public API: $modules public modules ($root at the crate root), $total item pages:${line%,}"
