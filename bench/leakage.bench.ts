/**
 * Leakage benchmark: DLG (L-BFGS) and Inverting Gradients on an untrained ConvNetBN (width 32, 28x28x1,
 * PyTorch-default initialization as the reference, batch norm in inference mode),
 * batch 1, on PneumoniaMNIST test images 0..3; the mean-image floor; and IG iterations per second beside
 * the same attack in PyTorch CPU (bench/leakage_torch.py) on the same weights and images.
 *
 *   npx tsx bench/leakage.bench.ts [--dlg-iterations 300] [--ig-iterations 2000] [--images 4] [--no-torch]
 * Writes bench/results/leakage.json. Set SECFLOW_TORCH_PYTHON to a python3 with torch (default: the
 * bench venv at ~/.cache/fl-secflow/bench-venv, if present).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ModelSpecSchema } from '../ts/core/config/experiment.ts';
import { loadPneumoniaMnist } from '../ts/core/data/npz.ts';
import { subset } from '../ts/core/data/dataset.ts';
import { buildModel } from '../ts/core/model.ts';
import { readWeights } from '../ts/core/weights.ts';
import { runLeakage, type AttackName, type LeakageRunResult } from '../ts/leakage/run.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(HERE, '..');
const DATA = process.env.SECFLOW_DATA ?? resolve(REPO, '..', 'shared', 'data', 'pneumoniamnist.npz');
const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const settings = {
  dlgIterations: arg('dlg-iterations', 300), igIterations: arg('ig-iterations', 2000), images: arg('images', 4),
  width: 32, init: 'torch' as const, bnMode: 'eval' as const, tvWeight: 1e-4, learningRate: 0.1, seed: 0,
};

const model = ModelSpecSchema.parse({ width: settings.width, seed: 0, init: settings.init });
const victims = subset(loadPneumoniaMnist(DATA, 'test'), [...Array(settings.images).keys()]);
const train = loadPneumoniaMnist(DATA, 'train');

async function attack(name: AttackName, iterations: number): Promise<LeakageRunResult> {
  return runLeakage({
    attack: name, model, bnMode: settings.bnMode, images: victims.images, labels: victims.labels, batch: 1,
    floorImages: train.images, iterations, restarts: 1, learningRate: settings.learningRate, tvWeight: settings.tvWeight,
    seed: settings.seed, localSteps: 4, localLearningRate: 1e-3, outDir: join(HERE, 'results', 'leakage'),
    log: (line) => console.log(line),
  });
}

/** The same IG on the same weights and images in PyTorch; null when no torch is at hand. */
function torchIg(iterations: number): { psnr: number[]; iterations_per_second: number; torch: string } | null {
  const python = process.env.SECFLOW_TORCH_PYTHON ?? join(homedir(), '.cache', 'fl-secflow', 'bench-venv', 'bin', 'python3');
  if (process.argv.includes('--no-torch') || !existsSync(python)) return null;
  // The very weights the TS attacks ran on (runLeakage builds them the same way from the same seed).
  const untrained = buildModel(model);
  const w = readWeights(untrained);
  let offset = 0;
  const weights = w.manifest.map((t) => {
    const n = t.shape.reduce((a, b) => a * b, 1);
    const values = Array.from(w.values.subarray(offset, offset + n));
    offset += n;
    return { ...t, values };
  });
  const images = [...Array(settings.images).keys()].map((i) => Array.from(victims.images.subarray(i * 784, (i + 1) * 784)));
  const spec = {
    weights, images, labels: Array.from(victims.labels), image_shape: [28, 28, 1],
    attack: { name: 'ig', iterations, learning_rate: settings.learningRate, tv_weight: settings.tvWeight, mode: settings.bnMode, seed: settings.seed },
  };
  const path = join(tmpdir(), `secflow-leakage-torch-${process.pid}.json`);
  writeFileSync(path, JSON.stringify(spec));
  const out = execFileSync(python, [join(HERE, 'leakage_torch.py'), path], { encoding: 'utf8', maxBuffer: 1 << 24 });
  return JSON.parse(out.trim().split('\n').at(-1)!);
}

const dlg = await attack('dlg', settings.dlgIterations);
const ig = await attack('ig', settings.igIterations);
let torch: ReturnType<typeof torchIg> = null;
try {
  torch = torchIg(settings.igIterations);
} catch (error) {
  // The measuring stick is optional: keep the TS results even if PyTorch fails or is stopped.
  console.error(`PyTorch comparison failed: ${(error as Error).message.split('\n')[0]}`);
}
const results = {
  settings,
  dlg_untrained_psnr_mean: dlg.psnr_mean,
  dlg_untrained_psnr_best: dlg.psnr_best,
  dlg_untrained_ssim_mean: dlg.ssim_mean,
  ig_untrained_psnr_mean: ig.psnr_mean,
  ig_untrained_psnr_best: ig.psnr_best,
  ig_untrained_ssim_mean: ig.ssim_mean,
  floor_psnr_mean: ig.floor_psnr_mean,
  floor_ssim_mean: ig.floor_ssim_mean,
  ig_tfjs_iterations_per_second: ig.iterations_per_second,
  ig_torch_iterations_per_second: torch?.iterations_per_second ?? null,
  ig_tfjs_vs_torch_speed_ratio: torch ? ig.iterations_per_second / torch.iterations_per_second : null,
  ig_torch_psnr: torch?.psnr ?? null,
  torch_version: torch?.torch ?? null,
  dlg_psnr: dlg.images.map((s) => s.psnr),
  ig_psnr: ig.images.map((s) => s.psnr),
};
mkdirSync(join(HERE, 'results'), { recursive: true });
writeFileSync(join(HERE, 'results', 'leakage.json'), JSON.stringify(results, null, 2) + '\n');
console.log(JSON.stringify(results, null, 2));
