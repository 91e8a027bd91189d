/**
 * Leakage benchmark: how much of a victim's X-ray the director can rebuild, in the issue's reference settings
 * and after one real federated round. ConvNetBN width 32, 28x28x1, PyTorch-default initialization (seed 0),
 * PneumoniaMNIST test images; every score is against the true images and the no-information floor (the
 * training-set mean image). Parts (all by default; --parts picks some):
 *
 *   dlg        DLG (L-BFGS) on the untrained model, batch 1, eval-mode batch norm, test images 0..3
 *   ig         Inverting Gradients, same setting
 *   speed      IG iterations per second in tfjs-node beside the same IG in PyTorch CPU (bench/leakage_torch.py)
 *              on the same weights and images, back to back: ig_tfjs_vs_torch_speed_ratio
 *   multistep  the multi-step FedAvg attack, untrained model: 4 plain-SGD local steps at η = 1e-3 on batches of
 *              2 (test images 0..7 as 4 pairs), eval-mode batch norm
 *   multistep-torch  the same multi-step attack in PyTorch on the same weights and pairs (a strength cross-check)
 *   federation a real 3-envoy federation (bench/leakage/federation.ts), 2 rounds, audited with a probe
 *   round1     IG (images 0..7, batch 1) and multi-step (4 pairs) with simulated victims on the global model
 *              after round 1 (its checkpoint), eval mode: the reference-style number on a trained model
 *   multistep-round1  round1's multi-step half alone
 *   audit      IG on what the director received: each envoy's probe update (one SGD step on one image, training-
 *              mode batch norm, with the batch-norm statistics the update reveals) of round 1 (untrained model)
 *              and round 2 (the model after one round), scored against the image the envoy recorded
 *   labels     the labels the multi-step attack read off each pair's update (untrained and round-1 model), as
 *              runLeakage recovers them (seconds; explains the pairs where one image fails)
 *
 *   npx tsx bench/leakage.bench.ts [--parts dlg,ig,speed,multistep,multistep-torch,federation,round1,multistep-round1,audit,labels] [--dlg-iterations 300]
 *     [--ig-iterations 2000] [--multistep-iterations 2000] [--speed-iterations N] [--speed-repeats 1] [--images 4] [--pairs 4]
 *     [--fed-dir DIR] [--no-torch] [--out bench/results/leakage.json] [--grids bench/results/leakage]
 *
 * --speed-iterations N times both sides on N iterations per image instead of the full --ig-iterations (the per-
 *   iteration work is the same; only the learning-rate schedule's milestones move), for when a full PyTorch run is
 *   too slow on a loaded machine. The PSNRs of such a run are not attack results and are not recorded as such.
 *   --speed-repeats R times the tfjs/PyTorch pair R times, alternating, and records the median ratio and all R.
 * --fed-dir DIR: where the federation part runs (default: a new temporary folder); round1 and audit without the
 *   federation part read a federation run earlier into DIR.
 * Results are merged into --out (existing keys of parts not run are kept); each part records the command, its
 * wall time, finish date and the load average before and after under `runs`. Grids and per-run summaries go to
 * bench/results/leakage/ (untrained), .../round1/ and .../audit/round-N-<envoy>/.
 * Set SECFLOW_TORCH_PYTHON to a python3 with torch (default: the bench venv, scripts/bench-env.sh, made on first use).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { auditRoundDir, readAuditRecord, readAuditTruth, readAuditWeights, truthPath } from '../ts/core/audit.ts';
import { ModelSpecSchema } from '../ts/core/config/experiment.ts';
import { loadPneumoniaMnist } from '../ts/core/data/npz.ts';
import { subset } from '../ts/core/data/dataset.ts';
import { buildModel } from '../ts/core/model.ts';
import { decodeWeights, readWeights, type FlatWeights } from '../ts/core/weights.ts';
import { auditedRunConfig } from '../ts/leakage/audit-attack.ts';
import { runLeakage, type AttackName, type LeakageRunConfig, type LeakageRunResult } from '../ts/leakage/run.ts';
import { tf } from '../ts/core/tf.ts';
import { disposeParams, paramsFromNamed, paramsOfModel, type ConvNetParams } from '../ts/leakage/functional-model.ts';
import { observeUpdate } from '../ts/leakage/attacks/multi-step.ts';
import { biasGradient, meanPrediction, recoverLabels } from '../ts/leakage/attacks/idlg.ts';
import { benchPython } from './measuring-sticks.ts';
import { ENVOYS, FEDERATION, federationAt, roundOneMetrics, runAuditedFederation, type FederationRun } from './leakage/federation.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(HERE, '..');
const DATA = process.env.SECFLOW_DATA ?? resolve(REPO, '..', 'shared', 'data', 'pneumoniamnist.npz');
const PARTS = ['dlg', 'ig', 'speed', 'multistep', 'multistep-torch', 'federation', 'round1', 'multistep-round1', 'audit', 'labels'] as const;
type Part = (typeof PARTS)[number];

const option = (name: string): string | undefined => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const num = (name: string, fallback: number) => Number(option(name) ?? fallback);
const parts = new Set((option('parts')?.split(',') ?? PARTS) as Part[]);
for (const p of parts) if (!PARTS.includes(p)) throw new Error(`unknown part '${p}'; parts: ${PARTS.join(', ')}`);
const out = resolve(option('out') ?? join(HERE, 'results', 'leakage.json'));
const GRIDS = resolve(option('grids') ?? join(HERE, 'results', 'leakage'));

const settings = {
  dlgIterations: num('dlg-iterations', 300), igIterations: num('ig-iterations', 2000), images: num('images', 4),
  multistepIterations: num('multistep-iterations', 2000), pairs: num('pairs', 4),
  width: 32, init: 'torch' as const, modelSeed: 0, bnMode: 'eval' as const, tvWeight: 1e-4, learningRate: 0.1, seed: 0,
  // The multi-step reference (the original system): K = 4 local steps of 2 images at η = 1e-3, plain SGD.
  localSteps: 4, localBatch: 2, localLearningRate: 1e-3, localOptimizer: 'sgd' as const,
};
const speedIterations = num('speed-iterations', settings.igIterations);
const speedRepeats = num('speed-repeats', 1);

const model = ModelSpecSchema.parse({ width: settings.width, seed: settings.modelSeed, init: settings.init });
const test = loadPneumoniaMnist(DATA, 'test');
const victims = (n: number) => subset(test, [...Array(n).keys()]);
const train = loadPneumoniaMnist(DATA, 'train');
const log = (line: string) => console.log(line);

/** A simulated victim: its gradient (batch 1) or its 4-step update (multistep, batch 2) on `n` test images. */
function simulated(attack: AttackName, n: number, iterations: number, extra: Partial<LeakageRunConfig> = {}): Promise<LeakageRunResult> {
  const v = victims(n);
  const multistep = attack === 'multistep';
  return runLeakage({
    attack, model, bnMode: settings.bnMode, images: v.images, labels: v.labels, batch: multistep ? settings.localBatch : 1,
    floorImages: train.images, iterations, restarts: 1, learningRate: settings.learningRate, tvWeight: settings.tvWeight,
    seed: settings.seed, localSteps: settings.localSteps, localLearningRate: settings.localLearningRate,
    localOptimizer: settings.localOptimizer, localMomentum: 0, log, ...extra,
  });
}

