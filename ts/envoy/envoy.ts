/**
 * The envoy: runs at a hospital next to its data. It registers its shard descriptor with the director,
 * keeps a heartbeat, and for each training task trains the global model locally and sends back only the
 * weight update (local - global). Images never leave this process.
 */
import { createHash } from 'node:crypto';
import type { Subscription } from 'nats';
import type { EnvoyConfig } from '../core/config/envoy.ts';
import { Logger } from '../core/log.ts';
import { headerOf, kinds, PROTOCOL_VERSION, type TrainResult, type TrainTask } from '../core/messages.ts';
import { truthPath, writeAuditTruth } from '../core/audit.ts';
import { subset } from '../core/data/dataset.ts';
import { loadNative } from '../core/secagg/native.ts';
import { buildModel, type LayersModel } from '../core/model.ts';
import { progress, type Progress } from '../core/progress.ts';
import { subjects } from '../core/subjects.ts';
import { describeBackend, deviceFallback } from '../core/tf.ts';
import { evaluate, predictPositive, trainLocal, type DpSteps } from '../core/training.ts';
import { metricsOfScores } from '../core/metrics.ts';
import { operatingPoints } from '../core/operating-points.ts';
import type { Bus } from '../core/transport/bus.ts';
import { chunkBytesFor, fetchBlob } from '../core/transport/blobs.ts';
import { connectBus } from '../core/transport/connection.ts';
import { decodeWeights, readWeights, writeWeights, type FlatWeights } from '../core/weights.ts';
import { resolvePolicy } from '../core/config/privacy.ts';
import { PrivacyGuard } from './policy/index.ts';
import { CHECK_BATCH, DirectorChecks, DirectorRefused } from './director-checks/index.ts';
import { SecureRelease, releaseFor, type ReceivedModel, type TrainedUpdate } from './release/index.ts';
import { failedResult, sendResult } from './release/result.ts';
import { pruneUpdate } from './pruning.ts';
import { clipToNorm, finiteOrNothing } from './update-bounds.ts';
import type { Shard } from './shard.ts';

export class Envoy {
  protected bus?: Bus;
  /** Who may send this envoy tasks: the roster's director (the bus checks signatures against it). */
  private director = '';
  private subs: Subscription[] = [];
  private heartbeatTimer?: NodeJS.Timeout;
  private busy = false;
  private model?: { key: string; model: LayersModel };
  private readonly log: Logger;
  private stopped = false;
  /** The hospital's privacy policy and its persistent ledger (policy/): the last word on every task. */
  private readonly guard: PrivacyGuard;
  /** The secure-aggregation release in progress, which stage messages from the director are routed to. */
  private secure?: SecureRelease;
  /** What this envoy checks of its director before anything derived from its data leaves (director-checks/). */
  private checks?: DirectorChecks;
  /** Experiments whose final model this envoy evaluated (acceptEvaluation). */
  private readonly evaluated = new Set<string>();

  constructor(private readonly config: EnvoyConfig, private readonly shard: Shard) {
    this.log = new Logger(`envoy ${config.name}`);
    this.guard = new PrivacyGuard(resolvePolicy(config.privacy), config.privacy.ledger);
  }

  get name(): string { return this.config.name; }

