/**
 * Every notebook in workspace/notebooks/ runs headless (nbclient, in the venv scripts/setup.sh --for-tests
 * makes) in quick mode against the real project: real federations, a real audit. None may rot.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { REPO, tempDir } from './helpers/paths.ts';

const NOTEBOOKS = join(REPO, 'workspace', 'notebooks');
const PYTHON = join(process.env.SECFLOW_CACHE ?? join(homedir(), '.cache', 'fl-secflow'), 'notebook-venv', 'bin', 'python');
const runs = tempDir('secflow-notebook-runs-');
const executed = tempDir('secflow-notebooks-');

interface Executed { notebook: string; executed: string; cells: number; images: number; errors: number }

function execute(name: string): { result: Executed; text: string } {
  if (!existsSync(PYTHON)) throw new Error(`no notebook kernel at ${PYTHON}: run bash scripts/setup.sh --for-tests`);
  const r = spawnSync(PYTHON, [join(NOTEBOOKS, 'execute.py'), '--out', executed, join(NOTEBOOKS, name)], {
    cwd: REPO, encoding: 'utf8', timeout: 900_000, env: { ...process.env, SECFLOW_NB_QUICK: '1', SECFLOW_NB_RUNS: runs },
  });
  if (r.status !== 0) throw new Error(`${name} failed (exit ${r.status}):\n${r.stderr.slice(-3000)}`);
  const result = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Executed;
  // Every output of every cell, as text, to check what the notebook showed.
  const notebook = JSON.parse(readFileSync(result.executed, 'utf8')) as { cells: { outputs?: { text?: string | string[]; data?: Record<string, string | string[]> }[] }[] };
  const text = notebook.cells.flatMap((c) => c.outputs ?? []).map((o) => [o.text, o.data?.['text/plain']].flat().join('')).join('\n');
  return { result, text };
}

test('workspace/notebooks holds the four notebooks the tests run', (t) => {
  t.deepEqual(readdirSync(NOTEBOOKS).filter((f) => f.endsWith('.ipynb')).sort(),
    ['01-run-an-experiment.ipynb', '02-compare-strategies.ipynb', '03-plot-the-rounds.ipynb', '04-leakage-audit.ipynb']);
});

test.serial('01 runs the protected federation and reads its metrics, threshold and model card', (t) => {
  const { result, text } = execute('01-run-an-experiment.ipynb');
  t.is(result.errors, 0);
  t.true(result.images >= 1, 'the per-round plot');
  t.regex(text, /final test_auc=0\.\d+/);
  t.regex(text, /decision threshold: [\d.]+ from the federation's validation data/);
  t.regex(text, /'secure_aggregation': True, 'precode': True/);
  t.regex(text, /hospital-a\s+\d+/);
});

test.serial('02 compares FedAvg and FedAvgM on the same federation', (t) => {
  const { result, text } = execute('02-compare-strategies.ipynb');
  t.is(result.errors, 0);
  t.true(result.images >= 1);
  t.regex(text, /fedavg\s+0\.\d+[\s\S]*fedavgm\s+0\.\d+/);
});

test.serial('03 plots the rounds of the latest run folder', (t) => {
  const { result, text } = execute('03-plot-the-rounds.ipynb');
  t.is(result.errors, 0);
  t.true(result.images >= 2, 'per-envoy curves and the director test set');
  t.regex(text, /pneumonia: finished, 2 of 2 rounds/);
  t.regex(text, /no DP-SGD in this run/);
});

test.serial('04 runs a leakage audit and shows its table, scatter and reconstruction grids', (t) => {
  const { result, text } = execute('04-leakage-audit.ipynb');
  t.is(result.errors, 0);
  t.true(result.images >= 3, `the scatter and a grid per configuration (${result.images} images)`);
  t.regex(text, /none\s+0\.\d+\s+-?\d+\.\d+\s+ig/);
  t.regex(text, /precode\s+0\.\d+\s+-?\d+\.\d+\s+ig/);
});
