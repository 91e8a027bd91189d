/**
 * Who may look. A federation with identities (the director has a kit) gates its dashboard behind a random
 * access token that only whoever can read the director's workspace learns: it is written, inside the URL to
 * open, to `<workspace>/dashboard-access.txt` (0600) and never logged. The browser trades `?token=` for an
 * HttpOnly, SameSite=Strict cookie on first load; scripts may send `Authorization: Bearer <token>` instead.
 * An insecure federation's dashboard is open (loopback still), as loudly as the rest of the opt-out.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const ACCESS_FILE = 'dashboard-access.txt';
export const COOKIE = 'secflow_dashboard';

export interface AccessGate {
  /** undefined: no token needed (insecure federation). */
  readonly token?: string;
  allows(headers: { authorization?: string; cookie?: string }, queryToken?: string): boolean;
}

export function openGate(): AccessGate {
  return { allows: () => true };
}

export function tokenGate(token = randomBytes(32).toString('base64url')): AccessGate {
  const digest = (s: string) => createHash('sha256').update(s).digest();
  const expected = digest(token);
  const matches = (candidate?: string) => !!candidate && timingSafeEqual(digest(candidate), expected);
  return {
    token,
    allows: (headers, queryToken) =>
      matches(queryToken) || matches(bearerOf(headers.authorization)) || matches(cookieOf(headers.cookie, COOKIE)),
  };
}

/** Writes the URL to open (with its token) where only the director's operator can read it. */
export function writeAccessFile(workspace: string, url: string): string {
  const path = join(workspace, ACCESS_FILE);
  mkdirSync(workspace, { recursive: true });
  writeFileSync(path, `${url}\n`, { mode: 0o600 });
  chmodSync(path, 0o600); // an older file keeps its mode through writeFileSync
  return path;
}

function bearerOf(header?: string): string | undefined {
  const match = /^Bearer\s+(\S+)$/i.exec(header ?? '');
  return match?.[1];
}

function cookieOf(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const [key, ...value] = part.trim().split('=');
    if (key === name) return value.join('=');
  }
  return undefined;
}