  async start(): Promise<void> {
    this.log.info(`${describeBackend()}; shard: ${this.shard.descriptor.description}`);
    if (deviceFallback) this.log.warn(deviceFallback);
    const bus = await connectBus({ url: this.config.nats.url, kit: this.config.kit, insecure: this.config.insecure, name: this.name, federation: this.config.federation },
      `envoy-${this.name}`, this.log);
    this.bus = bus;
    const { trust } = bus;
    if (trust.self !== this.name || trust.federation !== this.config.federation || (trust.secure && trust.role !== 'envoy')) {
      await bus.close();
      throw new Error(`the kit is ${trust.self}'s (${trust.role}) in federation '${trust.federation}', not envoy ${this.name}'s of '${this.config.federation}'`);
    }
    this.director = trust.director();
    this.checks = new DirectorChecks(trust, this.name, `${this.config.privacy.ledger}.models`);
    this.log.info(`protection: ${trust.describe()}; tasks accepted from ${this.director} only`);
    this.describePolicy();
    const f = this.config.federation;
    this.subs.push(bus.serve(kinds.task, subjects.envoyTask(f, this.name), (task) => this.acceptTask(task)));
    this.subs.push(bus.serve(kinds.secaggDelivery, subjects.envoySecAgg(f, this.name),
      (d) => (this.secure?.matches(d) ? this.secure.deliver(d) : { accepted: false, reason: `no secure aggregation task of round ${d.round + 1} here` })));
    await this.registerUntilAccepted();
    this.heartbeatTimer = setInterval(() => void this.heartbeat(), this.config.heartbeat.interval_seconds * 1000);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.heartbeatTimer);
    const bus = this.bus;
    if (!bus || bus.isClosed()) return;
    try {
      await bus.publish(kinds.leave, subjects.leave(this.config.federation, this.name), this.director, { envoy: this.name });
      await bus.flush();
    } catch { /* leaving is best effort */ }
    this.subs.forEach((s) => s.unsubscribe());
    await bus.drain();
  }

  /** The director may start after the envoy: keep asking until it answers. */
  private async registerUntilAccepted(): Promise<void> {
    for (let attempt = 0; !this.stopped; attempt++) {
      try {
        const reply = await this.bus!.request(kinds.register, subjects.register(this.config.federation, this.name), this.director,
          { protocol: PROTOCOL_VERSION, descriptor: this.shard.descriptor }, 5000);
        if (!reply.accepted) throw new Error(`director refused registration: ${reply.reason}`);
        this.log.info(`registered with the director (${this.shard.descriptor.counts.train} training, ${this.shard.descriptor.counts.val} validation examples)`);
        return;
      } catch (error) {
        if ((error as Error).message.startsWith('director refused')) throw error;
        if (attempt % 5 === 0) this.log.info(`waiting for the director: ${(error as Error).message}`);
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }

  private async heartbeat(): Promise<void> {
    try {
      const reply = await this.bus!.request(kinds.heartbeat, subjects.heartbeat(this.config.federation, this.name), this.director,
        { envoy: this.name, busy: this.busy }, 3000);
      // A restarted director has forgotten us: register again.
      if (!reply.known) await this.registerUntilAccepted();
    } catch (error) {
      this.log.debug((error as Error).message);
    }
  }

  private acceptTask(task: TrainTask) {
    if (task.weights.owner !== this.director) return { accepted: false, reason: `the task's model is offered by ${task.weights.owner}, not by the director` };
    if (this.busy) return { accepted: false, reason: `envoy ${this.name} is busy with another task`, retry_after_ms: 1000 };
    const [h, w] = task.model.input_size;
    const [sh, sw, sc] = this.shard.descriptor.sample_shape;
    if (h !== sh || w !== sw || task.model.channels !== sc) {
      return { accepted: false, reason: `model input ${h}x${w}x${task.model.channels} does not match this shard's ${sh}x${sw}x${sc}` };
    }
    if (task.evaluate) return this.acceptEvaluation(task);
    // The hospital's rules come before its data is touched.
    const refusal = this.guard.admit(task, this.shard.descriptor.counts.train);
    if (refusal) {
      this.log.warn(`refused ${task.experiment} round ${task.round + 1}${task.audit?.kind === 'probe' ? ' (probe)' : ''} by privacy policy ${refusal.rule}: ${refusal.reason}`);
      return { accepted: false, reason: `privacy policy ${refusal.rule}: ${refusal.reason}`, rule: refusal.rule };
    }
    const cheat = this.checks!.taskProblem(task);
    if (cheat) {
      this.log.warn(`refused ${task.experiment} round ${task.round + 1}: ${cheat.rule}: ${cheat.reason}`);
      return { accepted: false, reason: `${cheat.rule}: ${cheat.reason}`, rule: cheat.rule };
    }
    if (task.secagg) {
      try {
        loadNative();
      } catch (error) {
        return { accepted: false, reason: `envoy ${this.name}: ${(error as Error).message}` };
      }
    }
    this.busy = true;
    // In the ledger before training: a crash from here on leaves the update counted.
    this.guard.charge(task, this.shard.descriptor.counts.train);
    void this.runTask(task)
      .then((released) => this.guard.settle(task, released, released ? undefined : 'the round ended before the update left'))
      .catch((error) => this.log.error(`task ${task.task_id} failed: ${(error as Error).message}`))
      .finally(() => { this.busy = false; });
    return { accepted: true };
  }

  /**
   * An evaluation task trains nothing and releases no update, so the privacy policy's update rules do not apply;
   * the checks of the director do (the model must be reachable from the last one trained on).
   */
  private acceptEvaluation(task: TrainTask) {
    if (!this.shard.val) return { accepted: false, reason: `envoy ${this.name} has no validation split to evaluate on` };
    // Each evaluation answers 78 counts about the validation images; a director asking again and again, with
    // models of its choosing, would turn that into an oracle. One per experiment is what the threshold needs.
    if (this.evaluated.has(task.experiment)) {
      const rule = 'honest_director.evaluation_once';
      this.log.warn(`refused a second evaluation of ${task.experiment}: ${rule}`);
      return { accepted: false, reason: `${rule}: ${task.experiment}'s final model was evaluated here already`, rule };
    }
    this.evaluated.add(task.experiment);
    this.busy = true;
    void this.runEvaluation(task)
      .catch((error) => this.log.error(`evaluation ${task.task_id} failed: ${(error as Error).message}`))
      .finally(() => { this.busy = false; });
    return { accepted: true };
  }

  /** The model on this envoy's validation split: metrics and the ROC curve at the fixed grid, nothing else. */
  private async runEvaluation(task: TrainTask): Promise<void> {
    const log = this.log.child(`${task.experiment} evaluation`);
    let result: TrainResult;
    try {
      const { weights } = await this.receiveModel(task, log);
      const model = this.modelFor(task);
      writeWeights(model, weights);
      const val = this.shard.val!;
      const p = predictPositive(model, val);
      result = {
        ...headerOf(task), envoy: this.name, ok: true, examples: 0,
        val_global: finiteOrNothing(metricsOfScores(p, val.labels), 'val_global', log),
        operating_points: operatingPoints(p, val.labels),
      };
      log.info(`evaluated the final model on ${val.labels.length} validation images`);
    } catch (error) {
      result = failedResult(task, this.name, error as Error);
    }
    await sendResult({ bus: this.bus!, director: this.director, envoy: this.name, log }, task, result);
  }

  private describePolicy(): void {
    const p = this.guard.policy;
    if (p.preset === 'open') {
      this.log.warn('PRIVACY POLICY OPEN: this envoy trains whatever the director sends (probes, single images, no secure aggregation). Research data only.');
      return;
    }
    const budget = Number.isFinite(p.dp.epsilonBudget) ? `ε budget ${p.dp.epsilonBudget} at δ ${p.dp.delta} (${this.guard.spent().toFixed(3)} spent)` : 'no ε budget';
    this.log.info(`privacy policy: updates from ≥ ${p.minExamples} images in batches ≥ ${p.minBatchSize}, ≤ ${p.maxLocalSteps} steps; ` +
      `${p.requireSecureAggregation ? `secure aggregation among ≥ ${p.minCohort} hospitals, this one ≤ ${100 * p.maxWeightShare}% of the sum` : 'secure aggregation optional'}; ` +
      `defenses: ${p.requireOneOf.map((set) => set.join(' + ')).join(' or ') || 'any'}; ${budget}; probes ${p.allowProbes ? 'allowed' : 'refused'}; ledger ${p.ledger}`);
    if (this.guard.ledger.damaged.length) this.log.warn(`privacy ledger: skipped unreadable ${this.guard.ledger.damaged.join(', ')} (a write cut short by a crash)`);
  }

  /** Trains and releases the update the way the task says (release/); true when it left this process. */
  private async runTask(task: TrainTask): Promise<boolean> {
    const log = this.log.child(`${task.experiment} r${task.round + 1}`);
    const release = releaseFor(task, {
      bus: this.bus!, envoy: this.name, director: this.director, log, chunkBytes: chunkBytesFor(this.bus!, this.config.nats.max_chunk_bytes),
      checks: this.checks!, minCohort: this.guard.policy.minCohort,
    });
    if (release instanceof SecureRelease) this.secure = release;
    try {
      return await release.run(() => this.receiveModel(task, log), async (model) => {
        const trained = await this.train(task, model.weights, log);
        this.checks!.trained(task, model.weights);
        return trained;
      });
    } finally {
      if (this.secure === release) this.secure = undefined;
    }
  }

  /** The round's global model, fetched and checked: a model the director could not honestly send is refused. */
  private async receiveModel(task: TrainTask, log: Logger): Promise<ReceivedModel> {
    const bytes = await fetchBlob(this.bus!, task.weights);
    const weights = decodeWeights(bytes);
    const refusal = this.checks!.modelProblem(task, weights) ?? this.craftedWeightsProblem(task, weights, log);
    if (refusal) {
      log.warn(`refused the model of round ${task.round + 1}: ${refusal.rule}: ${refusal.reason}`);
      throw new DirectorRefused(refusal);
    }
    // Of the plaintext: AES-GCM does not commit to its key, so the ciphertext's hash could name two models.
    return { weights, sha256: createHash('sha256').update(bytes).digest('hex') };
  }

  /**
   * The crafted-weights check on a batch of this hospital's own images: always the same 32 (its limit is
   * calibrated on batches of 32; the question is whether the model singles images out, whatever the task's batch).
   * Group-norm models (the DP recipe) are not measured: the functional twin has no group norm, and DP-SGD
   * clips every image's gradient, which bounds its share by construction.
   */
  private craftedWeightsProblem(task: TrainTask, weights: FlatWeights, log: Logger) {
    if (task.model.normalization === 'group') return undefined;
    const model = this.modelFor(task);
    writeWeights(model, weights);
    const size = Math.min(this.shard.train.labels.length, CHECK_BATCH);
    if (size < 2) return undefined;
    const refusal = this.checks!.craftedWeightsProblem(task, model, subset(this.shard.train, [...Array(size).keys()]));
    if (!refusal) log.debug('crafted-weights check passed');
    return refusal;
  }

  /** Local training on the task's global model: the delta, and a result carrying metrics only. */
  protected async train(task: TrainTask, global: FlatWeights, log: Logger): Promise<TrainedUpdate> {
    const model = this.modelFor(task);
    writeWeights(model, global);
    const valGlobal = this.shard.val ? evaluate(model, this.shard.val) : undefined;
    let bar: Progress | undefined;
    const trained = await trainLocal(model, this.shard.train, {
      config: task.training,
      seedSalt: task.round * 1009 + hashOf(this.name),
      onProgress: (p) => {
        bar ??= progress(`${this.name} round ${task.round + 1} training`, p.steps, log);
        bar.update(p.step, `loss ${p.loss.toFixed(4)}`);
      },
    });
    bar?.stop();
    const valLocal = this.shard.val ? evaluate(model, this.shard.val) : undefined;
    const raw = difference(readWeights(model), global);
    // Nothing non-finite leaves: a diverged run fails its task (and the round goes on without it).
    if (!Number.isFinite(trained.meanLoss) || !raw.values.every(Number.isFinite)) {
      throw new Error(`training diverged (loss ${trained.meanLoss}): the update holds NaN or infinite values and is not sent`);
    }
    const delta = this.defend(raw, task, log);
    log.info(`trained ${trained.steps} steps on ${trained.examples} examples in ${trained.seconds.toFixed(1)} s, loss ${trained.meanLoss.toFixed(4)}`);
    if (task.audit) this.recordAuditTruth(task, trained.trainedIndices, log);
    const result: TrainResult = {
      ...headerOf(task), envoy: this.name, ok: true, examples: trained.examples,
      train: { loss: trained.meanLoss, steps: trained.steps, seconds: trained.seconds },
      val_global: finiteOrNothing(valGlobal, 'val_global', log), val_local: finiteOrNothing(valLocal, 'val_local', log),
      privacy: trained.dp && this.account(task, trained.dp, log),
    };
    return { delta, result };
  }

  /** ε of this experiment's DP releases so far (from the ledger, this round's included), and the hospital's lifetime total. */
  private account(task: TrainTask, dp: DpSteps, log: Logger) {
    const epsilon = this.guard.ledger.epsilon(task.training.dp.delta, { experiment: task.experiment });
    log.info(`DP-SGD: (epsilon ${epsilon.toFixed(3)}, delta ${task.training.dp.delta}) spent so far in ${task.experiment}; ` +
      `${this.guard.spent().toFixed(3)} over every experiment (budget ${this.guard.policy.dp.epsilonBudget})`);
    return { epsilon, delta: task.training.dp.delta, noise_multiplier: dp.noiseMultiplier, sample_rate: dp.sampleRate, steps: dp.steps };
  }

  /** Defenses applied to the update itself, after training and before it leaves this process. */
  private defend(delta: FlatWeights, task: TrainTask, log: Logger): FlatWeights {
    let update = delta;
    if (task.training.pruning.enabled) {
      const pruned = pruneUpdate(update, task.training.pruning.keep_fraction);
      log.debug(`pruning kept ${pruned.report.kept} of ${pruned.report.total} update entries`);
      update = pruned.update;
    }
    // The experiment's bound on any one envoy's influence: clip here, so the director never has to refuse us.
    const clipped = clipToNorm(update, task.max_update_norm);
    if (clipped.scale < 1) log.warn(`update L2 norm ${clipped.norm.toFixed(3)} clipped to the experiment's bound ${task.max_update_norm}`);
    return clipped.update;
  }

  /** Auditing: which images this update was trained on, written here and never sent. */
  private recordAuditTruth(task: TrainTask, indices: number[], log: Logger): void {
    const kind = task.audit!.kind;
    const path = truthPath(this.config.audit_dir, this.config.federation, task.experiment, this.name, task.round, kind);
    const trained = subset(this.shard.train, indices);
    writeAuditTruth(path, {
      envoy: this.name, experiment: task.experiment, round: task.round, kind, indices,
      labels: trained.labels, images: trained.images, sampleShape: trained.sampleShape,
    });
    log.debug(`audit: recorded the ${indices.length} trained image(s) in ${path}`);
  }

  private modelFor(task: TrainTask): LayersModel {
    const key = JSON.stringify(task.model);
    if (this.model?.key !== key) {
      this.model?.model.dispose();
      this.model = { key, model: buildModel(task.model) };
    }
    return this.model.model;
  }
}

function difference(a: FlatWeights, b: FlatWeights): FlatWeights {
  const values = new Float32Array(a.values.length);
  for (let i = 0; i < values.length; i++) values[i] = a.values[i] - b.values[i];
  return { manifest: a.manifest, values };
}

function hashOf(text: string): number {
  let h = 0;
  for (const ch of text) h = (Math.imul(h, 31) + ch.charCodeAt(0)) | 0;
  return Math.abs(h) % 100_000;
}
