#!/usr/bin/env bash
# The browser half of the axum example app (adapters/axum/examples/web):
# the wasm adapter (`tokenkeeper-wasm`, its route client exported to
# JavaScript as `getAccessTokenFromRoute`) built as a cdylib for
# wasm32-unknown-unknown and turned into an ES module by wasm-bindgen
# (`--target web`). The example app serves the result at /pkg/.
#
#   scripts/axum-web-wasm.sh [out dir]   default: adapters/axum/examples/web/pkg
#
# Needs the wasm32 target and wasm-bindgen-cli at the lock file's version
# (`scripts/wasm-tests.sh install`).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-adapters/axum/examples/web/pkg}
target_dir=${CARGO_TARGET_DIR:-$(pwd)/target}

command -v wasm-bindgen >/dev/null \
  || { echo "[axum-web-wasm] wasm-bindgen is missing: run scripts/wasm-tests.sh install" >&2; exit 1; }
# A library crate as a cdylib without changing its manifest.
cargo rustc -p tokenkeeper-wasm --lib --release --target wasm32-unknown-unknown --crate-type cdylib
wasm-bindgen --target web --no-typescript --out-dir "$out" \
  "$target_dir/wasm32-unknown-unknown/release/tokenkeeper_wasm.wasm"
echo "[axum-web-wasm] $(wc -c <"$out/tokenkeeper_wasm_bg.wasm") bytes of wasm in $out" >&2
