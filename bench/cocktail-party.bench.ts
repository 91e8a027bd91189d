/**
 * The Cocktail Party Attack's core (independent component analysis of a dense layer's gradient, Kariyappa et
 * al. 2023) on the secure sums a kept audit recorded: can it separate single images' features out of the
 * director's view, where the lab's analytic attack only finds rows that one image dominates? For every audited
 * round of the run: the update of the first dense layer after the convs (PRECODE's encoder, else the
 * classifier) and the true conv features of every image in the sum (each envoy's batch through the sent model,
 * with that envoy's own batch statistics, as it trained), handed to bench/cocktail_party.py (numpy FastICA).
 * Writes bench/results/cocktail-party.json.
 *
 *   npx secflow leakage audit --only defaults --rounds 3 --out bench/results/audit-defaults   (keeps its run folder)
 *   npx tsx bench/cocktail-party.bench.ts [--run bench/results/audit-defaults/defaults] [--experiment audit-defaults]
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type * as TF from '@tensorflow/tfjs';
import { auditRoundDir, readAuditRecord } from '../ts/core/audit.ts';
import { tf } from '../ts/core/tf.ts';
import { toTensors } from '../ts/core/weights.ts';
import { featureLayer } from '../ts/leakage/attacks/linear-layer.ts';
import { probeAttackConfig } from '../ts/leakage/audit-attack.ts';
import { convFeatures, paramsFromNamed } from '../ts/leakage/functional-model.ts';
import { benchPython } from './measuring-sticks.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const { values: args } = parseArgs({ options: { run: { type: 'string' }, experiment: { type: 'string' } } });
const base = resolve(args.run ?? join(HERE, 'results', 'audit-defaults', 'defaults'));
const experiment = args.experiment ?? 'audit-defaults';
const run = { runDir: join(base, 'workspace', 'audit', experiment), envoyAudit: join(base, 'envoy-audit'), federation: 'audit', experiment };
if (!existsSync(join(run.runDir, 'audit'))) throw new Error(`no audit records under ${run.runDir}: run the audit first (see this file's usage)`);

const rounds = readdirSync(join(run.runDir, 'audit')).map((f) => /^round-(\d+)-probe$/.exec(f)).filter((m) => m !== null)
  .map((m) => Number(m![1]) - 1).sort((a, b) => a - b);
const python = benchPython();
const results = rounds.map((round) => {
  const record = readAuditRecord(auditRoundDir(run.runDir, round, 'probe'));
  if (record.view !== 'aggregate') throw new Error(`round ${round + 1}: the director saw single updates, not a secure sum; this bench is for sums`);
  const envoys = record.updates[0].envoys;
  const folder = mkdtempSync(join(tmpdir(), 'cocktail-party-'));
  try {
    writeObservation(folder, run, round, envoys);
    const result = JSON.parse(execFileSync(python, [join(HERE, 'cocktail_party.py'), folder], { encoding: 'utf8' }));
    console.log(`round ${round + 1}: ${JSON.stringify(result)}`);
    return { round: round + 1, envoys, ...result };
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
});
const out = join(HERE, 'results', 'cocktail-party.json');
writeFileSync(out, `${JSON.stringify({ command: `npx tsx bench/cocktail-party.bench.ts --run ${base} --experiment ${experiment}`, created_at: new Date().toISOString(), rounds: results }, null, 2)}\n`);
console.log(`written: ${out}`);

/** The dense layer's update and the true features of the sum's images, as float32 files and their shapes. */
function writeObservation(folder: string, r: typeof run, round: number, envoys: string[]): void {
  const c = probeAttackConfig(r, round, envoys, { attack: 'analytic', iterations: 1, restarts: 1, learningRate: 0.1, tvWeight: 0, seed: 0 });
  const { sent, delta } = c.saved!;
  tf.tidy(() => {
    const p = paramsFromNamed(sent.manifest.map((t) => t.name), toTensors(sent));
    const layer = featureLayer(p);
    const update = toTensors(delta)[delta.manifest.findIndex((t) => t.name === `${layer}/kernel`)];
    const perEnvoy = c.batch / envoys.length;
    const images = tf.tensor4d(c.images, [c.batch, 28, 28, 1]);
    // Each envoy trained its images as one batch: its batch norm used that batch's statistics.
    const features = tf.concat(envoys.map((_, e) => convFeatures(p, images.slice([e * perEnvoy, 0, 0, 0], [perEnvoy, 28, 28, 1]) as TF.Tensor4D, 'train')));
    writeFloats(join(folder, 'encoder-update.f32'), update);
    writeFloats(join(folder, 'features.f32'), features);
    writeFileSync(join(folder, 'meta.json'), JSON.stringify({ layer, encoder_update: update.shape, features: features.shape }));
  });
}

function writeFloats(path: string, t: TF.Tensor): void {
  const a = t.dataSync() as Float32Array;
  writeFileSync(path, Buffer.from(a.buffer, a.byteOffset, a.byteLength));
}
