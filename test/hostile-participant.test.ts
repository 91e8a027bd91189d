/**
 * A provisioned participant turned hostile (test/adversary/hostile-envoy.ts, a real envoy process with a
 * real kit, or its kit in this process) against a live federation on the provisioned server. One test per
 * finding of the issue, each ending with the experiment finished and every honest envoy's heartbeats served,
 * then every hostile input of the list in one run.
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { unpack } from 'msgpackr';
import { parse, stringify } from 'yaml';
import { auditRoundDir, readAuditRecord, readAuditWeights } from '../ts/core/audit.ts';
import { ExperimentSchema } from '../ts/core/config/experiment.ts';
import { encode, ErrorReplySchema, kinds, LeaveSchema, PROTOCOL_VERSION, decode } from '../ts/core/messages.ts';
import { subjects } from '../ts/core/subjects.ts';
import type { Envelope } from '../ts/core/trust/envelope.ts';
import type { Bus } from '../ts/core/transport/bus.ts';
import { decodeWeights } from '../ts/core/weights.ts';
import { FedAvg } from '../ts/director/strategies/fedavg.ts';
import { spawnScript, waitForOutput, type RoleProcess } from '../ts/local/roles.ts';
import { startTestFederation, type TestFederation } from './helpers/federation.ts';
import { z } from 'zod';
import type { HostileMode } from './adversary/hostile-envoy.ts';

const HONEST = ['a', 'b', 'c'];
const HOSTILE = 'mallory';
const ALL_HOSTILE_INPUTS: HostileMode[] = ['oversized', 'nan', 'inf', 'wrong_shape', 'scale100', 'sign_flip', 'inflated', 'flood'];
const PLAN: Record<string, HostileMode[]> = {
  nan: ['nan', 'honest'], inflated: ['inflated'], hostile: ALL_HOSTILE_INPUTS, 'secagg-hostile': ['scale100', 'honest'],
  'secagg-sub-cohorts': ['scale100', 'scale100', 'scale100', 'scale100'],
};

let fed: TestFederation;
let mallory: RoleProcess;
let malloryBus: Bus;

test.before(async () => {
  fed = await startTestFederation({
    envoys: HONEST, idleEnvoys: [HOSTILE], trainLimit: 300,
    // The production silence timeout (10 s), not the helper's 3 s: nothing here tests dropouts, and the flood
    // round on a loaded 2-core machine once delayed every heartbeat past 3 s (as in test/fuzz.test.ts).
    heartbeat: { interval_seconds: 0.5, timeout_seconds: 10 },
    experiment: { name: 'warmup', rounds: 1, min_envoys_to_start: 4, model: { width: 4, seed: 1 }, training: { batch_size: 16 } },
  });
  // mallory's envoy.yaml: a's, under its own name and kit.
  const config = parse(readFileSync(fed.files.envoys[0], 'utf8'));
  const file = join(fed.dir, 'configs', `envoy-${HOSTILE}.yaml`);
  writeFileSync(file, stringify({ ...config, name: HOSTILE, kit: fed.kits![HOSTILE], audit_dir: join(fed.dir, 'envoy-audit', HOSTILE) }));
  mallory = spawnScript(HOSTILE, 'test/adversary/hostile-envoy.ts', ['--config', file], join(fed.dir, 'logs', `${HOSTILE}.log`),
    { SECFLOW_HOSTILE_PLAN: JSON.stringify(PLAN) });
  await waitForOutput(mallory, /registered with the director/);
  malloryBus = await fed.connectAs(HOSTILE);
});
test.after.always(async () => {
  await malloryBus?.close();
  await mallory?.stop();
  await fed?.stop();
});

const experiment = (name: string, rounds: number, extra: Record<string, unknown> = {}) =>
  ExperimentSchema.parse({ ...fed.config, name, rounds, min_envoys_to_start: 4, audit: { enabled: true }, ...extra });

/** Every honest envoy is still alive at the director: its heartbeats are being served. */
async function heartbeatsServed(t: { true(v: boolean, m?: string): void }) {
  const status = await fed.status();
  for (const e of HONEST) t.true(status.envoys.find((x) => x.name === e)?.alive === true, `${e}'s heartbeats are served`);
}

