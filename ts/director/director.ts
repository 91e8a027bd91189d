/**
 * The director: one long-lived process per federation. It keeps the envoy registry, accepts experiments
 * (one runs at a time, the rest queue), and resumes unfinished experiments when it restarts.
 *
 * It hears only from provisioned participants (trust/): registrations, heartbeats and leave notices from
 * envoys, each about itself; submissions and status requests from data scientists. Experiment events go to
 * the data scientists following the experiment, sealed to each.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Subscription } from 'nats';
import { parse } from 'yaml';
import { ExperimentSchema, type ExperimentConfig } from '../core/config/experiment.ts';
import type { DirectorConfig } from '../core/config/director.ts';
import type { ImageDataset } from '../core/data/dataset.ts';
import { Logger } from '../core/log.ts';
import { kinds, PROTOCOL_VERSION, type ExperimentEvent, type ShardDescriptor, type StatusReply } from '../core/messages.ts';
import { subjects } from '../core/subjects.ts';
import { describeBackend } from '../core/tf.ts';
import { INSECURE_DIRECTOR_NAME, type Peer } from '../core/trust/index.ts';
import type { Bus } from '../core/transport/bus.ts';
import { connectBus } from '../core/transport/connection.ts';
import { existingRun, runExperiment } from './experiment-runner.ts';
import { EnvoyRegistry } from './registry.ts';
import { RunFolder } from './run-folder.ts';

const RECENT_EVENTS = 500;

export class Director {
  private bus?: Bus;
  private subs: Subscription[] = [];
  private sweepTimer?: NodeJS.Timeout;
  private readonly queue: ExperimentConfig[] = [];
  private running?: ExperimentConfig;
  private idle: Promise<void> = Promise.resolve();
  readonly registry: EnvoyRegistry;
  private readonly log = new Logger('director');
  /** The latest experiment events, newest last, for the dashboard (what followers were sent). */
  private readonly recent: ExperimentEvent[] = [];

  constructor(private readonly config: DirectorConfig, private readonly testSet?: ImageDataset) {
    this.registry = new EnvoyRegistry(config.heartbeat.timeout_seconds * 1000);
  }

  get federation(): string { return this.config.federation; }
  get workspace(): string { return this.config.workspace; }
  /** Whether the federation has identities (a kit), not the explicit insecure opt-out. */
  get secure(): boolean { return !!this.bus?.trust.secure; }

  async start(): Promise<void> {
    this.bus = await connectBus({ url: this.config.nats.url, kit: this.config.kit, insecure: this.config.insecure, name: INSECURE_DIRECTOR_NAME, federation: this.federation },
      `director-${this.federation}`, this.log);
    const { trust } = this.bus;
    if (trust.federation !== this.federation || (trust.secure && trust.role !== 'director')) {
      await this.bus.close();
      throw new Error(`the kit is ${trust.self}'s (${trust.role}) in federation '${trust.federation}', not a director of '${this.federation}'`);
    }
    this.log.info(`federation '${this.federation}', ${describeBackend()}` +
      (this.testSet ? `, test set ${this.testSet.origin} (${this.testSet.labels.length} examples)` : ', no test set'));
    this.log.info(`protection: ${trust.describe()}`);
    const f = this.federation;
    const bus = this.bus;
    this.subs.push(
      bus.serve(kinds.register, subjects.register(f, '*'), (m, sender) => this.onRegister(m.protocol, m.descriptor, sender), { senderInSubject: true }),
      bus.serve(kinds.heartbeat, subjects.heartbeat(f, '*'), (m, sender) => ({ known: this.aboutItself(m.envoy, sender) && this.registry.heartbeat(m.envoy, m.busy) }),
        { senderInSubject: true }),
      bus.serve(kinds.leave, subjects.leave(f, '*'), (m, sender) => {
        if (!this.aboutItself(m.envoy, sender)) return;
        this.log.info(`envoy ${m.envoy} left`);
        this.registry.leave(m.envoy);
      }, { senderInSubject: true }),
      bus.serve(kinds.submit, subjects.submit(f, '*'), (m, sender) => this.onSubmit(m.config, sender), { senderInSubject: true }),
      bus.serve(kinds.status, subjects.status(f, '*'), () => this.status(), { senderInSubject: true }),
    );
    await bus.flush();
    this.sweepTimer = setInterval(() => {
      for (const gone of this.registry.sweep()) this.log.debug(`envoy ${gone} is silent`);
      // A revoked envoy leaves the federation at once, whatever it still sends.
      for (const [name, record] of this.registry.all()) {
        if (!record.left && !trust.admits(name, 'envoy')) { this.log.warn(`envoy ${name} is no longer in the roster: removed`); this.registry.leave(name); }
      }
    }, 1000);
    this.resumeUnfinished();
  }

  async stop(): Promise<void> {
    clearInterval(this.sweepTimer);
    this.subs.forEach((s) => s.unsubscribe());
    await this.bus?.drain();
  }

  /** Resolves when the queue is empty and nothing runs (used by tests and the demo). */
  whenIdle(): Promise<void> { return this.idle; }

  /** An envoy speaks for itself only: a message naming another envoy is refused and counted. */
  private aboutItself(envoy: string, sender: Peer): boolean {
    if (envoy === sender.name) return true;
    this.bus!.trust.rejections.record(sender.name, 'speaks for another envoy', `about ${envoy}`);
    return false;
  }

  private onRegister(protocol: number, d: ShardDescriptor, sender: Peer) {
    if (protocol !== PROTOCOL_VERSION) {
      return { accepted: false, reason: `protocol ${protocol} is not supported (director speaks ${PROTOCOL_VERSION})` };
    }
    if (!this.aboutItself(d.envoy, sender)) return { accepted: false, reason: `${sender.name} cannot register ${d.envoy}` };
    this.registry.register(d);
    this.log.info(`envoy ${d.envoy} joined: ${d.description.slice(0, 200)} (${d.counts.train} train / ${d.counts.val} val, samples ${d.sample_shape.join('x')})`);
    return { accepted: true };
  }

  private onSubmit(config: ExperimentConfig, sender: Peer) {
    const folder = RunFolder.for(this.config.workspace, this.federation, config.name);
    if (this.running?.name === config.name || this.queue.some((q) => q.name === config.name)) {
      folder.addFollower(sender.name);
      return { accepted: true, reason: 'already queued or running; attached' };
    }
    let resumedFrom: number | undefined;
    try {
      resumedFrom = existingRun({ workspace: this.config.workspace, federation: this.federation }, config)?.next_round;
    } catch (error) {
      return { accepted: false, reason: (error as Error).message };
    }
    folder.addFollower(sender.name);
    this.log.info(`experiment '${config.name}' submitted by ${sender.name}`);
    this.enqueue(config);
    return { accepted: true, resumed_from_round: resumedFrom };
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
          bus: this.bus!, workspace: this.config.workspace, registry: this.registry,
          testSet: this.testSet, maxChunkBytes: this.config.nats.max_chunk_bytes, log: this.log.child(this.running.name),
          publish: (e) => this.publish(e),
        }, this.running);
      } catch (error) {
        this.log.error(`experiment '${this.running.name}' failed: ${(error as Error).message}`);
      }
      this.running = undefined;
    }
  }

  /** Each event goes to every data scientist following the experiment, sealed to each. */
  private publish(event: ExperimentEvent): void {
    this.recent.push(event);
    if (this.recent.length > RECENT_EVENTS) this.recent.shift();
    const bus = this.bus;
    if (!bus || bus.isClosed()) return;
    const followers = RunFolder.for(this.config.workspace, this.federation, event.experiment).readFollowers();
    for (const scientist of followers) {
      if (!bus.trust.admits(scientist, 'scientist')) continue;
      void bus.publish(kinds.event, subjects.events(this.federation, event.experiment, scientist), scientist, event);
    }
  }

  /** The latest experiment events (at most RECENT_EVENTS), oldest first. */
  recentEvents(): readonly ExperimentEvent[] {
    return this.recent;
  }

  /** What `secflow status` and the dashboard show: envoys, the queue, refused messages, protection. */
  status(): StatusReply {
    const now = Date.now();
    const { trust } = this.bus!;
    return {
      federation: this.federation,
      envoys: this.registry.all().map(([name, r]) => ({
        name, alive: this.registry.isAlive(name), busy: r.busy, last_seen_seconds_ago: (now - r.lastSeen) / 1000, descriptor: r.descriptor,
        refused_tasks: r.refusals, ...(r.lastRefusal ? { last_refusal: r.lastRefusal } : {}),
      })),
      running: this.running?.name,
      queued: this.queue.map((q) => q.name),
      refused: trust.rejections.all().slice(0, 200),
      protection: trust.describe(),
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

export type { ShardDescriptor };
