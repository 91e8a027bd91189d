/**
 * 10,000 malformed, truncated, mistyped, forged and replayed messages at the director's and the envoys'
 * subjects while a round runs, from a provisioned participant turned hostile, on a server without subject
 * permissions (misconfigured or shared, so the hostile connection reaches every subject): no role crashes,
 * and every round's aggregate is bit for bit the one a clean run of the same experiment produced.
 */
import test from 'ava';
import { randomBytes, randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pack, unpack } from 'msgpackr';
import type { Msg } from 'nats';
import { ExperimentSchema } from '../ts/core/config/experiment.ts';
import { kinds } from '../ts/core/messages.ts';
import { subjects } from '../ts/core/subjects.ts';
import type { Envelope } from '../ts/core/trust/envelope.ts';
import type { Bus } from '../ts/core/transport/bus.ts';
import { startTestFederation } from './helpers/federation.ts';

const FUZZ_MESSAGES = 10_000;
const ENVOYS = ['a', 'b', 'c'];

/** What the hostile participant sends: each generator makes one message for a subject. */
type Generator = (subject: string) => Promise<Uint8Array> | Uint8Array;

function flip(bytes: Uint8Array): Uint8Array {
  const copy = Uint8Array.from(bytes);
  for (let i = 0; i < 1 + randomInt(4); i++) copy[randomInt(copy.length)] ^= 1 << randomInt(8);
  return copy;
}

/** Bodies of the right kinds with the wrong types, NaN, huge strings, missing and extra fields. */
const MISTYPED: unknown[] = [
  { envoy: 5, busy: 'yes' }, { envoy: 'a\r\nPUB secflow.testfed.envoy.a.task 1\r\nx', busy: false }, { protocol: 2, descriptor: null },
  { config: { name: 'x', rounds: -1 } }, { experiment: 'fuzzed', run_id: 'r', round: 0, task_id: 'not-a-uuid', envoy: 'mallory', ok: true, examples: NaN },
  { experiment: 'fuzzed', run_id: 'r', round: 1e308, task_id: '4f9a2c9e-3f5e-4b8e-9c1d-2a7b6e5d4c3b', envoy: 'mallory', ok: true, examples: 1, train: { loss: Infinity, steps: 1, seconds: 1 } },
  'x'.repeat(50_000), [1, 2, 3], null, { weights: new Uint8Array(1000) }, {},
];

