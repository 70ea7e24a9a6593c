#!/usr/bin/env bash
# Runs every fuzz target for the given number of seconds (default 30), two
# at a time (one per core), with the committed seed corpora and the OAuth
# dictionary. Installs cargo-fuzz when it is missing; needs the nightly
# toolchain. A crash fails the run and leaves the input in
# fuzz/artifacts/<target>/ (turn it into a regression test).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#   FUZZ_SANITIZER=address scripts/fuzz.sh 600    # longer, with ASan
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds=${1:-30}
shift || true
sanitizer=${FUZZ_SANITIZER:-none}
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
targets=${*:-$(cargo +nightly fuzz list)}
if [ -z "$targets" ]; then
  echo "fuzz: no targets" >&2
  exit 1
fi
cargo +nightly fuzz build -O -s "$sanitizer"
logs=$(mktemp -d)
run() {
  local target=$1
  mkdir -p "corpus/$target"
  local work="$logs/$target.corpus"
  mkdir -p "$work"
  if cargo +nightly fuzz run -O -s "$sanitizer" "$target" "$work" "corpus/$target" -- \
      -max_total_time="$seconds" -dict=dict/oauth.dict -max_len=4096 \
      -rss_limit_mb=2048 -print_final_stats=1 >"$logs/$target.log" 2>&1; then
    echo ok >"$logs/$target.status"
  else
    echo failed >"$logs/$target.status"
  fi
}
set -- $targets
while [ $# -gt 0 ]; do
  run "$1" &
  if [ $# -gt 1 ]; then run "$2" & shift; fi
  shift
  wait
done
status=0
for target in $targets; do
  runs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$logs/$target.log" | grep -Eo '[0-9]+$' || echo "?")
  if [ "$(cat "$logs/$target.status")" = ok ] && [ "$runs" != "?" ] && [ "$runs" -gt 0 ]; then
    echo "fuzz $target: $runs executions in ${seconds}s, no crash"
  else
    echo "fuzz $target: FAILED (status $(cat "$logs/$target.status"), $runs executions)" >&2
    tail -n 40 "$logs/$target.log" >&2
    status=1
  fi
done
rm -rf "$logs"
exit $status
