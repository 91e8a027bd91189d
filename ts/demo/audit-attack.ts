/** The demo's audit step: attack one envoy's recorded probe update and score it against its own record. */
import { join } from 'node:path';
import { auditRoundDir, truthPath } from '../core/audit.ts';
import { loadPneumoniaMnist } from '../core/data/npz.ts';
import { auditedRunConfig } from '../leakage/audit-attack.ts';
import { runLeakage } from '../leakage/run.ts';

export interface ProbeAttack {
  runDir: string;
  envoyAudit: string;
  federation: string;
  envoy: string;
  round: number;
  dataPath: string;
  iterations: number;
}

export async function attackAuditedProbe(a: ProbeAttack) {
  const record = auditRoundDir(a.runDir, a.round, 'probe');
  const experiment = a.runDir.split('/').at(-1)!;
  const truth = truthPath(join(a.envoyAudit, a.envoy), a.federation, experiment, a.envoy, a.round, 'probe');
  const outDir = join(a.runDir, 'audit', 'attacks', `${a.envoy}-round-${a.round + 1}`);
  const config = auditedRunConfig(record, a.envoy, [truth], { attack: 'ig', iterations: a.iterations, restarts: 1, learningRate: 0.1, tvWeight: 1e-4, seed: 0 });
  const result = await runLeakage({ ...config, floorImages: loadPneumoniaMnist(a.dataPath, 'train').images, outDir });
  return { psnr: result.psnr_best, ssim: result.ssim_best, floorPsnr: result.images[0].floor.psnr, grid: join(outDir, 'ig-grid.png') };
}
