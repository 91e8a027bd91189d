/** Cells of the secure-aggregation bench and the shared timing helpers. */
import { randomFillSync } from 'node:crypto';

export interface Cell {
  n: number;
  d: number;
  dropout: number; // 0 or 0.2
}

export const FULL = { n: [3, 10, 50, 100], d: [1e5, 1e6, 1e7], dropout: [0, 0.2] };
export const QUICK = { n: [3, 10], d: [1e5, 1e6], dropout: [0, 0.2] };
export const HEADLINE: Cell = { n: 10, d: 1e6, dropout: 0.2 };

export function cells(grid: typeof FULL): Cell[] {
  const out: Cell[] = [];
  for (const d of grid.d) for (const n of grid.n) for (const dropout of grid.dropout) out.push({ n, d, dropout });
  return out;
}

export const isHeadline = (c: Cell) => c.n === HEADLINE.n && c.d === HEADLINE.d && c.dropout === HEADLINE.dropout;

/** Masking neighbours, the federation's auto rule (ts/core/config/experiment.ts): all others up to 8, else 2 ceil(log2 n). */
export function neighboursFor(n: number): number {
  return n <= 8 ? n - 1 : 2 * Math.ceil(Math.log2(n));
}

/**
 * Reconstruction threshold: a strict majority of the neighbours, lowered (never below 1) when some client would keep
 * fewer surviving neighbours than that (n = 3 with one dropout); maxDroppedNeighbours comes from the round's graph.
 */
export function thresholdFor(k: number, maxDroppedNeighbours: number): number {
  return Math.max(1, Math.min(Math.floor(k / 2) + 1, k - maxDroppedNeighbours));
}

/** round(dropout * n) envoys, spread evenly over the ids; they vanish after share-keys. */
export function droppedIds(n: number, dropout: number): number[] {
  const m = Math.round(dropout * n);
  return Array.from({ length: m }, (_, j) => Math.min(n - 1, Math.round(((j + 0.5) * n) / m)));
}

export function randomWords(len: number): Uint32Array {
  const a = new Uint32Array(len);
  for (let off = 0; off < len; off += 16384) randomFillSync(a.subarray(off, Math.min(len, off + 16384)));
  return a;
}

export interface Timed<T> {
  value: T;
  wall_s: number;
  cpu_s: number;
}

/** Wall and process CPU time (all threads, so rayon workers count) of fn. */
export async function timed<T>(fn: () => T | Promise<T>): Promise<Timed<T>> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const value = await fn();
  const wall_s = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  return { value, wall_s, cpu_s: (c.user + c.system) / 1e6 };
}

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
export const fmt = (x: number, digits = 3) => Number(x.toPrecision(digits));
