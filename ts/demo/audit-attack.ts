/** The demo's audit step: attack one envoy's recorded probe updates and score them against its own records. */
import { join } from 'node:path';
import { loadPneumoniaMnist } from '../core/data/npz.ts';
import { probeAttackConfig, type LocalAuditedRun } from '../leakage/audit-attack.ts';
import { runLeakage } from '../leakage/run.ts';

export interface ProbeScore { round: number; psnr: number; ssim: number; floorPsnr: number; grid: string }

/** Inverting Gradients on `envoy`'s probe of each of `rounds` (0-based), as the director received it. */
export async function attackAuditedProbes(run: LocalAuditedRun, envoy: string, rounds: number[], dataPath: string, iterations: number): Promise<ProbeScore[]> {
  const floorImages = loadPneumoniaMnist(dataPath, 'train').images;
  const scores: ProbeScore[] = [];
  for (const round of rounds) {
    const outDir = join(run.runDir, 'audit', 'attacks', `${envoy}-round-${round + 1}`);
    const config = probeAttackConfig(run, round, [envoy], { attack: 'ig', iterations, restarts: 1, learningRate: 0.1, tvWeight: 1e-4, seed: 0 });
    const r = await runLeakage({ ...config, floorImages, outDir });
    scores.push({ round, psnr: r.psnr_best, ssim: r.ssim_best, floorPsnr: r.images[0].floor.psnr, grid: join(outDir, 'ig-grid.png') });
  }
  return scores;
}
