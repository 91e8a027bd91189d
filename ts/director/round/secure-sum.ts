/**
 * One secure sum of a round: the SecAgg+ instance of a set of envoys (the round's whole cohort, or one of
 * its sub-cohorts): its plan, the addon's server, the task digest its members bind their keys to, and their
 * signed advertisements. secure.ts runs the stages for every sum of the round; this holds one sum's state.
 */
import type { SecAggUpload, SignedAdvertisement, TrainTask } from '../../core/messages.ts';
import type { NativeAddon } from '../../core/secagg/native.ts';
import { planSecureRound, type PlanInput, type SecureRoundPlan } from '../../core/secagg/params.ts';
import { advertisementStatement, boundExperimentId, taskDigest } from '../../core/task-digest.ts';
import type { Trust } from '../../core/trust/index.ts';
import { SecureAggregator } from './aggregator.ts';
import type { Cohort } from './cohort.ts';

export class SecureSum {
  readonly plan: SecureRoundPlan;
  readonly members: string[];
  /** Each member's signed advertisement, relayed with the keys so every member checks the others itself. */
  readonly advertisements = new Map<string, SignedAdvertisement>();
  /** Set once this sum cannot complete (too few members left, a protocol error): says why. */
  failure?: string;
  private aggregatorOf?: SecureAggregator;
  private digest: Buffer = Buffer.alloc(0);

  /** Throws when the sum cannot be planned (fewer than two envoys, say). */
  constructor(private readonly native: NativeAddon, input: PlanInput) {
    this.plan = planSecureRound(input);
    this.members = [...this.plan.ids.keys()];
  }

  get aggregator(): SecureAggregator {
    if (!this.aggregatorOf) throw new Error('secure sum used before its task was bound');
    return this.aggregatorOf;
  }

  /** Binds the sum to the task its members were sent: the envoys bind their keys to its digest, so the server does too. */
  bind(task: TrainTask, federation: string, globalSha256: string): void {
    this.digest = taskDigest(task, federation, globalSha256);
    this.aggregatorOf = new SecureAggregator(this.native, { ...this.plan, experimentId: boundExperimentId(this.plan.experimentId, this.digest) });
  }

  /** Members still in the round. */
  survivors(cohort: Cohort): string[] {
    return this.members.filter((e) => cohort.has(e));
  }

  /** An advertisement must carry this sum's digest, signed by its envoy: anything else never reaches the others. */
  keepAdvertisement(envoy: string, upload: SecAggUpload, advert: Uint8Array, trust: Trust): void {
    const clientId = this.plan.ids.get(envoy)!;
    if (!upload.digest || !upload.signature) throw new Error('its advertisement carries no signed task digest');
    if (!this.digest.equals(Buffer.from(upload.digest))) {
      throw new Error(`it holds a different task than the one this round sent (digest ${Buffer.from(upload.digest).toString('hex').slice(0, 12)}…, ` +
        `sent ${this.digest.toString('hex').slice(0, 12)}…)`);
    }
    if (trust.secure && !trust.verifyAttestation(envoy, 'envoy', advertisementStatement(envoy, clientId, upload.digest, advert), upload.signature)) {
      throw new Error('its advertisement is not signed by it');
    }
    this.advertisements.set(envoy, { envoy, client_id: clientId, advert: advert as Uint8Array<ArrayBuffer>, digest: upload.digest, signature: upload.signature });
  }

  /** Why this sum cannot go on with `count` members at `stage`, or undefined. */
  shortfall(count: number, stage: string, cohort: Cohort): string | undefined {
    if (count >= this.plan.minSurvivors) return undefined;
    const why = cohort.dropped.filter((d) => this.plan.ids.has(d.envoy)).map((d) => `${d.envoy}: ${d.reason}`).join('; ');
    return `secure aggregation needs at least ${this.plan.minSurvivors} of the ${this.plan.ids.size} envoys (secagg.threshold), ` +
      `${count} left at the ${stage} stage${why ? ` (${why})` : ''}`;
  }
}