/** The keys every attack result is recorded with: mean, best image (the envoy's worst case), floor, gap. */
function summary(prefix: string, r: LeakageRunResult): Record<string, unknown> {
  const best = r.images.reduce((a, b) => (b.psnr > a.psnr ? b : a));
  return {
    [`${prefix}_psnr_mean`]: r.psnr_mean,
    [`${prefix}_psnr_best`]: r.psnr_best,
    [`${prefix}_ssim_mean`]: r.ssim_mean,
    [`${prefix}_ssim_best`]: r.ssim_best,
    [`${prefix}_floor_psnr_mean`]: r.floor_psnr_mean,
    [`${prefix}_floor_ssim_mean`]: r.floor_ssim_mean,
    [`${prefix}_psnr_gap_mean`]: r.psnr_gap_mean,
    [`${prefix}_psnr_gap_best`]: best.psnrGap,
    [`${prefix}_label_accuracy`]: r.label_accuracy,
    [`${prefix}_iterations_per_second`]: r.iterations_per_second,
    [`${prefix}_psnr`]: r.images.map((s) => s.psnr),
    [`${prefix}_ssim`]: r.images.map((s) => s.ssim),
  };
}

/** Multi-step batches of 2: per pair the better- and the worse-reconstructed image. */
function pairs(prefix: string, r: LeakageRunResult): Record<string, unknown> {
  const list = [];
  for (let i = 0; i + 1 < r.images.length; i += 2) {
    const [a, b] = [r.images[i], r.images[i + 1]];
    const [better, worse] = a.psnr >= b.psnr ? [a, b] : [b, a];
    list.push({
      images: [i, i + 1], psnr_better: better.psnr, psnr_worse: worse.psnr, ssim_better: better.ssim, ssim_worse: worse.ssim,
      floor_psnr: [a.floor.psnr, b.floor.psnr],
    });
  }
  return { [`${prefix}_pairs`]: list };
}

