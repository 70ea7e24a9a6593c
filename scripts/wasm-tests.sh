#!/usr/bin/env bash
# The wasm adapter's tests: crate `tokenkeeper-wasm` compiled for
# wasm32-unknown-unknown and run in Node by wasm-bindgen-test, against the
# real authorization server of tests/harness (node-oidc-provider on
# 127.0.0.1).
#
#   scripts/wasm-tests.sh install   the wasm32 target, and wasm-bindgen-cli at
#                                   exactly the version of the `wasm-bindgen`
#                                   crate in Cargo.lock (only if the installed
#                                   one differs)
#   scripts/wasm-tests.sh run       starts two harness servers (the second with
#                                   HARNESS_DPOP_NONCE=required), passes their
#                                   URLs to the tests as WASM_HARNESS_* and
#                                   WASM_HARNESS_DPOP_* environment variables
#                                   (read at run time from process.env; also
#                                   WASM_HARNESS_CLOSED_PORT, a port nothing
#                                   listens on), runs
#                                   `cargo test -p tokenkeeper-wasm --target
#                                   wasm32-unknown-unknown --all-features
#                                   --no-fail-fast` (every test file, even
#                                   after a failure), and
#                                   always stops the servers it started
#
# Extra arguments to `run` go to the test binary (a name filter, say).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

