#!/usr/bin/env bash
# Release checks of the library crates (tokenkeeper, tokenkeeper-native,
# tokenkeeper-ureq, tokenkeeper-reqwest, tokenkeeper-wasm, tokenkeeper-redis,
# tokenkeeper-axum):
#
# 1. `cargo package` of each crate, verified: its packaged sources alone are
#    built (this catches a file missing from the package). The crates are
#    packaged together, so an adapter's dependency on the unpublished core
#    resolves to the core's own package (cargo's local registry overlay).
# 2. `cargo doc` with warnings denied, the wasm crate for wasm32 (its items
#    are wasm32-only), every feature on.
# 3. With a nightly toolchain, the docs as docs.rs builds them
#    (`--cfg docsrs`: the feature badges); skipped without one, or with
#    TOKENKEEPER_SKIP_NIGHTLY_DOCS=1.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

crates=(tokenkeeper tokenkeeper-native tokenkeeper-ureq tokenkeeper-reqwest tokenkeeper-wasm tokenkeeper-redis tokenkeeper-axum)
native=(-p tokenkeeper -p tokenkeeper-native -p tokenkeeper-ureq -p tokenkeeper-reqwest -p tokenkeeper-redis -p tokenkeeper-axum)
packages=()
for crate in "${crates[@]}"; do packages+=(-p "$crate"); done

# cargo unpacks the packaged crates of its local registry overlay under
# $CARGO_HOME/registry/src/-<hash>/ and reuses an unpacked copy of the same
# name and version from an earlier run: a dependent crate would then be
# verified against an old core. Those copies are ours alone (the overlay
# directories' names start with '-'); remove them first.
cargo_home=${CARGO_HOME:-$HOME/.cargo}
for crate in "${crates[@]}"; do
  rm -rf "$cargo_home"/registry/src/-*/"$crate"-[0-9]*
done
# The same holds for what cargo compiled from them: a registry crate of one
# name and version is taken to never change, so its compiled artifacts in
# the shared target directory are reused as they are (a dependent was
# verified against a core without this round's features). Our crates'
# artifacts go too; cargo rebuilds them (not their dependencies).
target_dir=$(cargo metadata --format-version 1 --no-deps | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')
for profile in "$target_dir"/debug "$target_dir"/release; do
  rm -rf "$profile"/.fingerprint/tokenkeeper-* "$profile"/deps/libtokenkeeper-* "$profile"/deps/tokenkeeper-*
done

step "cargo package ${crates[*]}"
# --allow-dirty: this checks what would be packaged, not the VCS state.
cargo package --allow-dirty "${packages[@]}"
for crate in "${crates[@]}"; do
  list=$(cargo package --allow-dirty --list -p "$crate")
  for file in README.md LICENSE-MIT LICENSE-APACHE; do
    grep -qx "$file" <<<"$list" || { echo "$crate: $file is not packaged" >&2; exit 1; }
  done
done

step "cargo doc, warnings denied"
RUSTDOCFLAGS=-Dwarnings cargo doc --no-deps --all-features "${native[@]}"
rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || true
RUSTDOCFLAGS=-Dwarnings cargo doc --no-deps --all-features -p tokenkeeper-wasm \
  --target wasm32-unknown-unknown

if [ "${TOKENKEEPER_SKIP_NIGHTLY_DOCS:-0}" != 1 ] && cargo +nightly --version >/dev/null 2>&1; then
  step "cargo +nightly doc --cfg docsrs (as docs.rs), warnings denied"
  RUSTDOCFLAGS="--cfg docsrs -Dwarnings" cargo +nightly doc --no-deps --all-features "${native[@]}"
else
  step "SKIPPED: nightly docs (--cfg docsrs): no nightly toolchain yet, or TOKENKEEPER_SKIP_NIGHTLY_DOCS=1"
fi

step "package checks green"
