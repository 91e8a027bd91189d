/**
 * A provisioned envoy turned hostile, for tests only: a real envoy process (its kit, its shard, the real
 * training) that tampers with what it sends, round by round, as $SECFLOW_HOSTILE_PLAN says:
 *   {"<experiment>": ["nan", "honest", "scale100", ...]}   (one mode per round; missing rounds are honest)
 * Modes: honest, nan, inf, wrong_shape, oversized, scale100, sign_flip, inflated (claims 1,000,000 examples),
 * flood (an honest update, and 10,000 malformed messages at the director while it trains).
 * $SECFLOW_HOSTILE_REGISTER_EXAMPLES, if set, is the training-set size it registers with (a lie).
 *   node --import tsx test/adversary/hostile-envoy.ts --config envoy.yaml
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { pack } from 'msgpackr';
import type { Logger } from '../../ts/core/log.ts';
import type { TrainResult, TrainTask } from '../../ts/core/messages.ts';
import { subjects } from '../../ts/core/subjects.ts';
import type { FlatWeights } from '../../ts/core/weights.ts';
import { Envoy } from '../../ts/envoy/envoy.ts';
import { loadShard } from '../../ts/envoy/shard.ts';
import { loadEnvoyConfig } from '../../ts/envoy/start.ts';

export type HostileMode = 'honest' | 'nan' | 'inf' | 'wrong_shape' | 'oversized' | 'scale100' | 'sign_flip' | 'inflated' | 'flood';

class HostileEnvoy extends Envoy {
  constructor(config: ConstructorParameters<typeof Envoy>[0], shard: ConstructorParameters<typeof Envoy>[1], private readonly plan: Record<string, HostileMode[]>) {
    super(config, shard);
  }

  protected override async train(task: TrainTask, global: FlatWeights, log: Logger): Promise<{ delta: FlatWeights; result: TrainResult }> {
    const mode = this.plan[task.experiment]?.[task.round] ?? 'honest';
    if (mode === 'flood') void this.flood();
    const honest = await super.train(task, global, log);
    log.warn(`HOSTILE round ${task.round + 1}: ${mode}`);
    const { delta, result } = honest;
    const values = delta.values;
    const tampered = (v: Float32Array, manifest = delta.manifest) => ({ delta: { manifest, values: v }, result });
    switch (mode) {
      case 'honest': case 'flood': return honest;
      case 'nan': return tampered(values.map((v, i) => (i % 97 === 0 ? Number.NaN : v)));
      case 'inf': return tampered(values.map((v, i) => (i === 5 ? Number.POSITIVE_INFINITY : v)));
      case 'wrong_shape': return tampered(values.subarray(0, values.length >> 1));
      case 'oversized': return tampered(new Float32Array(values.length * 64).fill(0.001));
      case 'scale100': return tampered(values.map((v) => v * 100));
      case 'sign_flip': return tampered(values.map((v) => -v));
      case 'inflated': return { delta, result: { ...result, examples: 1_000_000 } };
    }
  }

  /** 10,000 malformed messages at the director's subjects this envoy may publish on. */
  private async flood(): Promise<void> {
    const bus = this.bus!;
    const f = bus.federation;
    const targets = [subjects.heartbeat(f, this.name), subjects.register(f, this.name), subjects.leave(f, this.name)];
    for (let i = 0; i < 10_000; i++) {
      const junk = i % 3 === 0 ? randomBytes(1 + (i % 500)) : pack({ v: 1, federation: f, from: this.name, kind: 'heartbeat', junk: i });
      bus.nc.publish(targets[i % targets.length], junk, i % 2 ? { reply: `_INBOX.${this.name}.flood${i}` } : undefined);
      if (i % 500 === 499) await bus.flush();
    }
  }
}

const { values: args } = parseArgs({ options: { config: { type: 'string' } } });
const config = loadEnvoyConfig(args.config!);
const plan = JSON.parse(process.env.SECFLOW_HOSTILE_PLAN ?? '{}') as Record<string, HostileMode[]>;
const shard = loadShard(config.name, config.shard);
const claimed = Number(process.env.SECFLOW_HOSTILE_REGISTER_EXAMPLES ?? 0);
if (claimed > 0) shard.descriptor = { ...shard.descriptor, counts: { ...shard.descriptor.counts, train: claimed } };
const envoy = new HostileEnvoy(config, shard, plan);
await envoy.start();
const stop = () => void envoy.stop().then(() => process.exit(0));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
