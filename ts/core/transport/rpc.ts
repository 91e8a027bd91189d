/**
 * Typed request/reply and subscriptions over NATS. A handler gets an already validated message; a
 * malformed one is answered with an error reply (for requests), logged, and the service goes on.
 */
import type { NatsConnection, Subscription } from 'nats';
import type { z } from 'zod';
import { decode, encode, ErrorReplySchema, MessageError } from '../messages.ts';
import type { Logger } from '../log.ts';
import { unpack } from 'msgpackr';

export async function request<Req extends z.ZodTypeAny, Rep extends z.ZodTypeAny>(
  nc: NatsConnection, subject: string, reqSchema: Req, body: z.input<Req>, repSchema: Rep, timeoutMs: number,
  what: string,
): Promise<z.output<Rep>> {
  let reply;
  try {
    reply = await nc.request(subject, encode(reqSchema, body), { timeout: timeoutMs });
  } catch (error) {
    const code = (error as { code?: string }).code;
    const why = code === '503' ? 'nobody is listening' : code === 'TIMEOUT' ? `no answer within ${timeoutMs} ms` : (error as Error).message;
    throw new Error(`${what} failed: ${why}`);
  }
  throwIfErrorReply(reply.data, what);
  return decode(repSchema, reply.data, `${what} reply`);
}

function throwIfErrorReply(bytes: Uint8Array, what: string): void {
  let raw: unknown;
  try { raw = unpack(bytes); } catch { return; }
  const asError = ErrorReplySchema.safeParse(raw);
  if (asError.success) throw new Error(`${what} refused: ${asError.data.error}`);
}

export interface ServeOptions { queue?: string }

/** Serve requests (or plain messages) of one kind on a subject. */
export function serve<Req extends z.ZodTypeAny, Rep extends z.ZodTypeAny>(
  nc: NatsConnection, subject: string, reqSchema: Req, repSchema: Rep | null, what: string, log: Logger,
  handler: (msg: z.output<Req>) => Promise<z.input<Rep> | void> | z.input<Rep> | void, options: ServeOptions = {},
): Subscription {
  const sub = nc.subscribe(subject, { queue: options.queue });
  (async () => {
    for await (const m of sub) {
      try {
        const body = decode(reqSchema, m.data, what);
        const result = await handler(body);
        if (m.reply && repSchema) m.respond(encode(repSchema, result as z.input<Rep>));
      } catch (error) {
        const message = (error as Error).message;
        if (error instanceof MessageError) log.warn(`${message} (on ${subject}); ignored`);
        else log.error(`${what} on ${subject} failed: ${message}`);
        if (m.reply) m.respond(encode(ErrorReplySchema, { error: message }));
      }
    }
  })().catch((error) => log.error(`subscription ${subject} ended: ${(error as Error).message}`));
  return sub;
}
