#!/usr/bin/env bash
# Self-contained GPU check for an envoy workstation: sets up tfjs-node-gpu (and CUDA's runtime where a GPU is
# visible), then trains the envoy's model on the GPU and on the CPU and prints images/s for each.
#   bash bench/gpu-check.sh [--steps 40] [--width 32] [--batch 64] [--data path/to/pneumoniamnist.npz]
# On a machine without a GPU it still runs end to end: the gpu run says why it trained on the CPU.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh --quiet --gpu
exec npx tsx bench/gpu-check.ts "$@"
