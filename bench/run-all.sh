#!/usr/bin/env bash
# `npm run bench`: the whole suite, one bench after another, each writing bench/results/<name>.json (see
# bench/RESULTS.md for what each measures). The measuring sticks (PyTorch, Flower) are set up on first use by
# scripts/bench-env.sh. On a 2-core machine the suite takes hours, the privacy-utility audit most of them;
# pass names to run some: bash bench/run-all.sh federation secagg
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
benches=("$@")
((${#benches[@]})) || benches=(federation secagg leakage privacy robustness clinical scale audit)
failed=()
for bench in "${benches[@]}"; do
  echo "=== bench: $bench"
  npx tsx "bench/$bench.bench.ts" || failed+=("$bench")
done
((${#failed[@]} == 0)) || { echo "benches that failed: ${failed[*]}"; exit 1; }
