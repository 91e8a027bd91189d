#!/usr/bin/env bash
# EXPERIMENTAL: build bindings/wasm into bindings/wasm/pkg (gitignored) for Node.
# rustup cannot add the wasm32 target here, so this uses Debian's rustc-web
# (1.96) with its std sources, rebuilding std for wasm32 via -Zbuild-std
# (RUSTC_BOOTSTRAP=1 unlocks that flag on a stable compiler), linked with
# Debian's wasm-ld, then wasm-bindgen-cli from crates.io.
# One-time setup:
#   apt-get install -y rustc-web rust-web-src lld
#   cargo install wasm-bindgen-cli --version 0.2.130   # ~5 min on 2 cores
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
export RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=wasm-ld
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$here/../../target/wasm}"
cargo build --release --target wasm32-unknown-unknown -Zbuild-std=std,panic_abort
wasm-bindgen --target nodejs --out-dir "$here/pkg" "$CARGO_TARGET_DIR/wasm32-unknown-unknown/release/secflow_wasm.wasm"
# The repo's package.json says "type": "module"; wasm-bindgen's nodejs output is CommonJS.
echo '{ "type": "commonjs" }' > "$here/pkg/package.json"
echo "built $here/pkg (require('./bindings/wasm/pkg/secflow_wasm.js'))"
