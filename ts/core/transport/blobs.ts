/**
 * Large payloads (model weights, updates, masked inputs) over NATS without raising the server's max_payload.
 *
 * The owner of a blob *offers* it to named receivers: it answers chunk requests on one subject per receiver
 * (`subjects.blob(owner, receiver, id)`, which only that receiver may publish to). A receiver *fetches* it by
 * requesting chunks, a few in flight at a time, each request signed, and checks the SHA-256 (from the signed,
 * sealed message that carried the ref) at the end. Pulling gives flow control for free and lets one offered
 * global model serve every envoy. In a secure federation the bytes are encrypted once with a fresh
 * AES-256-GCM key that travels only inside sealed messages, so the NATS server sees ciphertext.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import type { Subscription } from 'nats';
import { pack, unpack } from 'msgpackr';
import { BlobChunkSchema, type BlobRef } from '../messages.ts';
import { subjects } from '../subjects.ts';
import { TrustError } from '../trust/index.ts';
import type { Bus } from './bus.ts';

/** Room left in a NATS message for headers, the reply subject, the envelope and msgpack framing. */
const CHUNK_HEADROOM = 16 * 1024;
const CHUNK_KIND = 'blob_chunk';
const IV_BYTES = 12;
const TAG_BYTES = 16;

export function chunkBytesFor(bus: Bus, configured?: number): number {
  const serverMax = bus.nc.info?.max_payload ?? 1024 * 1024;
  const fit = Math.max(1024, serverMax - CHUNK_HEADROOM);
  return configured ? Math.min(configured, fit) : fit;
}

export interface OfferedBlob {
  /** The ref to hand to `receiver` (inside a message addressed to it). */
  refFor(receiver: string): BlobRef;
  close(): void;
}

export function offerBlob(bus: Bus, plaintext: Uint8Array, receivers: string[], chunkBytes: number): OfferedBlob {
  const id = randomBytes(16).toString('hex');
  const key = bus.trust.secure ? randomBytes(32) : undefined;
  const bytes = key ? encrypt(key, plaintext) : plaintext;
  const chunks = Math.max(1, Math.ceil(bytes.length / chunkBytes));
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const subs: Subscription[] = receivers.map((receiver) => serveChunks(bus, subjects.blob(bus.federation, bus.self, receiver, id), receiver, bytes, chunks, chunkBytes));
  const ref: BlobRef = { id, owner: bus.self, bytes: bytes.length, chunks, chunk_bytes: chunkBytes, sha256, ...(key ? { key } : {}) };
  return {
    refFor: (receiver) => {
      if (!receivers.includes(receiver)) throw new Error(`blob ${id} is not offered to ${receiver}`);
      return ref;
    },
    close: () => subs.forEach((s) => s.unsubscribe()),
  };
}

function serveChunks(bus: Bus, subject: string, receiver: string, bytes: Uint8Array, chunks: number, chunkBytes: number): Subscription {
  const sub = bus.nc.subscribe(subject);
  void (async () => {
    for await (const m of sub) {
      let index = -1;
      try {
        const opened = await bus.trust.open(m.data, { kinds: [CHUNK_KIND], fromName: receiver, sealed: false }, m.subject);
        index = (unpack(opened.body) as { index?: unknown })?.index as number;
        if (!Number.isInteger(index) || index < 0 || index >= chunks) throw new Error(`no chunk ${String(index).slice(0, 20)} (blob has ${chunks})`);
        m.respond(pack({ index, data: bytes.subarray(index * chunkBytes, (index + 1) * chunkBytes) }));
      } catch (error) {
        if (error instanceof TrustError) bus.trust.rejections.record(error.claimed, error.reason, m.subject);
        try {
          m.respond(pack({ index: Math.max(index, 0), error: (error instanceof TrustError ? `refused: ${error.reason}` : (error as Error).message).slice(0, 200) }));
        } catch { /* the requester is gone */ }
      }
    }
  })().catch(() => undefined);
  return sub;
}

export interface FetchOptions {
  /** Chunk requests in flight at once. */
  concurrency?: number;
  timeoutMs?: number;
  retries?: number;
  onProgress?: (received: number, total: number) => void;
  /** Refuse a blob larger than this before fetching anything (default 1 GiB). */
  maxBytes?: number;
}

export async function fetchBlob(bus: Bus, ref: BlobRef, options: FetchOptions = {}): Promise<Uint8Array> {
  const { concurrency = 4, timeoutMs = 10_000, retries = 2, maxBytes = 1 << 30 } = options;
  if (ref.bytes > maxBytes) throw new Error(`blob ${ref.id} has ${ref.bytes} bytes, more than the ${maxBytes} accepted`);
  if (ref.chunks !== Math.max(1, Math.ceil(ref.bytes / ref.chunk_bytes))) throw new Error(`blob ${ref.id}: ${ref.chunks} chunks of ${ref.chunk_bytes} bytes cannot hold ${ref.bytes} bytes`);
  if (bus.trust.secure && !ref.key) throw new Error(`blob ${ref.id} from ${ref.owner} is not encrypted, which a secure federation never accepts`);
  const subject = subjects.blob(bus.federation, ref.owner, bus.self, ref.id);
  const out = new Uint8Array(ref.bytes);
  let next = 0;
  let received = 0;
  const fetchChunk = async (index: number): Promise<void> => {
    for (let attempt = 0; ; attempt++) {
      try {
        const { bytes } = await bus.trust.wrap({ subject, kind: CHUNK_KIND, to: ref.owner, seal: false }, pack({ index }));
        const reply = await bus.nc.request(subject, bytes, { timeout: timeoutMs });
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
        const code = (error as { code?: string }).code;
        const why = code === '503' ? 'nobody offers it (its owner closed it or is gone)' : code === 'TIMEOUT' ? `no answer within ${timeoutMs} ms` : (error as Error).message;
        if (attempt >= retries) throw new Error(`fetching blob ${ref.id} chunk ${index}/${ref.chunks} failed: ${why}`);
      }
    }
  };
  const worker = async () => { while (next < ref.chunks) await fetchChunk(next++); };
  await Promise.all(Array.from({ length: Math.min(concurrency, ref.chunks) }, worker));
  const sha256 = createHash('sha256').update(out).digest('hex');
  if (sha256 !== ref.sha256) throw new Error(`blob ${ref.id} failed its SHA-256 check: corrupted in transit`);
  return ref.key ? decrypt(ref.key, out, ref.id) : out;
}

function encrypt(key: Uint8Array, plaintext: Uint8Array): Uint8Array {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  return Buffer.concat([iv, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
}

function decrypt(key: Uint8Array, bytes: Uint8Array, id: string): Uint8Array {
  if (bytes.length < IV_BYTES + TAG_BYTES) throw new Error(`blob ${id} is too short to be encrypted`);
  const decipher = createDecipheriv('aes-256-gcm', key, bytes.subarray(0, IV_BYTES));
  decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES));
  try {
    return Buffer.concat([decipher.update(bytes.subarray(IV_BYTES, bytes.length - TAG_BYTES)), decipher.final()]);
  } catch {
    throw new Error(`blob ${id} does not decrypt with its key: altered or not for this receiver`);
  }
}
