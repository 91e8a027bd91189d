#!/usr/bin/env bash
# Build the Node addon (napi-rs, Rust) and place it at
# bindings/native/secflow_native.node, where bindings/native.cjs loads it.
# Idempotent: cargo's own freshness check makes an up-to-date build take
# well under a second, and the copy is skipped when the file is unchanged.
#   usage: bindings/build.sh [--quiet] [--debug]
set -euo pipefail

quiet=0
profile=release
for arg in "$@"; do
  case "$arg" in
    --quiet) quiet=1 ;;
    --debug) profile=debug ;;
    *) echo "usage: $0 [--quiet] [--debug]" >&2; exit 2 ;;
  esac
done

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

if ! command -v cargo >/dev/null 2>&1; then
  echo "bindings/build.sh: cargo not found (install a Rust toolchain, e.g. via rustup)" >&2
  exit 1
fi

cargo_args=(build -p secflow-native)
[[ "$profile" == release ]] && cargo_args+=(--release)
if [[ $quiet == 1 ]]; then
  cargo "${cargo_args[@]}" --quiet
else
  cargo "${cargo_args[@]}"
fi

target_dir="${CARGO_TARGET_DIR:-$root/target}"
case "$(uname -s)" in
  Darwin) lib="libsecflow_native.dylib" ;;
  MINGW*|MSYS*|CYGWIN*) lib="secflow_native.dll" ;;
  *) lib="libsecflow_native.so" ;;
esac
src="$target_dir/$profile/$lib"
dst="$root/bindings/native/secflow_native.node"

if [[ ! -f "$dst" ]] || ! cmp -s "$src" "$dst"; then
  # Copy to a temp name and rename, so a running node never sees a partial file.
  cp "$src" "$dst.tmp.$$"
  mv -f "$dst.tmp.$$" "$dst"
  [[ $quiet == 1 ]] || echo "bindings/build.sh: wrote $dst"
else
  [[ $quiet == 1 ]] || echo "bindings/build.sh: $dst is up to date"
fi
