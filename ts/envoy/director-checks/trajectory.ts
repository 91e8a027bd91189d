/**
 * An honest trajectory: round 1's model is the one the experiment's architecture and seed give (built here,
 * not taken from the director), and every later global model is one the declared aggregation can reach from
 * the last one this envoy saw. Every update is clipped to the experiment's max_update_norm, and the director
 * holds every step to it whatever the strategy (a FedAvg of bounded updates never moves further; a median or a
 * server optimizer's step is scaled back to it), so a crafted model (trap weights, a model planted mid-run)
 * that jumps further is refused.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeWeights, encodeWeights, readWeights, type FlatWeights } from '../../core/weights.ts';
import { buildModel } from '../../core/model.ts';
import type { TrainTask } from '../../core/messages.ts';
import type { DirectorRefusal } from './cohort.ts';

interface Seen { round: number; bound: number; architecture: string; weights: Float32Array }

/** Float32 sums and a secure sum's quantization leave a little slack; crafted models are far beyond it. */
const SLACK = 1e-3;

export class Trajectory {
  private readonly seen = new Map<string, Seen>();

  /** `dir`: where the last model of each experiment is kept, so a restarted envoy goes on checking from it (not from round 1). */
  constructor(private readonly dir?: string) {}

  problem(task: TrainTask, global: FlatWeights): DirectorRefusal | undefined {
    if (task.round === 0) return this.initialProblem(task, global);
    // Joined mid-run (or restarted): the model must still be reachable from the experiment's own initial model.
    const last = this.lastSeen(task.experiment) ?? this.initial(task);
    const architecture = JSON.stringify(task.model);
    if (architecture !== last.architecture) return { rule: 'honest_director.trajectory', reason: 'the model architecture changed in the middle of the experiment' };
    if (task.max_update_norm !== last.bound) {
      return { rule: 'honest_director.trajectory', reason: `the experiment's bound changed from ${last.bound} to ${task.max_update_norm} in the middle of the run` };
    }
    if (task.round < last.round) return { rule: 'honest_director.trajectory', reason: `round ${task.round + 1} comes after round ${last.round + 1}` };
    const moved = distance(global.values, last.weights);
    const reach = (task.round - last.round) * last.bound + SLACK * (1 + norm(last.weights));
    if (!(moved <= reach)) {
      return {
        rule: 'honest_director.trajectory',
        reason: `the global model moved ${moved.toPrecision(4)} (L2) since round ${last.round + 1}, beyond the ${reach.toPrecision(4)} that ` +
          `${task.round - last.round} round(s) of updates bounded by max_update_norm ${last.bound} can reach`,
      };
    }
    return undefined;
  }

  /** The model this envoy trained on in `task`'s round: the next rounds must be reachable from it. */
  record(task: TrainTask, global: FlatWeights): void {
    const seen = { round: task.round, bound: task.max_update_norm, architecture: JSON.stringify(task.model), weights: global.values };
    this.seen.set(task.experiment, seen);
    if (!this.dir) return;
    // Written whole, then renamed: a crash leaves the previous record, never half of one.
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const file = this.fileOf(task.experiment);
    writeFileSync(`${file}.tmp`, encodeWeights(global), { mode: 0o600 });
    writeFileSync(`${file}.json.tmp`, JSON.stringify({ round: seen.round, bound: seen.bound, architecture: seen.architecture }), { mode: 0o600 });
    renameSync(`${file}.tmp`, `${file}.weights`);
    renameSync(`${file}.json.tmp`, `${file}.json`);
  }

  private lastSeen(experiment: string): Seen | undefined {
    const known = this.seen.get(experiment);
    if (known || !this.dir) return known;
    const file = this.fileOf(experiment);
    if (!existsSync(`${file}.json`) || !existsSync(`${file}.weights`)) return undefined;
    try {
      const meta = JSON.parse(readFileSync(`${file}.json`, 'utf8')) as Omit<Seen, 'weights'>;
      const seen = { ...meta, weights: decodeWeights(readFileSync(`${file}.weights`)).values };
      this.seen.set(experiment, seen);
      return seen;
    } catch {
      return undefined; // unreadable: checked from the initial model instead, which is looser but still a bound
    }
  }

  private fileOf(experiment: string): string {
    // Experiment names are subject tokens (core/names.ts): safe as file names.
    return join(this.dir!, experiment);
  }

  /** Round 1's model as the experiment's architecture and seed give it, as if this envoy had seen it. */
  private initial(task: TrainTask): Seen {
    return { round: 0, bound: task.max_update_norm, architecture: JSON.stringify(task.model), weights: initialWeights(task) };
  }

  private initialProblem(task: TrainTask, global: FlatWeights): DirectorRefusal | undefined {
    const own = initialWeights(task);
    if (own.length !== global.values.length) {
      return { rule: 'honest_director.initial_model', reason: `round 1's model has ${global.values.length} weights, the experiment's architecture ${own.length}` };
    }
    const moved = distance(global.values, own);
    // The same seeded initializers on another backend (a GPU envoy) may round differently, never by this much.
    if (!(moved <= SLACK * (1 + norm(own)))) {
      return { rule: 'honest_director.initial_model', reason: `round 1's model is not the one the experiment's architecture and seed give (L2 distance ${moved.toPrecision(4)})` };
    }
    return undefined;
  }

}

function initialWeights(task: TrainTask): Float32Array {
  const model = buildModel(task.model);
  try {
    return readWeights(model).values;
  } finally {
    model.dispose();
  }
}

function distance(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Infinity;
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
  return Math.sqrt(s);
}

function norm(a: Float32Array): number {
  let s = 0;
  for (const v of a) s += v * v;
  return Math.sqrt(s);
}
