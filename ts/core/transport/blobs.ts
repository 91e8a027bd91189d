/**
 * Large payloads (model weights, updates) over NATS without raising the server's max_payload.
 *
 * The owner of a blob *offers* it: it answers chunk requests on a private subject. A receiver *fetches* it
 * by requesting chunks, a few in flight at a time, and checks the SHA-256 at the end. Pulling gives flow
 * control for free (a slow receiver never overflows the server) and lets one offered global model serve
 * every envoy.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { NatsConnection, Subscription } from 'nats';
import { pack, unpack } from 'msgpackr';
import { BlobChunkSchema, type BlobRef } from '../messages.ts';
import { subjects } from '../subjects.ts';

/** Room left in a NATS message for headers, the reply subject and msgpack framing. */
const CHUNK_HEADROOM = 16 * 1024;

export function chunkBytesFor(nc: NatsConnection, configured?: number): number {
  const serverMax = nc.info?.max_payload ?? 1024 * 1024;
  const fit = Math.max(1024, serverMax - CHUNK_HEADROOM);
  return configured ? Math.min(configured, fit) : fit;
}

export interface OfferedBlob { ref: BlobRef; close(): void }

export function offerBlob(nc: NatsConnection, federation: string, bytes: Uint8Array, chunkBytes: number): OfferedBlob {
  const id = randomUUID().replaceAll('-', '');
  const subject = subjects.blob(federation, id);
  const chunks = Math.max(1, Math.ceil(bytes.length / chunkBytes));
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const sub: Subscription = nc.subscribe(subject);
  (async () => {
    for await (const m of sub) {
      let index = -1;
      try {
        index = (unpack(m.data) as { index: number }).index;
        if (!Number.isInteger(index) || index < 0 || index >= chunks) throw new Error(`no chunk ${index} (blob has ${chunks})`);
        m.respond(pack({ index, data: bytes.subarray(index * chunkBytes, (index + 1) * chunkBytes) }));
      } catch (error) {
        m.respond(pack({ index: Math.max(index, 0), error: (error as Error).message }));
      }
    }
  })().catch(() => undefined);
  return {
    ref: { id, subject, bytes: bytes.length, chunks, chunk_bytes: chunkBytes, sha256 },
    close: () => sub.unsubscribe(),
  };
}

export interface FetchOptions {
  /** Chunk requests in flight at once. */
  concurrency?: number;
  timeoutMs?: number;
  retries?: number;
  onProgress?: (received: number, total: number) => void;
}

export async function fetchBlob(nc: NatsConnection, ref: BlobRef, options: FetchOptions = {}): Promise<Uint8Array> {
  const { concurrency = 4, timeoutMs = 10_000, retries = 2 } = options;
  const out = new Uint8Array(ref.bytes);
  let next = 0;
  let received = 0;
  const fetchChunk = async (index: number): Promise<void> => {
    for (let attempt = 0; ; attempt++) {
      try {
        const reply = await nc.request(ref.subject, pack({ index }), { timeout: timeoutMs });
        const chunk = BlobChunkSchema.parse(unpack(reply.data));
        if (chunk.error || !chunk.data) throw new Error(chunk.error ?? 'empty chunk');
        const expected = Math.min(ref.chunk_bytes, ref.bytes - index * ref.chunk_bytes);
        if (chunk.index !== index || chunk.data.length !== expected) {
          throw new Error(`chunk ${index} has ${chunk.data.length} bytes, expected ${expected}`);
        }
        out.set(chunk.data, index * ref.chunk_bytes);
        options.onProgress?.(++received, ref.chunks);
        return;
      } catch (error) {
        if (attempt >= retries) throw new Error(`fetching blob ${ref.id} chunk ${index}/${ref.chunks} failed: ${(error as Error).message}`);
      }
    }
  };
  const worker = async () => { while (next < ref.chunks) await fetchChunk(next++); };
  await Promise.all(Array.from({ length: Math.min(concurrency, ref.chunks) }, worker));
  const sha256 = createHash('sha256').update(out).digest('hex');
  if (sha256 !== ref.sha256) throw new Error(`blob ${ref.id} failed its SHA-256 check: corrupted in transit`);
  return out;
}
