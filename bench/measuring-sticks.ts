/**
 * The Python every bench compares against (PyTorch, Flower): $SECFLOW_BENCH_PYTHON if set, else the cached
 * venv that scripts/bench-env.sh makes on first use, so a fresh clone's `npm run bench:*` measures both sides.
 */
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), '..', 'scripts', 'bench-env.sh');

export function benchPython(): string {
  if (process.env.SECFLOW_BENCH_PYTHON) return process.env.SECFLOW_BENCH_PYTHON;
  try {
    return execFileSync('bash', [SCRIPT], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
  } catch (error) {
    throw new Error(`the benches' PyTorch/Flower venv could not be set up (${SCRIPT}): ${(error as Error).message}; set SECFLOW_BENCH_PYTHON to a python with torch and flwr`);
  }
}
