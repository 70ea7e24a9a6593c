#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what the tests need
# (rustup targets, the npm packages of the local authorization server,
# wasm-bindgen-cli, cargo-fuzz), runs every test, the lints, the no_std
# builds, the README figures check and the fuzz smoke, and leaves no process
# behind.
#
# Nothing is skipped silently: a missing tool or script fails the run. The
# one skip switch, TOKENKEEPER_SKIP_FUZZ=1 (never set by CI, see .ci/run),
# prints a SKIPPED line where the step would run and again at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

step() { printf '\n==> %s\n' "$*"; }
die() { printf '\nFAILED: %s\n' "$*" >&2; exit 1; }
skipped=()
skip() {
  printf '\n==> SKIPPED: %s\n' "$*"
  skipped+=("$*")
}

# Everything this run needs, checked before anything starts.
for tool in cargo rustup node npm; do
  command -v "$tool" >/dev/null || die "\`$tool\` is not on PATH"
done
for script in scripts/wasm-tests.sh scripts/fuzz.sh scripts/figures.sh scripts/package-check.sh; do
  [ -f "$script" ] || die "$script is missing"
done
case "${TOKENKEEPER_SKIP_FUZZ:-0}" in
  0 | 1) ;;
  *) die "TOKENKEEPER_SKIP_FUZZ must be 0 or 1, not '${TOKENKEEPER_SKIP_FUZZ}'" ;;
esac

# A CI run builds everything once: incremental caches would only take
# disk (gigabytes across the workspace). The disk in use is printed at the
# start and at the end, so a run that nears a full disk says so.
export CARGO_INCREMENTAL=0
disk() { printf 'disk: %s free; target/ holds %s\n' "$(df -h --output=avail . | tail -1 | tr -d ' ')" "$(du -sh target 2>/dev/null | cut -f1)"; }
step "disk"
disk

step "toolchain targets"
rustup target add thumbv7em-none-eabihf wasm32-unknown-unknown >/dev/null

step "redis-server for tokenkeeper-redis (started by its tests on a free loopback port)"
if ! command -v redis-server >/dev/null; then
  apt-get update && apt-get install -y redis-server
fi

step "authorization server packages (npm ci)"
(cd tests/harness && npm ci --no-audit --no-fund --loglevel=error)

step "axum integration packages (npm ci: the pinned @auth0/nextjs-auth0 for the cookie compatibility test, playwright-core for the browser test)"
(cd adapters/axum/tests/js && npm ci --no-audit --no-fund --loglevel=error)

step "headless Chromium for the axum end-to-end test (Debian's chromium; Playwright's own download cannot work here)"
if [ ! -x /usr/bin/chromium ]; then
  apt-get update && apt-get install -y chromium
fi
# adapters/axum/tests/browser.rs runs in the workspace tests below; here a
# missing browser is a failure, not a skip. Screenshots: target/axum-e2e/.
export AXUM_E2E_REQUIRED=1

# Whatever a test run starts must be gone when it ends, failing or not.
cleanup() { pkill -f "$root/tests/harness/server.mjs" 2>/dev/null || true; }
trap cleanup EXIT

step "wasm tools"
bash scripts/wasm-tests.sh install

step "the scenario suite's wasm bridge (tests/wasm-bridge; built here, not inside a test)"
cargo build --target wasm32-unknown-unknown -p tokenkeeper-wasm-bridge --target-dir target/wasm-bridge

step "the axum example page's wasm route client (served by the example, used by adapters/axum/tests/browser.rs)"
bash scripts/axum-web-wasm.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

step "packaging (cargo package of each library crate, cargo doc with warnings denied)"
bash scripts/package-check.sh

step "no_std builds of the core"
cargo build -p tokenkeeper --no-default-features --target thumbv7em-none-eabihf
cargo build -p tokenkeeper --no-default-features --target wasm32-unknown-unknown

step "feature combinations: the minimal wasm app's set, each optional part alone, the core's tests without them"
cargo check -p tokenkeeper --no-default-features --features std --target wasm32-unknown-unknown
for feature in url float-roundtrip verify-signatures login discovery exchange route; do
  cargo check -p tokenkeeper --no-default-features --features "std,$feature" --target wasm32-unknown-unknown
done
cargo check -p tokenkeeper-wasm --no-default-features --target wasm32-unknown-unknown --examples
cargo test -p tokenkeeper --no-default-features --features std --lib --tests

step "tests (unit, scenario, property, doc, fuzz seed replay, integration against node-oidc-provider)"
cargo test --workspace --all-features --no-fail-fast

# Included above; again on its own, named: the fleet (4 processes x 16
# callers, 21 rounds) and its faults are timing-dependent, a second run
# is a second chance to catch a race.
step "tokenkeeper-redis: fleets, faults, TLS (its own redis-server and authorization server)"
cargo test -p tokenkeeper-redis

# --all-features above picks native-tls; the default rustls path too.
step "the native adapters' default TLS (rustls)"
cargo test -p tokenkeeper-ureq -p tokenkeeper-reqwest --test tls

step "wasm adapter tests in Node"
bash scripts/wasm-tests.sh run

step "README figures (line counts, wasm size within its target)"
bash scripts/figures.sh --check

if [ "${TOKENKEEPER_SKIP_FUZZ:-0}" = 1 ]; then
  skip "fuzz smoke (TOKENKEEPER_SKIP_FUZZ=1)"
else
  step "fuzz smoke (${FUZZ_SECONDS:-30} s per target)"
  bash scripts/fuzz.sh "${FUZZ_SECONDS:-30}"
fi

step "disk"
disk

if pgrep -f "$root/tests/harness/server.mjs" >/dev/null; then
  echo "a test left the authorization server running" >&2
  exit 1
fi
if [ "${#skipped[@]}" -gt 0 ]; then
  for what in "${skipped[@]}"; do
    printf 'SKIPPED: %s\n' "$what"
  done
  step "green, with ${#skipped[@]} step(s) SKIPPED (not a full run)"
else
  step "all green"
fi
