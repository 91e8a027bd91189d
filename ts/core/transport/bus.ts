/**
 * The federation bus: typed, enveloped messages over NATS. Every role talks through a Bus, which wraps
 * what it sends (trust: signed, sealed to the receiver) and opens what it receives (who sent it, for whom,
 * on which subject, once, in a role allowed to send it) before a handler sees a validated message.
 *
 * No input can end a subscription: every failure, including a reply that cannot be sent (too large, the
 * requester gone, the connection draining), is caught, counted per sender and reason, logged at most once a
 * minute per sender and reason, and answered (when a reply is expected) with a short error that never
 * repeats what was received.
 */
import type { NatsConnection, Subscription } from 'nats';
import type { z } from 'zod';
import type { Logger } from '../log.ts';
import { decode, encode, ERROR_REPLY_MAX, ErrorReplySchema, MessageError, type Kind } from '../messages.ts';
import { isName } from '../names.ts';
import { lastToken } from '../subjects.ts';
import { TrustError, type Peer, type Trust } from '../trust/index.ts';
import { unpack } from 'msgpackr';

const ERROR_KIND = 'error';
const SERVE_CONCURRENCY = 32;
const replyKind = (k: Kind) => `${k.kind}_reply`;

export interface ServeOptions {
  /** The subject's last token names the sender (messages to the director): it must be the verified sender. */
  senderInSubject?: boolean;
  /**
   * Told when a verified participant's own message cannot be read (malformed, non-finite numbers). Not for
   * replays, stale or moved messages: anyone can replay a participant's message, which is not its fault.
   */
  onRefused?: (sender: string, reason: string) => void;
}

export type Handler<K extends Kind> = (msg: z.output<K['schema']>, sender: Peer, subject: string) =>
  Promise<ReplyOf<K> | void> | ReplyOf<K> | void;
type ReplyOf<K extends Kind> = z.input<NonNullable<K['reply']>>;

export class Bus {
  constructor(readonly nc: NatsConnection, readonly trust: Trust, readonly log: Logger) {}

  get self(): string { return this.trust.self; }
  get federation(): string { return this.trust.federation; }

  /** Sends a request to `to` and resolves with its validated reply; a refusal or silence throws, naming `what`. */
  async request<K extends Kind>(k: K, subject: string, to: string, body: z.input<K['schema']>, timeoutMs: number, what = k.what):
    Promise<z.output<NonNullable<K['reply']>>> {
    const { bytes, nonce } = await this.trust.wrap({ subject, kind: k.kind, to }, encode(k.schema, body));
    let reply;
    try {
      reply = await this.nc.request(subject, bytes, { timeout: timeoutMs });
    } catch (error) {
      const code = (error as { code?: string }).code;
      const why = code === '503' ? 'nobody is listening' : code === 'TIMEOUT' ? `no answer within ${timeoutMs} ms` : (error as Error).message;
      throw new Error(`${what} failed: ${why}`);
    }
    let opened;
    try {
      // An error reply is signed but not sealed (it may answer a sender that could not be verified).
      opened = await this.trust.open(reply.data, { kinds: [replyKind(k), ERROR_KIND], unsealedKinds: [ERROR_KIND], fromName: to, re: nonce }, '');
    } catch (error) {
      this.refused(error, to);
      throw new Error(`${what} failed: the reply was refused (${(error as Error).message.slice(0, 200)})`);
    }
    if (opened.kind === ERROR_KIND) throw new Error(`${what} refused: ${decode(ErrorReplySchema, opened.body, 'error reply').error}`);
    return decode(k.reply!, opened.body, `${what} reply`);
  }

  /**
   * Fire and forget (events, leave notices): never throws. Publications leave in the order they were made
   * (sealing is asynchronous, and a receiver must see round 1's event before round 2's).
   */
  publish<K extends Kind>(k: K, subject: string, to: string, body: z.input<K['schema']>): Promise<void> {
    let plaintext: Uint8Array;
    try {
      plaintext = encode(k.schema, body);
    } catch (error) {
      this.log.error(`not sending an invalid ${k.what} to ${to}: ${(error as Error).message.slice(0, 300)}`);
      return this.published;
    }
    this.published = this.published.then(async () => {
      try {
        if (this.nc.isClosed()) return;
        const { bytes } = await this.trust.wrap({ subject, kind: k.kind, to }, plaintext);
        this.nc.publish(subject, bytes);
      } catch (error) {
        this.log.warn(`could not send the ${k.what} to ${to}: ${(error as Error).message}`);
      }
    });
    return this.published;
  }
  private published: Promise<void> = Promise.resolve();

  /**
   * Serves one kind of message on a subject (wildcards allowed). Returns the subscription. Up to
   * SERVE_CONCURRENCY messages are handled at once, so one sender's flood queued ahead of another
   * participant's message delays it by little (most refusals take microseconds; opening takes longer).
   */
  serve<K extends Kind>(k: K, subject: string, handler: Handler<K>, options: ServeOptions = {}): Subscription {
    const sub = this.nc.subscribe(subject);
    const inFlight = new Set<Promise<void>>();
    void (async () => {
      for await (const m of sub) {
        const handled = this.handle(k, m, handler, options).finally(() => inFlight.delete(handled));
        inFlight.add(handled);
        if (inFlight.size >= SERVE_CONCURRENCY) await Promise.race(inFlight);
      }
    })().catch((error) => this.log.error(`subscription ${subject} ended: ${(error as Error).message}`));
    return sub;
  }