/** The round's aggregate is exactly FedAvg of the updates the director recorded as admitted. */
function aggregateOfAdmitted(runDir: string, round: number): { equal: boolean; envoys: string[]; examples: Record<string, number> } {
  const dir = auditRoundDir(runDir, round, 'round');
  const record = readAuditRecord(dir);
  const sent = readAuditWeights(dir, record.sent);
  const updates = record.updates.map((u) => ({ envoy: u.envoys[0], examples: u.examples, delta: readAuditWeights(dir, u.file) }));
  const expected = new FedAvg().aggregate(sent, updates);
  const actual = decodeWeights(readFileSync(join(runDir, 'checkpoints', `round-${String(round + 1).padStart(4, '0')}.weights`)));
  return {
    equal: Buffer.from(expected.values.buffer).equals(Buffer.from(actual.values.buffer)),
    envoys: updates.map((u) => u.envoy).sort(),
    examples: Object.fromEntries(updates.map((u) => [u.envoy, u.examples])),
  };
}

test.serial('an 800 KB request on the heartbeat subject gets a short refusal, and the heartbeats go on', async (t) => {
  const subject = subjects.heartbeat('testfed', HOSTILE);
  const { bytes } = await malloryBus.trust.wrap({ subject, kind: 'heartbeat', to: 'director' }, randomBytes(800 * 1024));
  t.true(bytes.length > 800 * 1024 && bytes.length < 1024 * 1024);
  const reply = await malloryBus.nc.request(subject, bytes, { timeout: 10_000 });
  t.true(reply.data.length < 1024, `the refusal is ${reply.data.length} bytes`);
  const envelope = unpack(reply.data) as Envelope;
  t.regex(decode(ErrorReplySchema, envelope.body!, 'error').error, /malformed heartbeat: (\(message\)|.*not msgpack)/);
  // The subscription lives: mallory's own heartbeat is answered, and so are everybody else's.
  const ok = await malloryBus.request(kinds.heartbeat, subject, 'director', { envoy: HOSTILE, busy: false }, 5000);
  t.true(ok.known);
  const { final } = await fed.run(undefined, experiment('after-oversized', 1));
  t.is(final.type, 'finished', final.message);
  await heartbeatsServed(t);
});

test.serial('a NaN update is refused naming its sender, and the round goes on with the others', async (t) => {
  const { final, events } = await fed.run(undefined, experiment('nan', 2));
  t.is(final.type, 'finished', final.message);
  const rounds = events.filter((e) => e.type === 'round');
  t.deepEqual(rounds.map((e) => e.round), [0, 1], 'both rounds aggregated');
  t.deepEqual(rounds[0].dropped, [HOSTILE]);
  t.regex(fed.log('director'), /round 1: continuing without mallory: its update was refused: its update holds NaN or infinite values/);
  const first = aggregateOfAdmitted(fed.runDir('nan'), 0);
  t.deepEqual(first.envoys, HONEST, 'only the honest updates are in round 1');
  t.true(first.equal, 'round 1 is FedAvg of the honest updates, bit for bit');
  t.deepEqual(aggregateOfAdmitted(fed.runDir('nan'), 1).envoys, [...HONEST, HOSTILE].sort(), 'mallory, honest again, is back in round 2');
  t.true(final.test!.roc_auc! > 0.5 && Number.isFinite(final.test!.loss));
  await heartbeatsServed(t);
});

test.serial('a claim of 1,000,000 training examples counts for what the envoy registered', async (t) => {
  const { final } = await fed.run(undefined, experiment('inflated', 1));
  t.is(final.type, 'finished', final.message);
  const registered = (await fed.status()).envoys.find((e) => e.name === HOSTILE)!.descriptor.counts.train;
  const round = aggregateOfAdmitted(fed.runDir('inflated'), 0);
  t.is(round.examples[HOSTILE], registered, `counted as ${round.examples[HOSTILE]}`);
  t.true(round.equal);
  t.regex(fed.log('director'), new RegExp(`mallory claimed 1000000 training examples; counted as ${registered}`));
  await heartbeatsServed(t);
});