say() { printf '[wasm-tests] %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

# The version of the `wasm-bindgen` package in Cargo.lock.
lock_version() {
  awk '$0 == "name = \"wasm-bindgen\"" { getline; gsub(/^version = "|"$/, ""); print; exit }' Cargo.lock
}

installed_version() {
  # "wasm-bindgen-test-runner 0.2.130" -> "0.2.130"
  "$1" --version 2>/dev/null | awk '{ print $2 }' || true
}

install() {
  rustup target add wasm32-unknown-unknown
  local want
  want=$(lock_version)
  [ -n "$want" ] || die "no wasm-bindgen package in Cargo.lock"
  local have runner
  have=$(installed_version wasm-bindgen)
  runner=$(installed_version wasm-bindgen-test-runner)
  if [ "$have" = "$want" ] && [ "$runner" = "$want" ]; then
    say "wasm-bindgen-cli $want is installed"
    return
  fi
  say "installing wasm-bindgen-cli $want (found ${have:-none})"
  if ! cargo install wasm-bindgen-cli --version "$want" --locked; then
    # The lock file shipped with the CLI can name a dependency version the
    # registry no longer serves (yanked); resolve afresh then.
    say "--locked install failed; retrying with freshly resolved dependencies"
    cargo install wasm-bindgen-cli --version "$want"
  fi
  [ "$(installed_version wasm-bindgen-test-runner)" = "$want" ] \
    || die "wasm-bindgen-test-runner is not $want after the install (is ~/.cargo/bin on PATH?)"
}

workdir=""
server_pids=()

stop_servers() {
  local pid
  for pid in "${server_pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || continue
    for _ in $(seq 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  server_pids=()
  if [ -n "$workdir" ]; then rm -rf "$workdir"; fi
}

# start_server NAME PREFIX [VAR=value...]: starts tests/harness/server.mjs with
# the given environment, waits up to 30 s for its ready line, and exports
# PREFIX_ISSUER, PREFIX_TOKEN_ENDPOINT, PREFIX_RESOURCE_SERVER, PREFIX_CONTROL.
start_server() {
  local name=$1 prefix=$2
  shift 2
  local out="$workdir/$name.out" log="$workdir/$name.log"
  # stdin is /dev/null, so the server must not exit when it closes; it still
  # exits with this script (SIGTERM from the trap, or its parent watchdog).
  (cd tests/harness && exec env HARNESS_IGNORE_STDIN=1 "$@" node "$root/tests/harness/server.mjs") \
    </dev/null >"$out" 2>"$log" &
  local pid=$!
  server_pids+=("$pid")
  local ready=""
  for _ in $(seq 300); do
    if ready=$(head -n 1 "$out" 2>/dev/null) && [[ "$ready" == *'"ready":true'*'}' ]]; then
      break
    fi
    ready=""
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$ready" ]; then
    say "harness $name did not start; its log:"
    cat "$log" >&2
    return 1
  fi
  local fields
  fields=$(node -e '
    const ready = JSON.parse(process.argv[1]);
    for (const key of ["issuer", "token_endpoint", "resource_server", "control"]) {
      if (typeof ready[key] !== "string") throw new Error(`no ${key} in the ready line`);
      console.log(ready[key]);
    }' "$ready")
  local issuer token_endpoint resource_server control
  { read -r issuer; read -r token_endpoint; read -r resource_server; read -r control; } <<<"$fields"
  export "${prefix}_ISSUER=$issuer" "${prefix}_TOKEN_ENDPOINT=$token_endpoint"
  export "${prefix}_RESOURCE_SERVER=$resource_server" "${prefix}_CONTROL=$control"
  say "harness $name (pid $pid): issuer $issuer, resource server $resource_server, control $control"
}

run() {
  local want have
  want=$(lock_version)
  have=$(installed_version wasm-bindgen-test-runner)
  [ "$have" = "$want" ] \
    || die "wasm-bindgen-test-runner ${have:-missing}, Cargo.lock has wasm-bindgen $want: run '$0 install' first"
  command -v node >/dev/null || die "node (20 or later) is required"

  if [ ! -f tests/harness/node_modules/oidc-provider/package.json ]; then
    say "npm ci in tests/harness"
    (cd tests/harness && npm ci --no-audit --no-fund --loglevel=error)
  fi

  workdir=$(mktemp -d "${TMPDIR:-/tmp}/tokenkeeper-wasm-tests.XXXXXX")
  trap stop_servers EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM

  start_server default WASM_HARNESS HARNESS_DPOP_NONCE=off HARNESS_RS_NONCE=required HARNESS_AT_TTL=60
  start_server dpop WASM_HARNESS_DPOP HARNESS_DPOP_NONCE=required HARNESS_RS_NONCE=required HARNESS_AT_TTL=60

  # A port nothing listens on, for the connection-refused test.
  WASM_HARNESS_CLOSED_PORT=$(node -e '
    const server = require("node:net").createServer();
    server.listen(0, "127.0.0.1", () => { console.log(server.address().port); server.close(); });')
  export WASM_HARNESS_CLOSED_PORT

  local started=$SECONDS status=0
  CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
    cargo test -p tokenkeeper-wasm --target wasm32-unknown-unknown --all-features --no-fail-fast -- "$@" \
    || status=$?
  say "cargo test finished in $((SECONDS - started)) s with status $status"
  if [ "$status" -eq 0 ]; then
    # The browser examples (login, custom_store, dpop), built for Node and
    # run against the same harness (adapters/wasm/examples/node_smoke.cjs).
    say "the wasm examples in Node against the harness"
    cargo build -p tokenkeeper-wasm --target wasm32-unknown-unknown --examples
    local target_dir examples="$workdir/examples"
    target_dir=$(cargo metadata --format-version 1 --no-deps \
      | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')
    for example in login dpop custom_store; do
      wasm-bindgen --target nodejs --out-dir "$examples/$example" \
        "$target_dir/wasm32-unknown-unknown/debug/examples/$example.wasm"
    done
    cp adapters/wasm/examples/node_smoke.cjs "$examples/"
    node "$examples/node_smoke.cjs" "$WASM_HARNESS_ISSUER" "$WASM_HARNESS_CONTROL" || status=$?
  fi
  if [ "$status" -ne 0 ]; then
    for log in "$workdir"/*.log; do
      say "--- $(basename "$log") ---"
      tail -n 40 "$log" >&2
    done
  fi
  return "$status"
}

case "${1:-}" in
  install) install ;;
  run) shift; run "$@" ;;
  *) die "usage: $0 install|run [test filter]" ;;
esac
