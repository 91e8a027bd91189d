/**
 * `secflow data fetch`: download MedMNIST's official PneumoniaMNIST file and check its published MD5.
 * Only a file downloaded here is checked against that MD5; any file of the same layout loads (see npz.ts).
 */
import { createHash } from 'node:crypto';
import { mkdirSync, renameSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Logger } from '../log.ts';
import { progress } from '../progress.ts';

export const PNEUMONIAMNIST_OFFICIAL = {
  url: 'https://zenodo.org/records/10519652/files/pneumoniamnist.npz?download=1',
  md5: '28209eda62fecd6e6a2d98b1501bb15f',
};

/**
 * The PneumoniaMNIST file to use: the one given, else ../shared/data beside the clone, else what
 * `secflow data fetch` saves by default (data/). `how` says how the caller's user names a file.
 */
export function findPneumoniaMnist(given: string | undefined, how: string): string {
  const candidates = [given, '../shared/data/pneumoniamnist.npz', 'data/pneumoniamnist.npz'].filter(Boolean) as string[];
  const found = candidates.map((c) => resolve(c)).find((c) => existsSync(c));
  if (!found) throw new Error(`PneumoniaMNIST not found (looked for ${candidates.join(', ')}); run \`npx secflow data fetch\` or ${how}`);
  return found;
}

export interface FetchOptions { dest: string; url?: string; md5?: string; force?: boolean; log: Logger }

export async function fetchPneumoniaMnist(options: FetchOptions): Promise<string> {
  const url = options.url ?? PNEUMONIAMNIST_OFFICIAL.url;
  const md5 = options.md5 ?? PNEUMONIAMNIST_OFFICIAL.md5;
  if (existsSync(options.dest) && !options.force) {
    options.log.info(`${options.dest} already exists (use --force to download again)`);
    return options.dest;
  }
  let response: Response;
  try {
    response = await fetch(url);
  } catch (error) {
    throw new Error(`cannot download ${url}: ${(error as Error & { cause?: Error }).cause?.message ?? (error as Error).message} ` +
      '(no network here? copy pneumoniamnist.npz by hand and point the configs at it)');
  }
  if (!response.ok || !response.body) throw new Error(`cannot download ${url}: HTTP ${response.status}`);
  const total = Number(response.headers.get('content-length') ?? 0);
  const bar = progress('downloading PneumoniaMNIST', Math.max(1, total), options.log);
  const parts: Uint8Array[] = [];
  let received = 0;
  for await (const part of response.body as unknown as AsyncIterable<Uint8Array>) {
    parts.push(part);
    received += part.length;
    bar.update(Math.min(received, Math.max(1, total)));
  }
  bar.stop();
  const bytes = Buffer.concat(parts);
  const digest = createHash('md5').update(bytes).digest('hex');
  if (digest !== md5) throw new Error(`download from ${url} has MD5 ${digest}, expected ${md5}: incomplete or altered, not saved`);
  mkdirSync(dirname(options.dest), { recursive: true });
  writeFileSync(`${options.dest}.part`, bytes);
  renameSync(`${options.dest}.part`, options.dest);
  options.log.info(`saved ${options.dest} (${bytes.length} bytes, MD5 verified)`);
  return options.dest;
}