test.serial('a name with CR/LF never becomes a subject: the registration is refused, nothing is published', async (t) => {
  const a = await fed.connectAs('a');
  t.teardown(() => a.close());
  const seen: string[] = [];
  const listener = a.nc.subscribe(subjects.envoyTask('testfed', 'a'), { callback: (_e, m) => seen.push(m.subject) });
  const crafted = `${HOSTILE}\r\nPUB ${subjects.envoyTask('testfed', 'a')} 5\r\nhello`;
  const anyRegistration = { ...kinds.register, schema: z.any() };
  const error = await t.throwsAsync(malloryBus.request(anyRegistration, subjects.register('testfed', HOSTILE), 'director', {
    protocol: PROTOCOL_VERSION,
    descriptor: { envoy: crafted, description: '', sample_shape: [28, 28, 1], target_shape: [1], class_names: ['n', 'p'], counts: { train: 1, val: 0 }, class_counts: { train: [1, 0], val: [] } },
  }, 5000));
  t.regex(error!.message, /malformed registration: descriptor\.envoy/);
  // Nor can the sender's side get such a name out: the schema refuses it before anything is sent.
  await t.throwsAsync(malloryBus.request(kinds.heartbeat, subjects.heartbeat('testfed', HOSTILE), 'director', { envoy: crafted, busy: false }, 5000), { message: /NATS subject token/ });
  await a.flush();
  await new Promise((r) => setTimeout(r, 300));
  listener.unsubscribe();
  t.deepEqual(seen, [], 'nothing reached a\'s task subject');
  t.false((await fed.status()).envoys.some((e) => /\r|\n/.test(e.name)));
  const { final } = await fed.run(undefined, experiment('after-crlf', 1));
  t.is(final.type, 'finished', final.message);
  await heartbeatsServed(t);
});

