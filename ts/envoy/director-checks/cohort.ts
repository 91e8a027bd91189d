/**
 * Checks of a secure round's cohort that the envoy makes itself, because the director relays everything:
 * at the task, that every member is a distinct provisioned hospital (no sybils); at the keys, that every
 * advertisement is signed by its hospital over the same task digest as ours (no model inconsistency, no
 * per-hospital models) and that the keys relayed are the keys signed (no substituted keys).
 */
import { unpack } from 'msgpackr';
import type { SecAggTask, SignedAdvertisement } from '../../core/messages.ts';
import { advertisementStatement, boundExperimentId } from '../../core/task-digest.ts';
import type { Trust } from '../../core/trust/index.ts';

export interface DirectorRefusal { rule: string; reason: string }

const short = (d: Uint8Array) => `${Buffer.from(d).toString('hex').slice(0, 12)}…`;

/** At the task: the cohort the director names must be distinct provisioned hospitals, us included, as our parameters say. */
export function cohortMembersProblem(params: SecAggTask, trust: Trust, self: string): DirectorRefusal | undefined {
  const rule = 'honest_director.cohort';
  const names = params.members.map((m) => m.envoy);
  if (new Set(names).size !== names.length) return { rule, reason: 'the cohort names a hospital twice' };
  const ids = params.members.map((m) => m.client_id).sort((a, b) => a - b);
  if (ids.join(',') !== [...params.cohort].sort((a, b) => a - b).join(',')) return { rule, reason: "the cohort's members and client ids disagree" };
  const me = params.members.find((m) => m.envoy === self);
  if (!me || me.client_id !== params.client_id || me.scale !== params.scale) return { rule, reason: 'the cohort does not list this hospital as its task does' };
  if (trust.secure) {
    const strangers = names.filter((n) => !trust.admits(n, 'envoy'));
    if (strangers.length) return { rule, reason: `the cohort lists ${strangers.join(', ')}, not provisioned hospitals of this federation (sybils?)` };
  }
  return undefined;
}

interface AdvertiseKeys { ctx: { experimentId: string; round: number }; client: number; encPk: Uint8Array; maskPk: Uint8Array }
interface KeysBroadcast { recipient: number; neighbours: { client: number; encPk: Uint8Array; maskPk: Uint8Array }[] }

export interface KeysCheck {
  params: SecAggTask;
  round: number;
  digest: Uint8Array;
  self: string;
  trust: Trust;
  /** The policy's fewest distinct hospitals in the secure sum. */
  minCohort: number;
  keys: Uint8Array;
  advertisements: SignedAdvertisement[];
}

/** At the keys: every relayed key signed by its hospital over our digest, enough hospitals, nothing else. */
export function keysProblem(c: KeysCheck): DirectorRefusal | undefined {
  const signed = new Map<number, AdvertiseKeys>();
  for (const a of c.advertisements) {
    const member = c.params.members.find((m) => m.envoy === a.envoy);
    if (!member || member.client_id !== a.client_id) return { rule: 'honest_director.cohort', reason: `an advertisement of ${a.envoy} (client ${a.client_id}) that the task's cohort does not list` };
    if (c.trust.secure && !c.trust.verifyAttestation(a.envoy, 'envoy', advertisementStatement(a.envoy, a.client_id, a.digest, a.advert), a.signature)) {
      return { rule: 'honest_director.signed_cohort', reason: `the advertisement relayed as ${a.envoy}'s is not signed by ${a.envoy}` };
    }
    if (!Buffer.from(a.digest).equals(Buffer.from(c.digest))) {
      return { rule: 'honest_director.same_model', reason: `inconsistent models from the director: ${a.envoy} was sent a different task (digest ${short(a.digest)}, ours ${short(c.digest)})` };
    }
    const advert = unpack(a.advert) as AdvertiseKeys;
    if (advert.client !== a.client_id || advert.ctx?.experimentId !== boundExperimentId(c.params.experiment_id, c.digest) || advert.ctx.round !== c.round) {
      return { rule: 'honest_director.same_model', reason: `${a.envoy}'s keys are bound to another round or task` };
    }
    signed.set(a.client_id, advert);
  }
  const broadcast = unpack(c.keys) as KeysBroadcast;
  for (const n of broadcast.neighbours ?? []) {
    const s = signed.get(n.client);
    if (!s || !Buffer.from(s.encPk).equals(Buffer.from(n.encPk)) || !Buffer.from(s.maskPk).equals(Buffer.from(n.maskPk))) {
      return { rule: 'honest_director.signed_cohort', reason: `the director relayed keys for client ${n.client} that no hospital signed` };
    }
  }
  const hospitals = new Set([...c.advertisements.map((a) => a.envoy), c.self]).size;
  if (hospitals < c.minCohort) {
    return { rule: 'secure_aggregation.min_cohort', reason: `${hospitals} hospitals signed this round's cohort, fewer than this hospital's minimum ${c.minCohort}` };
  }
  return undefined;
}
