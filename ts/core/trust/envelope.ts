/**
 * The envelope every message between roles travels in. It names the sender, the receiver, the subject it
 * was sent on, the kind of message, a fresh nonce and the time; the sender's Ed25519 signature covers all of
 * that and the payload, so a receiver can tell a forged, re-addressed, moved or replayed message from a real
 * one. Addressed payloads are sealed to the receiver (sealing.ts); the header is their associated data.
 */
import { pack, unpack } from 'msgpackr';
import { z } from 'zod';
import { NameSchema } from '../names.ts';

export const ENVELOPE_VERSION = 1;
/** Bytes typed as plain Uint8Array (whatever buffer backs them: Node's pool, an addon's, msgpackr's). */
const Bytes = (n?: number) => z.custom<Uint8Array>((v) => v instanceof Uint8Array && (!n || v.length === n), n ? `expected ${n} bytes` : 'expected bytes');

export const EnvelopeSchema = z.object({
  v: z.literal(ENVELOPE_VERSION),
  federation: NameSchema,
  from: NameSchema,
  to: NameSchema.optional(),
  /** The subject the sender published on; empty for a reply (its inbox is chosen by the requester's client). */
  subject: z.string().max(256),
  kind: z.string().min(1).max(64),
  nonce: Bytes(16),
  /** Sender's clock, ms since the epoch: bounds how long a nonce must be remembered. */
  ts: z.number().int().nonnegative(),
  /** A reply carries its request's nonce: it answers that request and no other. */
  re: Bytes(16).optional(),
  body: Bytes().optional(),
  sealed: z.object({ enc: Bytes(32), ct: Bytes() }).strict().optional(),
  sig: Bytes(64).optional(),
}).strict();
export type Envelope = z.infer<typeof EnvelopeSchema>;

export interface EnvelopeHeader { federation: string; from: string; to?: string; subject: string; kind: string; nonce: Uint8Array; ts: number; re?: Uint8Array }

/** The bytes that bind a sealed payload to its header (HPKE info and AEAD associated data). */
export function headerBytes(h: EnvelopeHeader): Uint8Array {
  return pack(['secflow-envelope', ENVELOPE_VERSION, h.federation, h.from, h.to ?? null, h.subject, h.kind, h.nonce, h.ts, h.re ?? null]);
}

/** The bytes the sender signs: the header and whatever the envelope carries. */
export function signedBytes(e: Omit<Envelope, 'sig' | 'v'>): Uint8Array {
  return pack([headerBytes(e), e.body ?? null, e.sealed?.enc ?? null, e.sealed?.ct ?? null]);
}

export function encodeEnvelope(e: Envelope): Uint8Array {
  return pack(e);
}

/**
 * Parses an envelope; when the bytes are not one, says why, and who it claims to be from if it names a
 * valid sender (for counting refusals per claimed sender; nothing is believed).
 */
export function decodeEnvelope(bytes: Uint8Array): { envelope?: Envelope; problem?: string; claimed?: string } {
  let raw: unknown;
  try {
    raw = unpack(bytes);
  } catch {
    return { problem: 'not msgpack' };
  }
  const parsed = EnvelopeSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const from = (raw as { from?: unknown } | null)?.from;
    return { problem: `${issue.path.join('.') || 'envelope'}: ${issue.message}`.slice(0, 160), claimed: NameSchema.safeParse(from).success ? from as string : undefined };
  }
  return { envelope: parsed.data };
}
