/**
 * The hospital's privacy ledger: every update this envoy releases, on its own disk, across rounds,
 * experiments and restarts. An entry is written (and fsync'd) before training starts, so a crash at any
 * point leaves the update counted; it is settled as released or not once the round is over. ε is the RDP
 * composition of every DP-SGD release not known to have stayed home, at the policy's δ; a task that would
 * take it past the budget is refused before any training.
 *
 * The file is JSON lines, appended only. A line cut short by a crash is reported and skipped.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { z } from 'zod';
import { RdpAccountant, type MechanismRun } from '../../core/privacy/rdp-accountant.ts';

const ChargeSchema = z.object({
  event: z.literal('charge'),
  seq: z.number().int(),
  time: z.string(),
  task_id: z.string(),
  experiment: z.string(),
  run_id: z.string(),
  round: z.number().int(),
  kind: z.enum(['round', 'probe']),
  examples: z.number().int(),
  batch: z.number().int(),
  steps: z.number().int(),
  secure: z.boolean(),
  defenses: z.array(z.string()),
  dp: z.object({ noise_multiplier: z.number(), sample_rate: z.number(), steps: z.number().int() }).strict().nullable(),
}).strict();
const SettleSchema = z.object({
  event: z.enum(['released', 'not_released']),
  seq: z.number().int(),
  time: z.string(),
  task_id: z.string(),
  reason: z.string().optional(),
}).strict();
const EntrySchema = z.discriminatedUnion('event', [ChargeSchema, SettleSchema]);
export type Charge = z.infer<typeof ChargeSchema>;
export type LedgerEntry = z.infer<typeof EntrySchema>;

export class PrivacyLedger {
  private readonly entries: LedgerEntry[] = [];
  readonly damaged: string[] = [];

  constructor(readonly path: string) {
    mkdirSync(dirname(path), { recursive: true });
    if (!existsSync(path)) return;
    const lines = readFileSync(path, 'utf8').split('\n');
    lines.forEach((line, i) => {
      if (!line.trim()) return;
      try {
        this.entries.push(EntrySchema.parse(JSON.parse(line)));
      } catch {
        this.damaged.push(`line ${i + 1}`);
      }
    });
  }

  all(): readonly LedgerEntry[] { return this.entries; }

  /** Charges still counted: released, or not known to have stayed home (a crash mid-round counts). */
  counted(experiment?: string): Charge[] {
    const stayedHome = new Set(this.entries.filter((e) => e.event === 'not_released').map((e) => e.task_id));
    return this.entries.filter((e): e is Charge => e.event === 'charge' && !stayedHome.has(e.task_id) && (!experiment || e.experiment === experiment));
  }

  /** ε of the counted DP releases (all, or one experiment's), at δ; with `extra`, as if it were released too. */
  epsilon(delta: number, options: { experiment?: string; extra?: MechanismRun } = {}): number {
    const runs: MechanismRun[] = this.counted(options.experiment).flatMap((c) => (c.dp ? [{ noiseMultiplier: c.dp.noise_multiplier, sampleRate: c.dp.sample_rate, steps: c.dp.steps }] : []));
    if (options.extra) runs.push(options.extra);
    if (!runs.length) return 0;
    return new RdpAccountant(runs).epsilon(delta).epsilon;
  }

  charge(c: Omit<Charge, 'event' | 'seq' | 'time'>): Charge {
    const entry: Charge = { event: 'charge', seq: this.nextSeq(), time: new Date().toISOString(), ...c };
    this.append(entry);
    return entry;
  }

  settle(taskId: string, released: boolean, reason?: string): void {
    this.append({ event: released ? 'released' : 'not_released', seq: this.nextSeq(), time: new Date().toISOString(), task_id: taskId, ...(reason ? { reason: reason.slice(0, 300) } : {}) });
  }

  private nextSeq(): number {
    return (this.entries.at(-1)?.seq ?? 0) + 1;
  }

  /** One line, written and forced to disk before anything else happens. */
  private append(entry: LedgerEntry): void {
    const fd = openSync(this.path, 'a', 0o600);
    try {
      writeSync(fd, `${JSON.stringify(entry)}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    this.entries.push(entry);
  }
}
