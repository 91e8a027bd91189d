/**
 * Names that become NATS subject tokens: federation, envoy, data scientist, experiment, run id.
 *
 * A name is spliced into subjects (`secflow.<federation>.envoy.<name>.task`), into NATS permissions and
 * into file paths, so it must be one subject token and nothing else: no dot (it would split the token), no
 * wildcard, no whitespace or control character (CR/LF would end the protocol line and let the rest be read
 * as protocol), and short. Every place a name enters the system (a config, a kit, a registration, a
 * message) checks it with this one rule.
 */
import { z } from 'zod';

export const NAME_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
export const NAME_RULE = '1 to 64 letters, digits, dashes or underscores (a name becomes one NATS subject token)';

export const NameSchema = z.string().regex(NAME_PATTERN, NAME_RULE);

export function isName(value: unknown): value is string {
  return typeof value === 'string' && NAME_PATTERN.test(value);
}

/** Throws an error naming what the bad name is for, and why it is bad. */
export function checkName(value: unknown, what: string): string {
  if (isName(value)) return value;
  const shown = typeof value === 'string' ? JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value) : typeof value;
  throw new Error(`${what} ${shown} is not a valid name: use ${NAME_RULE}`);
}