test.serial("another hospital's leave notice and result are refused", async (t) => {
  // On its own subjects, mallory speaks for a: refused and counted. On a's subjects the server refuses it.
  await malloryBus.publish(kinds.leave, subjects.leave('testfed', HOSTILE), 'director', { envoy: 'a' });
  const errors: string[] = [];
  void (async () => { for await (const s of malloryBus.nc.status()) if (s.permissionContext) errors.push(s.permissionContext.subject); })();
  malloryBus.nc.publish(subjects.leave('testfed', 'a'), encode(LeaveSchema, { envoy: 'a' }));
  await malloryBus.flush();
  await new Promise((r) => setTimeout(r, 500));
  t.deepEqual(errors, [subjects.leave('testfed', 'a')]);
  await heartbeatsServed(t);
  // A result in a's name, sent while a round waits for a's.
  let forged: Promise<unknown> | undefined;
  const { final, events } = await fed.run((e) => {
    if (e.type === 'started' && !forged) {
      forged = (async () => {
        let runSubject: string | undefined;
        for (let i = 0; i < 50 && !runSubject; i++) {
          runSubject = /'impersonation' round 1\/1 \(run (\w+)\)/.exec(fed.log('director'))?.[1];
          if (!runSubject) await new Promise((r) => setTimeout(r, 100));
        }
        return malloryBus.request(kinds.result, subjects.results('testfed', 'impersonation', runSubject!, HOSTILE), 'director', {
          experiment: 'impersonation', run_id: runSubject!, round: 0, task_id: '4f9a2c9e-3f5e-4b8e-9c1d-2a7b6e5d4c3b', envoy: 'a', ok: false, error: 'gave up', examples: 0,
        }, 5000).catch((err: Error) => err);
      })();
    }
  }, experiment('impersonation', 1));
  t.is(final.type, 'finished', final.message);
  t.deepEqual(events.find((e) => e.type === 'round')!.dropped, [], 'a was not dropped by the forged result');
  const status = await fed.status();
  const answer = await forged;
  t.regex(String((answer as { reason?: string })?.reason ?? answer), /mallory cannot send a's result/);
  t.true(status.refused.filter((r) => r.sender === HOSTILE && r.reason === 'speaks for another envoy').reduce((n, r) => n + r.count, 0) >= 2, JSON.stringify(status.refused));
  await heartbeatsServed(t);
});

test.serial('every hostile input of the list, one a round: each round finishes with the honest aggregate or names mallory', async (t) => {
  const config = experiment('hostile', ALL_HOSTILE_INPUTS.length);
  const { final, events } = await fed.run(undefined, config);
  t.is(final.type, 'finished', final.message);
  const rounds = events.filter((e) => e.type === 'round');
  t.is(rounds.length, ALL_HOSTILE_INPUTS.length, `every round aggregated: ${events.filter((e) => e.type === 'round_failed').map((e) => e.message).join('; ')}`);
  const director = fed.log('director');
  for (const [round, mode] of ALL_HOSTILE_INPUTS.entries()) {
    const admitted = aggregateOfAdmitted(fed.runDir('hostile'), round);
    t.true(admitted.equal, `round ${round + 1} (${mode}): the aggregate is FedAvg of what was admitted`);
    const refused = !['inflated', 'flood'].includes(mode);
    t.deepEqual(admitted.envoys, refused ? HONEST : [...HONEST, HOSTILE].sort(), `round ${round + 1} (${mode})`);
    t.deepEqual(rounds[round].dropped, refused ? [HOSTILE] : [], `round ${round + 1} (${mode}): dropped`);
    if (refused) t.regex(director, new RegExp(`round ${round + 1}: continuing without mallory: `), `round ${round + 1} (${mode}) names mallory`);
  }
  t.regex(director, /its update holds NaN or infinite values/);
  t.regex(director, /its update has \d+ values, the model \d+|does not have the model's tensors/);
  t.regex(director, /more than the \d+ accepted/, 'the oversized update is refused before it is fetched');
  t.regex(director, /times the median of the others' \(aggregation\.max_norm_ratio 10\)/);
  t.regex(director, /points against the cohort's/);
  const status = await fed.status();
  t.true(status.refused.filter((r) => r.sender.startsWith(HOSTILE)).reduce((n, r) => n + r.count, 0) >= 5000, 'the flood was refused and counted');
  t.true(Number.isFinite(final.test!.loss) && final.test!.roc_auc! > 0.5, `test AUC ${final.test!.roc_auc}`);
  await heartbeatsServed(t);
});

test.serial('under secure aggregation an envoy clips to the bound, and an unbounded update fails its round, not the experiment', async (t) => {
  // A tight bound: the honest envoys clip to it themselves; mallory's x100 cannot hide in the sum.
  const config = experiment('secagg-hostile', 2, { secagg: { enabled: true }, aggregation: { min_envoys: 2, max_update_norm: 1 } });
  const { final, events } = await fed.run(undefined, config);
  t.is(final.type, 'finished', final.message);
  const failed = events.filter((e) => e.type === 'round_failed');
  t.deepEqual(failed.map((e) => e.round), [0]);
  t.regex(failed[0].message!, /the unmasked aggregate's L2 norm [\d.]+ exceeds what updates within aggregation\.max_update_norm 1 can sum to/);
  t.deepEqual(events.filter((e) => e.type === 'round').map((e) => e.round), [1], 'round 2, all honest, is aggregated');
  t.regex(fed.log('a'), /clipped to the experiment's bound 1/);
  await heartbeatsServed(t);
});

test.serial('in secure sub-cohorts an unbounded update spoils only its own, and its sender is found and excluded', async (t) => {
  // Four envoys in sub-cohorts of two: the director learns two sums a round. mallory's x100 spoils its sum
  // every round; its partners change, so two refused rounds in a row single it out.
  const config = experiment('secagg-sub-cohorts', 4, {
    secagg: { enabled: true, sub_cohort_size: 2, exclude_after: 2 }, aggregation: { min_envoys: 1, max_update_norm: 1 },
  });
  const { final, events } = await fed.run(undefined, config);
  t.is(final.type, 'finished', final.message);
  t.deepEqual(events.filter((e) => e.type === 'round_failed').map((e) => e.message), [], 'no round fails');
  t.deepEqual(events.filter((e) => e.type === 'round').map((e) => e.round), [0, 1, 2, 3]);
  const director = fed.log('director');
  for (const round of [1, 2]) {
    t.regex(director, new RegExp(`round ${round}: sub-cohort [a-z, ]*mallory[a-z, ]* refused: the unmasked aggregate's L2 norm`), `round ${round}: mallory's sub-cohort is refused`);
  }
  t.regex(director, /round 2: mallory is excluded from the rest of 'secagg-sub-cohorts': its sub-cohort's secure sum was refused in 2 rounds in a row/);
  t.notRegex(director, /round \d: [abc] is excluded/, 'no honest envoy is excluded');
  // Rounds 3 and 4: one secure sum of the three honest envoys, without mallory.
  for (const round of [3, 4]) t.regex(director, new RegExp(`'secagg-sub-cohorts' round ${round}/4 \\(run \\w+\\): training on a, b, c\\n`));
  t.regex(director, /round 3: secure sum of a, b, c/);
  t.true(Number.isFinite(final.test!.loss));
  await heartbeatsServed(t);
});
