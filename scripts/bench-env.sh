#!/usr/bin/env bash
# The benches' measuring sticks, in a venv cached outside the clone ($SECFLOW_CACHE/bench-venv): PyTorch (CPU
# is all the benches use; PyPI's wheel brings CUDA's libraries, ~7 GB on disk, once) and Flower (its SecAgg+
# primitives). Never a runtime dependency of FL-SecFlow. Idempotent; prints the venv's python.
#   bash scripts/bench-env.sh [--quiet]
set -euo pipefail
CACHE="${SECFLOW_CACHE:-$HOME/.cache/fl-secflow}"
VENV="$CACHE/bench-venv"
PACKAGES=("torch==2.15.0" "flwr==1.42.0" "numpy<3")
QUIET=0; [[ "${1:-}" == --quiet ]] && QUIET=1
say() { [[ $QUIET == 1 ]] || echo "[bench-env] $*" >&2; }
stamp="$VENV/.packages-$(printf '%s ' "${PACKAGES[@]}" | sha256sum | cut -c1-12)"
if [[ ! -f "$stamp" ]]; then
  say "installing the benches' measuring sticks (${PACKAGES[*]}) into $VENV (once, a few minutes)"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "${PACKAGES[@]}" >&2
  "$VENV/bin/python" -c "import torch, flwr" >&2
  touch "$stamp"
fi
echo "$VENV/bin/python"