interface TorchResult { psnr: number[]; seconds: number; iterations_per_second: number; torch: string; threads: number }

/**
 * The same attack on the same weights and victims in PyTorch (bench/leakage_torch.py, with the true labels);
 * null when no torch is at hand or --no-torch.
 */
function torchAttack(attack: 'ig' | 'multistep', weights: FlatWeights, n: number, iterations: number): TorchResult | null {
  if (process.argv.includes('--no-torch')) return null;
  const python = process.env.SECFLOW_TORCH_PYTHON ?? benchPython();
  let offset = 0;
  const tensors = weights.manifest.map((t) => {
    const size = t.shape.reduce((a, b) => a * b, 1);
    const values = Array.from(weights.values.subarray(offset, offset + size));
    offset += size;
    return { ...t, values };
  });
  const v = victims(n);
  const images = [...Array(n).keys()].map((i) => Array.from(v.images.subarray(i * 784, (i + 1) * 784)));
  const spec = {
    weights: tensors, images, labels: Array.from(v.labels), image_shape: [28, 28, 1], batch: attack === 'multistep' ? settings.localBatch : 1,
    attack: {
      name: attack, iterations, learning_rate: settings.learningRate, tv_weight: settings.tvWeight, mode: settings.bnMode, seed: settings.seed,
      local_steps: settings.localSteps, local_learning_rate: settings.localLearningRate,
    },
  };
  const path = join(tmpdir(), `secflow-leakage-torch-${process.pid}.json`);
  writeFileSync(path, JSON.stringify(spec));
  try {
    const stdout = execFileSync(python, [join(HERE, 'leakage_torch.py'), path], { encoding: 'utf8', maxBuffer: 1 << 24 });
    return JSON.parse(stdout.trim().split('\n').at(-1)!);
  } finally {
    rmSync(path, { force: true });
  }
}

function checkpointAfterRoundOne(fed: FederationRun): FlatWeights {
  const weights = decodeWeights(readFileSync(join(fed.runDir, 'checkpoints', 'round-0001.weights')));
  // Round 2's probe must have been asked of exactly this model, or (a) and (b) would attack different models.
  const probe = auditRoundDir(fed.runDir, 1, 'probe');
  const sent = readAuditWeights(probe, readAuditRecord(probe).sent);
  const worst = Math.max(...sent.values.map((x, i) => Math.abs(x - weights.values[i])));
  if (sent.values.length !== weights.values.length || worst > 0) throw new Error(`round 2's probe was sent other weights than the round-1 checkpoint (max |diff| ${worst})`);
  return weights;
}

