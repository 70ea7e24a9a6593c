#!/usr/bin/env bash
# Runs every fuzz target for the given number of seconds (default 30), with
# the committed seed corpora and the OAuth dictionary. Installs cargo-fuzz
# when it is missing. Needs the nightly toolchain.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds=${1:-30}
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
targets=$(cargo +nightly fuzz list)
cargo +nightly fuzz build -O $targets >/dev/null 2>&1 || cargo +nightly fuzz build -O
summary=""
for target in $targets; do
  corpus="corpus/$target"
  mkdir -p "$corpus"
  work=$(mktemp -d)
  log=$(mktemp)
  if ! cargo +nightly fuzz run -O "$target" "$work" "$corpus" -- \
      -max_total_time="$seconds" -dict=dict/oauth.dict -max_len=4096 \
      -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
    tail -n 60 "$log"
    echo "fuzz target $target failed" >&2
    exit 1
  fi
  runs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' || echo "?")
  summary+="$target: $runs executions in ${seconds}s"$'\n'
  rm -rf "$work" "$log"
done
printf '%s' "$summary"
