/**
 * The director: one long-lived process per federation. It keeps the envoy registry, accepts experiments
 * (one runs at a time, the rest queue), and resumes unfinished experiments when it restarts.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { NatsConnection, Subscription } from 'nats';
import { parse } from 'yaml';
import { ExperimentSchema, type ExperimentConfig } from '../core/config/experiment.ts';
import type { DirectorConfig } from '../core/config/director.ts';
import type { ImageDataset } from '../core/data/dataset.ts';
import { Logger } from '../core/log.ts';
import {
  encode, ExperimentEventSchema, HeartbeatReplySchema, HeartbeatSchema, LeaveSchema, PROTOCOL_VERSION,
  RegisterReplySchema, RegisterSchema, StatusReplySchema, SubmitExperimentSchema, SubmitReplySchema, type ExperimentEvent,
} from '../core/messages.ts';
import { subjects } from '../core/subjects.ts';
import { describeBackend } from '../core/tf.ts';
import { connectNats } from '../core/transport/connection.ts';
import { serve } from '../core/transport/rpc.ts';
import { z } from 'zod';
import { existingRun, runExperiment } from './experiment-runner.ts';
import { EnvoyRegistry } from './registry.ts';
import { RunFolder } from './run-folder.ts';

export class Director {
  private nc?: NatsConnection;
  private subs: Subscription[] = [];
  private sweepTimer?: NodeJS.Timeout;
  private readonly queue: ExperimentConfig[] = [];
  private running?: ExperimentConfig;
  private idle: Promise<void> = Promise.resolve();
  readonly registry: EnvoyRegistry;
  private readonly log = new Logger('director');

  constructor(private readonly config: DirectorConfig, private readonly testSet?: ImageDataset) {
    this.registry = new EnvoyRegistry(config.heartbeat.timeout_seconds * 1000);
  }

  get federation(): string { return this.config.federation; }

  async start(): Promise<void> {
    this.log.info(`federation '${this.federation}', ${describeBackend()}` +
      (this.testSet ? `, test set ${this.testSet.origin} (${this.testSet.labels.length} examples)` : ', no test set'));
    this.nc = await connectNats(this.config.nats.url, `director-${this.federation}`);
    const f = this.federation;
    this.subs.push(
      serve(this.nc, subjects.register(f), RegisterSchema, RegisterReplySchema, 'registration', this.log, (m) => this.onRegister(m)),
      serve(this.nc, subjects.heartbeat(f), HeartbeatSchema, HeartbeatReplySchema, 'heartbeat', this.log,
        (m) => ({ known: this.registry.heartbeat(m.envoy, m.busy) })),
      serve(this.nc, subjects.leave(f), LeaveSchema, null, 'leave notice', this.log, (m) => {
        this.log.info(`envoy ${m.envoy} left`);
        this.registry.leave(m.envoy);
      }),
      serve(this.nc, subjects.submit(f), SubmitExperimentSchema, SubmitReplySchema, 'experiment submission', this.log,
        (m) => this.onSubmit(m.config)),
      serve(this.nc, subjects.status(f), z.object({}).passthrough(), StatusReplySchema, 'status request', this.log, () => this.status()),
    );
    await this.nc.flush();
    this.sweepTimer = setInterval(() => {
      for (const gone of this.registry.sweep()) this.log.debug(`envoy ${gone} is silent`);
    }, 1000);
    this.resumeUnfinished();
  }

  async stop(): Promise<void> {
    clearInterval(this.sweepTimer);
    this.subs.forEach((s) => s.unsubscribe());
    await this.nc?.drain().catch(() => undefined);
  }

  /** Resolves when the queue is empty and nothing runs (used by tests and the demo). */
  whenIdle(): Promise<void> { return this.idle; }

  private onRegister(m: z.output<typeof RegisterSchema>) {
    if (m.protocol !== PROTOCOL_VERSION) {
      return { accepted: false, reason: `protocol ${m.protocol} is not supported (director speaks ${PROTOCOL_VERSION})` };
    }
    const d = m.descriptor;
    this.registry.register(d);
    this.log.info(`envoy ${d.envoy} joined: ${d.description} (${d.counts.train} train / ${d.counts.val} val, samples ${d.sample_shape.join('x')})`);
    return { accepted: true };
  }

  private onSubmit(config: ExperimentConfig) {
    const events = subjects.events(this.federation, config.name);
    if (this.running?.name === config.name || this.queue.some((q) => q.name === config.name)) {
      return { accepted: true, events_subject: events, reason: 'already queued or running; attached' };
    }
    let resumedFrom: number | undefined;
    try {
      resumedFrom = existingRun({ workspace: this.config.workspace, federation: this.federation }, config)?.next_round;
    } catch (error) {
      return { accepted: false, reason: (error as Error).message };
    }
    this.enqueue(config);
    return { accepted: true, events_subject: events, resumed_from_round: resumedFrom };
  }

  private enqueue(config: ExperimentConfig): void {
    this.queue.push(config);
    this.publish({ experiment: config.name, type: 'queued', rounds: config.rounds });
    if (!this.running) this.idle = this.drainQueue();
  }

  private async drainQueue(): Promise<void> {
    while (this.queue.length) {
      this.running = this.queue.shift()!;
      try {
        await runExperiment({
          nc: this.nc!, federation: this.federation, workspace: this.config.workspace, registry: this.registry,
          testSet: this.testSet, maxChunkBytes: this.config.nats.max_chunk_bytes, log: this.log.child(this.running.name),
          publish: (e) => this.publish(e),
        }, this.running);
      } catch (error) {
        this.log.error(`experiment '${this.running.name}' failed: ${(error as Error).message}`);
      }
      this.running = undefined;
    }
  }

  private publish(event: ExperimentEvent): void {
    if (this.nc && !this.nc.isClosed()) this.nc.publish(subjects.events(this.federation, event.experiment), encode(ExperimentEventSchema, event));
  }

  private status() {
    const now = Date.now();
    return {
      federation: this.federation,
      envoys: this.registry.all().map(([name, r]) => ({
        name, alive: this.registry.isAlive(name), busy: r.busy, last_seen_seconds_ago: (now - r.lastSeen) / 1000, descriptor: r.descriptor,
      })),
      running: this.running?.name,
      queued: this.queue.map((q) => q.name),
    };
  }

  /** Experiments left 'running' by a previous director process continue where they stopped. */
  private resumeUnfinished(): void {
    const root = join(this.config.workspace, this.federation);
    if (!existsSync(root)) return;
    for (const name of readdirSync(root)) {
      const folder = new RunFolder(join(root, name));
      const state = folder.readState();
      if (state?.status !== 'running') continue;
      try {
        const config = ExperimentSchema.parse(parse(readFileSync(join(folder.dir, 'config.yaml'), 'utf8')));
        this.log.info(`resuming unfinished experiment '${name}' after round ${state.next_round}`);
        this.enqueue(config);
      } catch (error) {
        this.log.warn(`cannot resume '${name}': ${(error as Error).message}`);
      }
    }
  }
}