/** IG on each envoy's recorded probe update of one round, as the director could run it. */
async function attackProbes(fed: FederationRun, round: number): Promise<Record<string, unknown>> {
  const prefix = `audit_probe_round${round + 1}`;
  const record = auditRoundDir(fed.runDir, round, 'probe');
  const perEnvoy: Record<string, unknown> = {};
  const results: LeakageRunResult[] = [];
  for (const envoy of ENVOYS) {
    const truth = truthPath(join(fed.envoyAudit, envoy), FEDERATION, fed.experiment, envoy, round, 'probe');
    const config = auditedRunConfig(record, envoy, [truth], {
      attack: 'ig', iterations: settings.igIterations, restarts: 1, learningRate: settings.learningRate, tvWeight: settings.tvWeight, seed: settings.seed,
    });
    const outDir = join(GRIDS, 'audit', `round-${round + 1}-${envoy}`);
    log(`audit: IG on ${envoy}'s probe update of round ${round + 1} (${relative(REPO, outDir)})`);
    const r = await runLeakage({ ...config, floorImages: train.images, outDir, log });
    results.push(r);
    const s = r.images[0];
    perEnvoy[envoy] = {
      psnr: s.psnr, ssim: s.ssim, floor_psnr: s.floor.psnr, floor_ssim: s.floor.ssim, psnr_gap: s.psnrGap, label_correct: r.label_accuracy === 1,
      shard_index: readAuditTruth(truth).indices[0], grid: relative(REPO, join(outDir, 'ig-grid.png')),
    };
  }
  const images = results.flatMap((r) => r.images);
  const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
  return {
    [`${prefix}_psnr_mean`]: mean(images.map((s) => s.psnr)),
    [`${prefix}_psnr_best`]: Math.max(...images.map((s) => s.psnr)),
    [`${prefix}_ssim_mean`]: mean(images.map((s) => s.ssim)),
    [`${prefix}_floor_psnr_mean`]: mean(images.map((s) => s.floor.psnr)),
    [`${prefix}_psnr_gap_mean`]: mean(images.map((s) => s.psnrGap)),
    [`${prefix}_iterations_per_second`]: mean(results.map((r) => r.iterations_per_second)),
    [prefix]: perEnvoy,
  };
}

/** This invocation's keys; save() merges them into the file as it is then, so other runs' keys survive. */
const results: Record<string, unknown> = {};
const runs: Record<string, unknown> = {};
const command = `npx tsx bench/leakage.bench.ts ${process.argv.slice(2).join(' ')}`.trim();
const save = () => {
  const before = existsSync(out) ? JSON.parse(readFileSync(out, 'utf8')) : {};
  mkdirSync(dirname(out), { recursive: true });
  const merged = { ...before, ...results, settings: { ...before.settings, ...settings }, runs: { ...before.runs, ...runs } };
  writeFileSync(out, JSON.stringify(merged, null, 2) + '\n');
};

/** Runs one part, merges its keys into the results and records how it was produced; saves after each part. */
async function part(name: Part, body: () => Promise<Record<string, unknown>>): Promise<void> {
  if (!parts.has(name)) return;
  const load = loadavg()[0];
  const started = performance.now();
  log(`--- ${name} (load average ${load.toFixed(2)})`);
  Object.assign(results, await body());
  runs[name] = {
    command, date: new Date().toISOString(), wall_seconds: (performance.now() - started) / 1000,
    load_average_start: load, load_average_end: loadavg()[0],
  };
  save();
}

