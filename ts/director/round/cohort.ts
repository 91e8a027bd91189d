/**
 * The envoys of one round and the stages they pass through together. Every workflow (plain or secure
 * aggregation) is a sequence of stages; a stage closes when every envoy still in the round has answered,
 * when it times out, or when the missing ones go silent (an envoy that vanishes mid-round must not stall
 * the federation). Sending the tasks, with a busy envoy asked again, is the first stage's opening.
 */
import { randomUUID } from 'node:crypto';
import { headerMismatch, kinds, type TaskHeader, type TrainTask } from '../../core/messages.ts';
import { progress, type Progress } from '../../core/progress.ts';
import { subjects } from '../../core/subjects.ts';
import type { Dropout, RoundContext } from './context.ts';

export interface Stage {
  name: string;
  timeoutMs: number;
  /** Sends what the envoys answer in this stage (the first stage's opening is the tasks themselves). */
  open?: () => Promise<unknown>;
  /** Local training happens in this stage: it gets a progress bar. */
  long?: boolean;
}

export class Cohort {
  readonly dropped: Dropout[] = [];
  private readonly active = new Set<string>();
  private readonly taskIds = new Map<string, string>();
  private stageName = '';
  private lastStage = false;
  private answered = new Set<string>();
  private stageDone: () => void = () => undefined;
  private bar?: Progress;
  private readonly stopWatching: () => void;

  constructor(private readonly ctx: RoundContext) {
    // Every participant is in before the first task goes out, so an early dropout cannot end a stage.
    for (const envoy of ctx.participants) { this.active.add(envoy); this.taskIds.set(envoy, randomUUID()); }
    this.stopWatching = ctx.registry.onGone((envoy) => this.drop(envoy, 'it went silent (no heartbeat) or left'));
  }

  get members(): string[] { return [...this.active]; }
  get stage(): string { return this.stageName; }
  has(envoy: string): boolean { return this.active.has(envoy); }
  size(): number { return this.active.size; }

  /** The header of every message of `envoy`'s task in this round. */
  header(envoy: string): TaskHeader {
    return { experiment: this.ctx.config.name, run_id: this.ctx.runId, round: this.ctx.round, task_id: this.taskIds.get(envoy) ?? '' };
  }

  /** Why a message from `envoy` is not wanted in the current stage, or undefined. */
  refusal(envoy: string, header: TaskHeader): string | undefined {
    if (!this.taskIds.has(envoy)) return `${envoy} is not part of round ${this.ctx.round + 1}`;
    const mismatch = headerMismatch(this.header(envoy), header);
    if (mismatch) return mismatch;
    if (!this.active.has(envoy)) return `${envoy} is no longer part of round ${this.ctx.round + 1}`;
    if (this.answered.has(envoy)) return `${envoy} already answered the ${this.stageName.replace('_', ' ')} stage`;
    return undefined;
  }

  /** `envoy` gave this stage's answer; the stage closes once everyone still in has. */
  answer(envoy: string): void {
    this.answered.add(envoy);
    this.progress();
    this.checkStage();
  }

  drop(envoy: string, reason: string, rule?: string): void {
    // An envoy that answered the last stage has delivered everything: going silent afterwards changes nothing.
    if (this.lastStage && this.answered.has(envoy)) return;
    if (!this.active.delete(envoy)) return;
    this.dropped.push({ envoy, reason, ...(rule ? { rule } : {}) });
    this.ctx.log.warn(`round ${this.ctx.round + 1}: continuing without ${envoy}: ${reason}`);
    this.progress();
    this.checkStage();
  }

  /** Runs the stages in order; the first one opens by sending every envoy its task. */
  async run(stages: Stage[], taskFor: (envoy: string) => TrainTask): Promise<void> {
    for (const [i, stage] of stages.entries()) {
      const open = i === 0 ? () => this.dispatch(taskFor) : stage.open;
      await this.runStage(stage, open, i === stages.length - 1);
    }
  }

  close(): void {
    this.stopWatching();
    this.bar?.stop();
    this.stageDone();
  }

  private async runStage(stage: Stage, open: (() => Promise<unknown>) | undefined, last: boolean): Promise<void> {
    this.stageName = stage.name;
    this.lastStage = last;
    this.answered = new Set();
    const done = new Promise<void>((resolve) => { this.stageDone = resolve; });
    if (stage.long) this.bar = progress(`round ${this.ctx.round + 1} updates`, this.active.size, this.ctx.log);
    const timer = setTimeout(() => this.members.filter((e) => !this.answered.has(e))
      .forEach((e) => this.drop(e, `no ${stage.name.replace('_', ' ')} within ${stage.timeoutMs / 1000} s`)), stage.timeoutMs);
    try {
      await open?.();
      this.checkStage();
      await done;
    } finally {
      clearTimeout(timer);
      this.bar?.stop();
      this.bar = undefined;
    }
  }

  /** Hands each envoy its task; a busy envoy is asked again while the round waits for it, any other refusal is final. */
  private async dispatch(taskFor: (envoy: string) => TrainTask): Promise<void> {
    const { bus, round } = this.ctx;
    await Promise.all(this.members.map(async (envoy) => {
      try {
        for (;;) {
          const ack = await bus.request(kinds.task, subjects.envoyTask(bus.federation, envoy), envoy, taskFor(envoy), 10_000,
            `sending the round ${round + 1} task to ${envoy}`);
          if (ack.accepted) return;
          if (!ack.retry_after_ms || !this.active.has(envoy)) return this.drop(envoy, `it declined the task: ${ack.reason}`, ack.rule);
          await new Promise((r) => setTimeout(r, ack.retry_after_ms));
          if (!this.active.has(envoy)) return;
        }
      } catch (error) {
        this.drop(envoy, (error as Error).message);
      }
    }));
  }

  private progress(): void {
    this.bar?.update(this.answered.size + this.dropped.length, `${this.dropped.length} dropped`);
  }

  private checkStage(): void {
    if (this.members.every((e) => this.answered.has(e))) this.stageDone();
  }
}
