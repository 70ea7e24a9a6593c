#!/usr/bin/env bash
# Size of a minimal app on the wasm adapter (examples/minimal.rs): built for
# wasm32-unknown-unknown with opt-level "z", fat LTO, one codegen unit and
# panic = "abort" (set here with --config, so the workspace's own release
# profile is left alone), the wasm adapter's default features off (only
# refresh and DPoP: no login, discovery, token exchange, WHATWG URL parser
# or exact float parsing) and the source paths in panic locations
# shortened; then run through wasm-bindgen (--target web) and wasm-opt -Oz from the npm `binaryen` package (installed into a temporary
# directory; names and producers stripped). Prints the byte sizes, raw and
# gzipped.
#
#   adapters/wasm/examples/size.sh [BINARYEN_VERSION]
#
# With WASM_SIZE_KEEP=DIR the optimized module is also left in DIR, as
# minimal.opt.wasm and as minimal.named.wasm (the same wasm-opt -Oz run
# keeping the function names), for a breakdown by `twiggy top`.
set -euo pipefail
cd "$(dirname "$0")/../../.."
binaryen_version=${1:-132.0.0}
target_dir=${CARGO_TARGET_DIR:-$(pwd)/target}
out=$(mktemp -d "${TMPDIR:-/tmp}/tokenkeeper-wasm-size.XXXXXX")
trap 'rm -rf "$out"' EXIT

cargo build -p tokenkeeper-wasm --no-default-features --example minimal --target wasm32-unknown-unknown --release \
  --config 'profile.release.opt-level="z"' \
  --config 'profile.release.lto=true' \
  --config 'profile.release.codegen-units=1' \
  --config 'profile.release.panic="abort"' \
  --config "build.rustflags=['--remap-path-prefix=${CARGO_HOME:-$HOME/.cargo}/registry/src/=', '--remap-path-prefix=$(pwd)/=']"
raw="$target_dir/wasm32-unknown-unknown/release/examples/minimal.wasm"
wasm-bindgen --target web --out-dir "$out/pkg" "$raw"
bindgen="$out/pkg/minimal_bg.wasm"

(cd "$out" && npm install --no-audit --no-fund --loglevel=error "binaryen@$binaryen_version" >/dev/null)
"$out/node_modules/.bin/wasm-opt" -Oz --strip-debug --strip-producers --enable-bulk-memory --enable-nontrapping-float-to-int \
  --enable-sign-ext --enable-mutable-globals --enable-reference-types --enable-multivalue \
  "$bindgen" -o "$out/minimal.opt.wasm"

if [ -n "${WASM_SIZE_KEEP:-}" ]; then
  mkdir -p "$WASM_SIZE_KEEP"
  cp "$out/minimal.opt.wasm" "$bindgen" "$WASM_SIZE_KEEP/"
  "$out/node_modules/.bin/wasm-opt" -Oz -g --enable-bulk-memory --enable-nontrapping-float-to-int \
    --enable-sign-ext --enable-mutable-globals --enable-reference-types --enable-multivalue \
    "$bindgen" -o "$WASM_SIZE_KEEP/minimal.named.wasm"
fi

size() { printf '%-34s %8d bytes  (gzip -9: %d)\n' "$1" "$(wc -c <"$2")" "$(gzip -9c "$2" | wc -c)"; }
size "cargo build (release, z, lto)" "$raw"
size "after wasm-bindgen" "$bindgen"
size "after wasm-opt -Oz" "$out/minimal.opt.wasm"
size "JS glue (minimal.js)" "$out/pkg/minimal.js"
