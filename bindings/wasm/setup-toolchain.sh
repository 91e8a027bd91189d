#!/usr/bin/env bash
# Install what bindings/wasm/build.sh needs on a Debian (bookworm) machine:
#   - rustc-web (rustc 1.96) + rust-web-src (std sources, rebuilt for wasm32
#     with -Zbuild-std because rustup cannot fetch the wasm32 target here)
#     + lld (wasm-ld), from apt;
#   - wasm-bindgen-cli at exactly the version of the wasm-bindgen crate in
#     bindings/wasm/Cargo.lock, into $SECFLOW_CACHE/wasm-bindgen/bin
#     (SECFLOW_CACHE defaults to ~/.cache/fl-secflow).
# Idempotent: when everything is present it only checks and returns (< 1 s).
# The first run compiles wasm-bindgen-cli from crates.io (minutes on 2 cores).
# usage: bash bindings/wasm/setup-toolchain.sh [--quiet]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
quiet=false
[[ "${1:-}" == "--quiet" ]] && quiet=true
say() { $quiet || echo "wasm toolchain: $*"; }

cache="${SECFLOW_CACHE:-$HOME/.cache/fl-secflow}"
wbg_root="$cache/wasm-bindgen"

# --- apt: rustc-web, rust-web-src, lld -------------------------------------------
missing=()
for pkg in rustc-web rust-web-src lld; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if ((${#missing[@]})); then
  say "apt-get install ${missing[*]}"
  sudo=""
  [[ $(id -u) -ne 0 ]] && sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y "${missing[@]}" >/dev/null 2>&1 || {
    $sudo apt-get update -qq
    $sudo apt-get install -y "${missing[@]}"
  }
fi
[[ -x /usr/bin/rustc ]] && command -v wasm-ld >/dev/null || {
  echo "wasm toolchain: /usr/bin/rustc (rustc-web) or wasm-ld (lld) still missing" >&2
  exit 1
}
command -v cargo >/dev/null || {
  echo "wasm toolchain: cargo not found (install Rust with rustup first, as for the native addon)" >&2
  exit 1
}

# --- wasm-bindgen-cli, same version as the crate ---------------------------------
version="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' "$here/Cargo.lock")"
[[ -n "$version" ]] || { echo "wasm toolchain: no wasm-bindgen in $here/Cargo.lock" >&2; exit 1; }
have="$("$wbg_root/bin/wasm-bindgen" --version 2>/dev/null | awk '{ print $2 }' || true)"
if [[ "$have" != "$version" ]]; then
  say "cargo install wasm-bindgen-cli $version into $wbg_root (compiles from source, a few minutes)"
  flags=(--version "$version" --force --root "$wbg_root")
  $quiet && flags+=(--quiet)
  # Not --locked: its lockfile can name crates newer than the registry mirror has.
  cargo install wasm-bindgen-cli "${flags[@]}"
fi
say "ok (rustc-web $(/usr/bin/rustc --version | awk '{ print $2 }'), wasm-bindgen $version at $wbg_root/bin)"
