/**
 * The round's global model offered to its participants, with the SHA-256 of its plaintext bytes (what each
 * envoy hashes into a secure round's task digest): encoded once, for the training rounds and the evaluation.
 */
import { createHash } from 'node:crypto';
import type { Bus } from '../../core/transport/bus.ts';
import { chunkBytesFor, offerBlob, type OfferedBlob } from '../../core/transport/blobs.ts';
import { encodeWeights, type FlatWeights } from '../../core/weights.ts';

export function offerModel(bus: Bus, global: FlatWeights, participants: string[], maxChunkBytes?: number): { offered: OfferedBlob; sha256: string } {
  const encoded = encodeWeights(global);
  return {
    offered: offerBlob(bus, encoded, participants, chunkBytesFor(bus, maxChunkBytes)),
    sha256: createHash('sha256').update(encoded).digest('hex'),
  };
}
