#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what the tests need
# (rustup targets, the npm packages of the local authorization server,
# wasm-bindgen-cli), runs every test, the lints and the no_std builds, and
# leaves no process behind.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

step() { printf '\n==> %s\n' "$*"; }

step "toolchain targets"
rustup target add thumbv7em-none-eabihf wasm32-unknown-unknown >/dev/null

step "authorization server packages (npm ci)"
(cd tests/harness && npm ci --no-audit --no-fund --loglevel=error)

# Whatever a test run starts must be gone when it ends, failing or not.
cleanup() { pkill -f "$root/tests/harness/server.mjs" 2>/dev/null || true; }
trap cleanup EXIT

if [ -x scripts/wasm-tests.sh ]; then
  step "wasm tools"
  scripts/wasm-tests.sh install
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

step "no_std builds of the core"
cargo build -p tokenkeeper --no-default-features --target thumbv7em-none-eabihf
cargo build -p tokenkeeper --no-default-features --target wasm32-unknown-unknown

step "tests (unit, scenario, property, doc, integration against node-oidc-provider)"
cargo test --workspace --all-features

if [ -x scripts/wasm-tests.sh ]; then
  step "wasm adapter tests in Node"
  scripts/wasm-tests.sh run
fi

if [ -x scripts/fuzz.sh ] && [ "${TOKENKEEPER_SKIP_FUZZ:-0}" != 1 ]; then
  step "fuzz smoke (${FUZZ_SECONDS:-30} s per target)"
  scripts/fuzz.sh "${FUZZ_SECONDS:-30}"
fi

if pgrep -f "$root/tests/harness/server.mjs" >/dev/null; then
  echo "a test left the authorization server running" >&2
  exit 1
fi
step "all green"
