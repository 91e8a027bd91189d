/**
 * The digest of a round's task: everything that decides what an envoy's update is (the global model's
 * bytes, architecture, training settings, bound, round, cohort and every member's weight in the secure
 * sum), and nothing that differs per envoy by design (task id, blob reference, timeouts, its own client id).
 *
 * Every envoy computes it from the task it received, signs it into its secure-aggregation key advertisement
 * and binds its pairwise mask keys to it (HKDF info, through the round's experiment id): envoys holding
 * different tasks cannot produce masks that cancel, and each checks the others' signed digests before it
 * sends anything derived from its data (envoy/director-checks/cohort.ts). The director computes the same
 * digest from the task it sends, so an honest round binds every party to one value.
 */
import { createHash } from 'node:crypto';
import type { TrainTask } from './messages.ts';
import { canonicalJson } from './trust/roster.ts';

/** `weightsSha256`: of the global model's plaintext bytes (encodeWeights), never of a ciphertext. */
export function taskDigest(task: TrainTask, federation: string, weightsSha256: string): Buffer {
  const s = task.secagg;
  const content = {
    v: 1, federation, experiment: task.experiment, run_id: task.run_id, round: task.round,
    model: task.model, training: task.training, max_update_norm: task.max_update_norm, audit: task.audit?.kind ?? null,
    weights_sha256: weightsSha256,
    secagg: s ? {
      experiment_id: s.experiment_id, cohort: s.cohort, neighbours: s.neighbours, threshold: s.threshold, bits: s.bits,
      clip: s.clip, vector_len: s.vector_len, graph_seed: Buffer.from(s.graph_seed).toString('hex'), members: s.members,
    } : null,
  };
  return createHash('sha256').update('FL-SecFlow task digest v1\0').update(canonicalJson(content)).digest();
}

/** The experiment id the secure-aggregation round runs under: bound into every derived key and AEAD tag. */
export function boundExperimentId(experimentId: string, digest: Uint8Array): string {
  return `${experimentId}#${Buffer.from(digest).toString('hex')}`;
}

/** What an envoy attests with its advertisement: who it is in the round, the task it holds, the keys it sent. */
export function advertisementStatement(envoy: string, clientId: number, digest: Uint8Array, advert: Uint8Array): Buffer {
  return Buffer.concat([
    Buffer.from(`secagg advertisement\0${envoy}\0${clientId}\0`), Buffer.from(digest), createHash('sha256').update(advert).digest(),
  ]);
}