test.serial('10,000 hostile messages during live rounds: no role crashes, every aggregate equals the clean run\'s', async (t) => {
  const fed = await startTestFederation({
    envoys: ENVOYS, idleEnvoys: ['mallory'], withoutPermissions: true, trainLimit: 900,
    // The production silence timeout (10 s), not the helper's quick 3 s: under 10,000 messages on a loaded 2-core
    // CI machine the director once went 3 s without reading an honest envoy's heartbeat (it kept training fine).
    heartbeat: { interval_seconds: 0.5, timeout_seconds: 10 },
    // Two local epochs: the barrage is paced, and on a loaded machine one epoch a round once ended the run at 9,100.
    experiment: { name: 'clean', rounds: 4, min_envoys_to_start: 3, model: { width: 4, seed: 1 }, training: { batch_size: 8, local_epochs: 2 } },
  });
  t.teardown(() => fed.stop());
  const mallory: Bus = await fed.connectAs('mallory');
  t.teardown(() => mallory.close());

  // Listen to everything (the server lets this connection): genuine envelopes to replay, cut and flip, and
  // the subjects of the running round.
  const captured: { subject: string; data: Uint8Array }[] = [];
  const liveSubjects = new Set<string>([
    ...ENVOYS.flatMap((e) => [subjects.register('testfed', e), subjects.heartbeat('testfed', e), subjects.leave('testfed', e), subjects.envoyTask('testfed', e), subjects.envoySecAgg('testfed', e)]),
    subjects.submit('testfed', 'mallory'), subjects.status('testfed', 'mallory'), subjects.heartbeat('testfed', 'mallory'), subjects.register('testfed', 'mallory'),
  ]);
  const listener = mallory.nc.subscribe('secflow.testfed.>');
  void (async () => {
    for await (const m of listener as AsyncIterable<Msg>) {
      if (captured.length < 2000 && m.data.length > 0) captured.push({ subject: m.subject, data: m.data });
      if (/\.(results|secagg)\.[a-c]$|\.blob\./.test(m.subject) && liveSubjects.size < 1000) liveSubjects.add(m.subject);
    }
  })();

  const clean = await fed.run();
  t.is(clean.final.type, 'finished', clean.final.message);
  t.true(captured.length > 20, `captured ${captured.length} genuine messages`);

  const generators: [string, Generator][] = [
    ['random bytes', () => randomBytes(randomInt(0, 3000))],
    ['a truncated genuine envelope', () => { const c = captured[randomInt(captured.length)].data; return c.subarray(0, randomInt(c.length)); }],
    ['a bit-flipped genuine envelope', () => flip(captured[randomInt(captured.length)].data)],
    ['a replayed genuine envelope', () => captured[randomInt(captured.length)].data],
    ['msgpack of the wrong shape', () => pack(MISTYPED[randomInt(MISTYPED.length)])],
    ['a forged envelope in another envoy\'s name', async (subject) => {
      const { bytes } = await mallory.trust.wrap({ subject, kind: 'heartbeat', to: 'director', seal: false }, pack({ envoy: 'a', busy: false }));
      const e = unpack(bytes) as Envelope;
      return pack({ ...e, from: ENVOYS[randomInt(3)] });
    }],
    ['a signed envelope of the wrong kind', async (subject) => (await mallory.trust.wrap({ subject, kind: ['task', 'result', 'event', 'submit', 'x'][randomInt(5)], to: 'director' }, pack({}))).bytes],
    ['a signed, sealed, mistyped message', async (subject) => {
      const to = subject.includes('.envoy.') ? subject.split('.')[3] : 'director';
      const kind = Object.values(kinds)[randomInt(Object.values(kinds).length)].kind;
      return (await mallory.trust.wrap({ subject, kind, to }, pack(MISTYPED[randomInt(MISTYPED.length)]))).bytes;
    }],
  ];

  const LARGE: [string, Generator] = ['a large random payload', () => randomBytes(randomInt(100_000, 900_000))];
  // Most of the barrage is made beforehand (signing and sealing take time), for the subjects known before
  // the run; messages for the run's own result, upload and blob subjects are made as those appear.
  const staticSubjects = [...liveSubjects].filter((s) => !/\.(results|secagg)\.[a-c]$|\.blob\./.test(s));
  const make = async (index: number, pool: string[]) => {
    // Large payloads are few (each takes the server and the receiver real time to move): one in 500.
    const [name, generate] = index % 500 === 499 ? LARGE : generators[index % generators.length];
    const subject = pool[randomInt(pool.length)];
    return { name, subject, data: await generate(subject) };
  };
  const prepared = await Promise.all(Array.from({ length: FUZZ_MESSAGES * 0.7 }, (_, i) => make(i, staticSubjects)));
  // The same experiment again, under fire from its first round to its last.
  const fuzzedConfig = ExperimentSchema.parse({ ...fed.config, name: 'fuzzed' });
  const sent = new Map<string, number>();
  let total = 0;
  let running = true;
  let atTheRun = 0;
  const fuzzing = (async () => {
    while (running && total < FUZZ_MESSAGES) {
      for (let i = 0; i < 100 && total < FUZZ_MESSAGES; i++, total++) {
        const fresh = /\.fuzzed\./;
        const live = [...liveSubjects].filter((s) => fresh.test(s));
        const message = total < prepared.length && (i % 3 || !live.length) ? prepared[total] : await make(total, live.length ? live : staticSubjects);
        // Half of them ask for a reply, which the receiver must be able to refuse (or fail to send) safely.
        mallory.nc.publish(message.subject, message.data, i % 2 ? { reply: `_INBOX.mallory.${randomInt(1e9)}` } : undefined);
        sent.set(message.name, (sent.get(message.name) ?? 0) + 1);
        if (fresh.test(message.subject)) atTheRun++;
      }
      await mallory.flush();
      // Paced over the whole run (a few thousand a second), so the barrage spans every round and stage.
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  const fuzzed = await fed.run(undefined, fuzzedConfig);
  running = false;
  await fuzzing;
  listener.unsubscribe();

  t.is(fuzzed.final.type, 'finished', fuzzed.final.message);
  t.true(total >= FUZZ_MESSAGES, `${total} hostile messages sent during the run (${JSON.stringify(Object.fromEntries(sent))})`);
  for (const role of [fed.director, ...fed.envoys.values()]) t.is(role.child.exitCode, null, `${role.name} is still running`);
  const rounds = fuzzed.events.filter((e) => e.type === 'round');
  t.deepEqual(rounds.map((e) => e.round), [0, 1, 2, 3], 'every round aggregated');
  t.deepEqual(rounds.map((e) => e.dropped), [[], [], [], []], 'nobody was dropped');
  t.true(sent.size === generators.length + 1, 'every kind of hostile message was sent');
  t.true(atTheRun > 100, `${atTheRun} at the running experiment's own result and upload subjects`);
  for (const round of ['round-0001', 'round-0002', 'round-0003', 'round-0004']) {
    const a = readFileSync(join(fed.runDir('clean'), 'checkpoints', `${round}.weights`));
    const b = readFileSync(join(fed.runDir('fuzzed'), 'checkpoints', `${round}.weights`));
    t.true(a.equals(b), `${round}: the aggregate under fire equals the clean run's`);
  }
  const status = await fed.status();
  const refused = status.refused.reduce((n, r) => n + r.count, 0);
  t.true(refused > 1000, `the director refused ${refused} messages`);
  t.true(status.envoys.every((e) => e.alive || e.name === 'mallory'), 'every envoy still counts as alive');
  for (const name of ['director', ...ENVOYS]) t.notRegex(fed.log(name), /subscription .* ended/, `${name}: no subscription died`);
});
