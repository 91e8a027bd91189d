/**
 * Simulation at scale: many envoys in one process, one TensorFlow (`secflow envoy start -c a.yaml -c b.yaml ...`).
 * Each keeps its own identity, kit, NATS connection, shard and ledger, so the director cannot tell them from
 * envoys on separate machines, secure aggregation included.
 */
import test from 'ava';
import { existsSync } from 'node:fs';
import { startTestFederation } from './helpers/federation.ts';

test('five envoys in one process run a secure-aggregation federation as five separate hospitals', async (t) => {
  const names = ['a', 'b', 'c', 'd', 'e'];
  const fed = await startTestFederation({
    envoys: names, envoyProcesses: 1, trainLimit: 600, protectedDefaults: true,
    // Five envoys share one event loop: while one trains the others' heartbeats wait (not what this tests).
    heartbeat: { interval_seconds: 0.5, timeout_seconds: 10 },
    experiment: { name: 'simulated', rounds: 2, min_envoys_to_start: 5, model: { width: 4, seed: 1 }, training: { batch_size: 16 } },
  });
  t.teardown(() => fed.stop());
  t.is(fed.envoys.size, 1, 'one envoy process');
  const status = await fed.status();
  t.deepEqual(status.envoys.filter((e) => e.alive).map((e) => e.name).sort(), names);
  const { final, events } = await fed.run();
  t.is(final.type, 'finished');
  const rounds = events.filter((e) => e.type === 'round');
  t.is(rounds.length, 2);
  for (const r of rounds) t.deepEqual(r.envoys!.map((e) => e.envoy).sort(), names, 'every simulated hospital in every round');
  t.regex(fed.log('director'), /secure aggregation/i);
  t.false(/speaks for another envoy/.test(fed.log('director')), 'no envoy was taken for another');
  for (const name of names) t.true(existsSync(fed.ledgerOf(name)), `${name} keeps its own ledger`);
});

test('envoys of one process must agree on their device', async (t) => {
  const { spawnSync } = await import('node:child_process');
  const { writeFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { SECFLOW_BIN } = await import('../ts/local/roles.ts');
  const { tempDir } = await import('./helpers/paths.ts');
  const dir = tempDir();
  const config = (name: string, device: string) => {
    const file = join(dir, `${name}.yaml`);
    writeFileSync(file, `name: ${name}\nfederation: f\ninsecure: true\ndevice: ${device}\nshard:\n  train: {kind: pneumoniamnist, path: p.npz, split: train}\n`);
    return file;
  };
  const r = spawnSync(SECFLOW_BIN, ['envoy', 'start', '-c', config('a', 'cpu'), '-c', config('b', 'gpu')], { encoding: 'utf8', timeout: 60_000 });
  t.is(r.status, 1);
  t.regex(r.stderr, /share one TensorFlow: their device: keys differ \(cpu, gpu\)/);
});
