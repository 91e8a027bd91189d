#!/usr/bin/env bash
# Build the Node addon (napi-rs, Rust) with napi-rs's own CLI and install its two outputs:
#   bindings/native/secflow_native.node  the addon, loaded by bindings/native.cjs;
#   bindings/index.d.ts                  its TypeScript declarations, generated from the #[napi] items
#                                        (bindings/native/src): never edit them by hand.
# Idempotent: cargo's freshness check makes an up-to-date build take about a second, and each file is
# replaced only when it changed (by rename, so a running node never sees a partial addon).
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
if [[ ! -x node_modules/.bin/napi ]]; then
  echo "bindings/build.sh: napi-rs's CLI is missing (npm install, or bash scripts/setup.sh)" >&2
  exit 1
fi

# napi's destination and --dts are relative to the working directory and the crate; stage both in target/.
out="target/napi-out"
args=(build -c bindings/native/package.json --cargo-cwd bindings/native --js false --dts index.d.ts)
[[ "$profile" == release ]] && args+=(--release)
args+=("$out")
if [[ $quiet == 1 ]]; then
  log="$(mktemp)"
  node_modules/.bin/napi "${args[@]}" >"$log" 2>&1 || { cat "$log" >&2; rm -f "$log"; exit 1; }
  rm -f "$log"
else
  node_modules/.bin/napi "${args[@]}"
fi

# install <built file> <destination>: a copy under a temp name, then a rename; nothing when unchanged.
install_output() {
  local src="$1" dst="$2"
  if [[ -f "$dst" ]] && cmp -s "$src" "$dst"; then
    [[ $quiet == 1 ]] || echo "bindings/build.sh: $dst is up to date"
    return
  fi
  cp "$src" "$dst.tmp.$$"
  mv -f "$dst.tmp.$$" "$dst"
  [[ $quiet == 1 ]] || echo "bindings/build.sh: wrote $dst"
}
install_output "$out/secflow_native.node" bindings/native/secflow_native.node
install_output "$out/index.d.ts" bindings/index.d.ts