  private async handle<K extends Kind>(k: K, m: { subject: string; data: Uint8Array; reply?: string; respond(data: Uint8Array): boolean },
    handler: Handler<K>, options: ServeOptions): Promise<void> {
    let sender: Peer | undefined;
    let nonce: Uint8Array | undefined;
    try {
      const opened = await this.trust.open(m.data, { kinds: [k.kind], from: k.from }, m.subject);
      sender = opened.sender;
      nonce = opened.nonce;
      if (options.senderInSubject && lastToken(m.subject) !== sender.name) {
        throw new TrustError('subject names another sender', sender.name, `sent on ${m.subject.slice(0, 120)}`);
      }
      const body = decode(k.schema, opened.body, k.what);
      const result = await handler(body, sender, m.subject);
      if (m.reply && k.reply) await this.reply(m, { subject: '', kind: replyKind(k), to: sender.name, re: nonce }, encode(k.reply, result));
    } catch (error) {
      this.refused(error, sender?.name, m.subject, k.what);
      if (sender && error instanceof MessageError && options.onRefused) {
        try { options.onRefused(sender.name, (error as Error).message.slice(0, 300)); } catch { /* a listener's failure is not the message's */ }
      }
      if (m.reply) await this.replyError(m, error, sender?.name ?? claimedSender(error), nonce ?? envelopeNonce(m.data));
    }
  }

  /** Counts and logs one refused or failed message; never throws. */
  private refused(error: unknown, sender: string | undefined, subject = '(reply)', what = 'message'): void {
    if (error instanceof TrustError) {
      this.trust.rejections.record(error.claimed, error.reason, subject, undefined);
    } else if (error instanceof MessageError) {
      this.trust.rejections.record(sender ?? '(unknown)', error.brief.replace(/:.*$/, ''), subject, error.message);
    } else {
      this.trust.rejections.record(sender ?? '(unknown)', `${what} failed`, subject, (error as Error).message?.slice(0, 300));
    }
  }

  private async replyError(m: { respond(data: Uint8Array): boolean }, error: unknown, to: string | undefined, re: Uint8Array | undefined): Promise<void> {
    const message = error instanceof MessageError ? error.brief
      : error instanceof TrustError ? `refused: ${error.reason}` : (error as Error).message ?? 'failed';
    if (!to || !isName(to) || !re) return; // nobody to address a signed error to
    await this.reply(m, { subject: '', kind: ERROR_KIND, to, re, seal: false }, encode(ErrorReplySchema, { error: message.slice(0, ERROR_REPLY_MAX) }));
  }

  private async reply(m: { respond(data: Uint8Array): boolean }, out: Parameters<Trust['wrap']>[0], body: Uint8Array): Promise<void> {
    try {
      const { bytes } = await this.trust.wrap(out, body);
      m.respond(bytes);
    } catch (error) {
      // The requester may have gone, the connection may be draining, the reply may be too large: the
      // subscription goes on either way.
      this.log.debug(`could not reply on ${out.kind}: ${(error as Error).message}`);
    }
  }

  /** Receives a kind of message with no reply (experiment events). */
  subscribe<K extends Kind>(k: K, subject: string): AsyncIterable<z.output<K['schema']>> & { unsubscribe(): void } {
    const sub = this.nc.subscribe(subject);
    const bus = this;
    return {
      unsubscribe: () => sub.unsubscribe(),
      async *[Symbol.asyncIterator]() {
        for await (const m of sub) {
          try {
            const opened = await bus.trust.open(m.data, { kinds: [k.kind], from: k.from }, m.subject);
            yield decode(k.schema, opened.body, k.what);
          } catch (error) {
            bus.refused(error, undefined, m.subject, k.what);
          }
        }
      },
    };
  }

  async flush(): Promise<void> { await this.nc.flush(); }
  isClosed(): boolean { return this.nc.isClosed(); }
  async drain(): Promise<void> { await this.nc.drain().catch(() => undefined); }
  async close(): Promise<void> { await this.nc.close().catch(() => undefined); }
}

function claimedSender(error: unknown): string | undefined {
  if (!(error instanceof TrustError)) return undefined;
  const name = error.claimed.replace(/ \(unverified\)$/, '');
  return isName(name) ? name : undefined;
}

/** The nonce of an envelope that failed to open, so even an error reply answers the request it refuses. */
function envelopeNonce(bytes: Uint8Array): Uint8Array | undefined {
  let raw: { nonce?: unknown } | undefined;
  try {
    raw = unpack(bytes) as { nonce?: unknown } | undefined;
  } catch {
    return undefined;
  }
  return raw?.nonce instanceof Uint8Array && raw.nonce.length === 16 ? raw.nonce : undefined;
}