let ig: LeakageRunResult | undefined;
await part('dlg', async () => {
  const dlg = await simulated('dlg', settings.images, settings.dlgIterations, { outDir: GRIDS });
  return { ...summary('dlg_untrained', dlg), dlg_psnr: dlg.images.map((s) => s.psnr) };
});
await part('ig', async () => {
  ig = await simulated('ig', settings.images, settings.igIterations, { outDir: GRIDS });
  return {
    ...summary('ig_untrained', ig), ig_psnr: ig.images.map((s) => s.psnr),
    floor_psnr_mean: ig.floor_psnr_mean, floor_ssim_mean: ig.floor_ssim_mean,
  };
});
await part('speed', async () => {
  // tfjs first, PyTorch right after, on the very weights runLeakage builds from the same spec and seed; with
  // --speed-repeats R the pair is timed R times, alternating, and the median ratio is recorded (a loaded machine
  // moves both sides from minute to minute; the pairs' spread shows by how much).
  const weights = readWeights(buildModel(model));
  const timings: { tfjs: number; torch: number | null }[] = [];
  let torch: TorchResult | null = null;
  for (let r = 0; r < speedRepeats; r++) {
    const tfjs = r === 0 && ig && speedIterations === settings.igIterations ? ig : await simulated('ig', settings.images, speedIterations);
    try {
      torch = torchAttack('ig', weights, settings.images, speedIterations);
    } catch (error) {
      // The measuring stick is optional: keep the TS results even if PyTorch fails or is stopped.
      console.error(`PyTorch comparison failed: ${(error as Error).message.split('\n')[0]}`);
      torch = null;
    }
    timings.push({ tfjs: tfjs.iterations_per_second, torch: torch?.iterations_per_second ?? null });
    log(`speed ${r + 1}/${speedRepeats}: tfjs ${tfjs.iterations_per_second.toFixed(2)} it/s, PyTorch ${torch?.iterations_per_second.toFixed(2) ?? '-'} it/s`);
  }
  const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor((v.length - 1) / 2)];
  const timed = timings.filter((t): t is { tfjs: number; torch: number } => t.torch !== null);
  const ratios = timed.map((t) => t.tfjs / t.torch);
  const full = speedIterations === settings.igIterations;
  return {
    ig_speed_iterations: speedIterations,
    ig_speed_repeats: speedRepeats,
    ig_tfjs_iterations_per_second: median(timings.map((t) => t.tfjs)),
    ig_torch_iterations_per_second: timed.length ? median(timed.map((t) => t.torch)) : null,
    // The lower median for an even count of pairs.
    ig_tfjs_vs_torch_speed_ratio: ratios.length ? median(ratios) : null,
    ig_tfjs_vs_torch_speed_ratios: ratios,
    // Only a full-length PyTorch run is an attack result worth comparing.
    ig_torch_psnr: full ? torch?.psnr ?? null : null,
    torch_version: torch?.torch ?? null,
    torch_threads: torch?.threads ?? null,
  };
});
await part('multistep', async () => {
  const r = await simulated('multistep', 2 * settings.pairs, settings.multistepIterations, { outDir: GRIDS });
  return { ...summary('multistep_untrained', r), ...pairs('multistep_untrained', r) };
});

await part('multistep-torch', async () => {
  // The same multi-step attack in PyTorch on the same weights and pairs: is what the TS attack reaches the
  // attack's, or this implementation's? (PyTorch gets the true labels; label_accuracy shows the TS run's.)
  const r = torchAttack('multistep', readWeights(buildModel(model)), 2 * settings.pairs, settings.multistepIterations);
  if (!r) throw new Error('multistep-torch needs PyTorch (SECFLOW_TORCH_PYTHON or the bench venv)');
  log(`multistep in PyTorch: PSNR ${r.psnr.map((p) => p.toFixed(2)).join(', ')} dB, ${r.iterations_per_second.toFixed(2)} it/s`);
  const list = [];
  for (let i = 0; i + 1 < r.psnr.length; i += 2) list.push({ images: [i, i + 1], psnr_better: Math.max(r.psnr[i], r.psnr[i + 1]), psnr_worse: Math.min(r.psnr[i], r.psnr[i + 1]) });
  return {
    multistep_untrained_torch_psnr_mean: r.psnr.reduce((a, b) => a + b, 0) / r.psnr.length,
    multistep_untrained_torch_psnr_best: Math.max(...r.psnr),
    multistep_untrained_torch_psnr: r.psnr,
    multistep_untrained_torch_pairs: list,
    multistep_untrained_torch_iterations_per_second: r.iterations_per_second,
  };
});

