#!/usr/bin/env bash
# Build bindings/wasm into bindings/wasm/pkg (gitignored) for Node (wasm-bindgen --target nodejs):
# the same API as the napi addon (bindings/index.d.ts), loaded by ts/core/secagg/backend.ts when
# the addon is unavailable. rustup cannot add the wasm32 target here, so this uses Debian's
# rustc-web (1.96) with its std sources (unpacked into the cache by setup-toolchain.sh, or the system's),
# rebuilding std for wasm32 via -Zbuild-std (RUSTC_BOOTSTRAP=1 unlocks that flag on a stable compiler),
# linked with rustup's rust-lld, then wasm-bindgen-cli from crates.io. No root needed.
# One-time setup (idempotent, quick when done): bash bindings/wasm/setup-toolchain.sh
# usage: bash bindings/wasm/build.sh [--quiet]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
quiet=()
[[ "${1:-}" == "--quiet" ]] && quiet=(--quiet)
cache="${SECFLOW_CACHE:-$HOME/.cache/fl-secflow}"
wbg="$cache/wasm-bindgen/bin/wasm-bindgen"
if [[ ! -x "$wbg" ]]; then
  wbg="$(command -v wasm-bindgen || true)"
  [[ -n "$wbg" ]] || { echo "wasm-bindgen not found: run bash bindings/wasm/setup-toolchain.sh" >&2; exit 1; }
fi
env_file="$cache/wasm-rust/toolchain.env"
[[ -f "$env_file" ]] || { echo "no WASM toolchain: run bash bindings/wasm/setup-toolchain.sh" >&2; exit 1; }
# shellcheck source=/dev/null
source "$env_file"
[[ -x "$WASM_RUSTC" && -x "$WASM_LINKER" ]] || { echo "the WASM toolchain in $env_file is gone: run bash bindings/wasm/setup-toolchain.sh" >&2; exit 1; }
[[ -n "$WASM_RUSTC_LIBS" ]] && export LD_LIBRARY_PATH="$WASM_RUSTC_LIBS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export RUSTC="$WASM_RUSTC" RUSTC_BOOTSTRAP=1 CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER="$WASM_LINKER"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$here/../../target/wasm}"
cargo build "${quiet[@]}" --release --target wasm32-unknown-unknown -Zbuild-std=std,panic_abort
out="$CARGO_TARGET_DIR/wasm32-unknown-unknown/release/secflow_wasm.wasm"
# Skip wasm-bindgen when pkg/ is already newer than the .wasm (keeps a no-op build instant).
if [[ ! -f "$here/pkg/secflow_wasm_bg.wasm" || "$out" -nt "$here/pkg/secflow_wasm_bg.wasm" || ! -f "$here/pkg/package.json" ]]; then
  tmp="$CARGO_TARGET_DIR/pkg.tmp"
  rm -rf "$tmp" && mkdir -p "$tmp"
  "$wbg" --target nodejs --out-dir "$tmp" "$out"
  # The repo's package.json says "type": "module"; wasm-bindgen's nodejs output is CommonJS.
  echo '{ "type": "commonjs" }' > "$tmp/package.json"
  rm -rf "$here/pkg" && mv "$tmp" "$here/pkg"
fi
[[ ${#quiet[@]} -gt 0 ]] || echo "built $here/pkg (require('./bindings/wasm/pkg/secflow_wasm.js'); wasm-bindgen: $wbg)"
