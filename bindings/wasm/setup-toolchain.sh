#!/usr/bin/env bash
# Set up what bindings/wasm/build.sh needs, without root and without installing system packages:
#   - a rustc with its std sources, so std can be rebuilt for wasm32 (-Zbuild-std): rustup cannot fetch the
#     wasm32 target or rust-src here. Debian's rustc-web (1.96) and rust-web-src are fetched with
#     `apt-get download` (no root needed) and unpacked into $SECFLOW_CACHE/wasm-rust, never installed; a
#     system rustc-web is used as it is when one is installed;
#   - the linker: rustup's own rust-lld (shipped with every rustup toolchain), as a wasm linker;
#   - wasm-bindgen-cli at exactly the version of the wasm-bindgen crate in bindings/wasm/Cargo.lock, compiled
#     from crates.io into $SECFLOW_CACHE/wasm-bindgen/bin.
# It writes $SECFLOW_CACHE/wasm-rust/toolchain.env, which build.sh reads. SECFLOW_CACHE defaults to
# ~/.cache/fl-secflow. Idempotent: when everything is present it only checks and returns (< 1 s); the first
# run compiles wasm-bindgen-cli (minutes on 2 cores).
# usage: bash bindings/wasm/setup-toolchain.sh [--quiet]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
quiet=false
[[ "${1:-}" == "--quiet" ]] && quiet=true
say() { $quiet || echo "wasm toolchain: $*"; }
fail() { echo "wasm toolchain: $*" >&2; exit 1; }

cache="${SECFLOW_CACHE:-$HOME/.cache/fl-secflow}"
wbg_root="$cache/wasm-bindgen"
unpacked="$cache/wasm-rust"
env_file="$unpacked/toolchain.env"

command -v cargo >/dev/null || fail "cargo not found (install Rust with rustup first, as for the native addon)"

# --- rustc with std sources ---------------------------------------------------------------------------
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

# The packages rustc-web runs from, as apt names them today (versions are in their names: libllvm22, ...).
rust_packages() {
  local pkgs=(rustc-web rust-web-src libstd-rust-web-dev) more
  more=$(apt-cache depends rustc-web libstd-rust-web-dev 2>/dev/null | sed -n 's/^ *Depends: \(libstd-rust-web-[0-9.]*\)$/\1/p' | sort -u)
  pkgs+=($more)
  for p in $more; do
    pkgs+=($(apt-cache depends "$p" 2>/dev/null | sed -n 's/^ *Depends: \(libllvm[0-9]*\)$/\1/p'))
  done
  # What librustc_driver and libLLVM link against beyond the C/C++ runtimes, where the system lacks it.
  for p in libedit2 libffi8 libxml2 libz3-4; do installed "$p" || pkgs+=("$p"); done
  printf '%s\n' "${pkgs[@]}" | sort -u
}

if [[ -x /usr/bin/rustc ]] && installed rustc-web && installed rust-web-src; then
  rustc_bin=/usr/bin/rustc
  libs=""
elif [[ -x "$unpacked/usr/bin/rustc" && -d "$unpacked/usr/lib/rustlib/src/rust/library" ]]; then
  rustc_bin="$unpacked/usr/bin/rustc"
  libs="$unpacked/usr/lib/x86_64-linux-gnu"
else
  command -v apt-get >/dev/null || fail "no rustc with std sources for wasm32, and no apt-get to fetch Debian's rustc-web: see bindings/wasm/build.sh"
  say "fetching Debian's rustc-web and its std sources into $unpacked (apt-get download: no root, nothing installed; once, ~130 MB)"
  debs="$(mktemp -d)"
  mapfile -t packages < <(rust_packages)
  (cd "$debs" && apt-get download "${packages[@]}" >/dev/null 2>&1) ||
    { apt-get update -qq >/dev/null 2>&1 || true; (cd "$debs" && apt-get download "${packages[@]}" >/dev/null); } ||
    fail "apt-get download ${packages[*]} failed"
  rm -rf "$unpacked" && mkdir -p "$unpacked"
  for deb in "$debs"/*.deb; do dpkg-deb -x "$deb" "$unpacked"; done
  rm -rf "$debs"
  rustc_bin="$unpacked/usr/bin/rustc"
  libs="$unpacked/usr/lib/x86_64-linux-gnu"
fi
LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$rustc_bin" --version >/dev/null ||
  fail "$rustc_bin does not run (missing libraries?)"

# --- the linker: rustup's rust-lld -------------------------------------------------------------------
sysroot="$(rustc --print sysroot 2>/dev/null || true)"
lld="$sysroot/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/bin/rust-lld"
[[ -x "$lld" ]] || lld="$(command -v wasm-ld || true)"
[[ -n "$lld" && -x "$lld" ]] || fail "no wasm linker: neither rustup's rust-lld nor wasm-ld found"

mkdir -p "$unpacked"
cat >"$env_file" <<ENV
# Written by bindings/wasm/setup-toolchain.sh; read by bindings/wasm/build.sh.
WASM_RUSTC='$rustc_bin'
WASM_RUSTC_LIBS='$libs'
WASM_LINKER='$lld'
ENV

# --- wasm-bindgen-cli, same version as the crate ---------------------------------------------------------
version="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' "$here/Cargo.lock")"
[[ -n "$version" ]] || fail "no wasm-bindgen in $here/Cargo.lock"
have="$("$wbg_root/bin/wasm-bindgen" --version 2>/dev/null | awk '{ print $2 }' || true)"
if [[ "$have" != "$version" ]]; then
  say "cargo install wasm-bindgen-cli $version into $wbg_root (compiles from source, a few minutes)"
  flags=(--version "$version" --force --root "$wbg_root")
  $quiet && flags+=(--quiet)
  # Not --locked: its lockfile can name crates newer than the registry mirror has.
  cargo install wasm-bindgen-cli "${flags[@]}"
fi
say "ok ($("$rustc_bin" --version | awk '{ print $1, $2 }') at $rustc_bin, linker $lld, wasm-bindgen $version at $wbg_root/bin)"