const fedDir = option('fed-dir') ? resolve(option('fed-dir')!) : undefined;
let fed: FederationRun | undefined = fedDir && !parts.has('federation') ? federationAt(fedDir) : undefined;
await part('federation', async () => {
  const dir = fedDir ?? mkdtempSync(join(tmpdir(), 'secflow-leakage-fed-'));
  fed = await runAuditedFederation(dir, DATA, { width: settings.width, seed: settings.modelSeed, init: settings.init }, log);
  const m = roundOneMetrics(fed.runDir);
  return { federation_round1_test_auc: m.test_auc, federation_round1_test_accuracy: m.test_accuracy, federation_round1_examples: m.examples, federation_run_dir: fed.runDir };
});
const needFederation = () => {
  if (!fed) throw new Error('round1 and audit attack a federation run: add the federation part, or pass --fed-dir of an earlier one');
  return fed;
};
/** The multi-step attack on the round-1 checkpoint (its labels chosen by trying each label set: run.ts labelSearch). */
async function multistepRound1(weights: FlatWeights): Promise<Record<string, unknown>> {
  const ms = await simulated('multistep', 2 * settings.pairs, settings.multistepIterations, { weights, outDir: join(GRIDS, 'round1') });
  return { ...summary('multistep_round1', ms), ...pairs('multistep_round1', ms), multistep_round1_label_accuracy: ms.label_accuracy };
}
await part('round1', async () => {
  const weights = checkpointAfterRoundOne(needFederation());
  const igr = await simulated('ig', 2 * settings.pairs, settings.igIterations, { weights, outDir: join(GRIDS, 'round1') });
  return { ...summary('ig_round1', igr), ...(await multistepRound1(weights)) };
});
await part('multistep-round1', async () => multistepRound1(checkpointAfterRoundOne(needFederation())));
/**
 * The labels the multi-step attack works with, per pair: recovered from the simulated update's classifier bias
 * as runLeakage does (the update turned back into a gradient, the model's mean prediction on seeded noise).
 */
function recoveredPairLabels(params: ConvNetParams): { images: number[]; true: number[]; recovered: number[] }[] {
  const s = { params, mode: settings.bnMode, imageShape: [28, 28, 1] as [number, number, number], batch: settings.localBatch, numClasses: 2 };
  const local = { steps: settings.localSteps, learningRate: settings.localLearningRate, optimizer: settings.localOptimizer, momentum: 0 };
  const mean = meanPrediction(s, settings.seed);
  const v = victims(2 * settings.pairs);
  return [...Array(settings.pairs).keys()].map((p) => {
    const labels = v.labels.slice(2 * p, 2 * p + 2);
    const update = observeUpdate(s, v.images.slice(2 * p * 784, (2 * p + 2) * 784), labels, local);
    const gradient = biasGradient(update).map((g) => -g / (settings.localLearningRate * settings.localSteps));
    tf.dispose(update);
    return { images: [2 * p, 2 * p + 1], true: [...labels].sort(), recovered: [...recoverLabels(gradient, mean, 2)] };
  });
}

await part('audit', async () => ({ ...(await attackProbes(needFederation(), 0)), ...(await attackProbes(needFederation(), 1)) }));
await part('labels', async () => {
  const untrained = paramsOfModel(buildModel(model));
  const w = checkpointAfterRoundOne(needFederation());
  let offset = 0;
  const round1 = paramsFromNamed(w.manifest.map((t) => t.name), w.manifest.map((t) => {
    const n = t.shape.reduce((a, b) => a * b, 1);
    const tensor = tf.tensor(w.values.subarray(offset, offset + n), t.shape, 'float32');
    offset += n;
    return tensor;
  }));
  const result = { multistep_untrained_labels: recoveredPairLabels(untrained), multistep_round1_labels: recoveredPairLabels(round1) };
  disposeParams(untrained);
  disposeParams(round1);
  log(JSON.stringify(result));
  return result;
});
log(`results in ${relative(REPO, out)}`);
