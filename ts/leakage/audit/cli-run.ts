/** `secflow leakage audit`: run the sweep and write its table, scatter and HTML report into `out`. */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { resolveFrom } from '../../core/config/load.ts';
import { findPneumoniaMnist } from '../../core/data/fetch.ts';
import type { AuditSweep } from './config.ts';
import type { AuditResults, ConfigurationResult } from './results.ts';
import { writeAuditTables, writeHtmlReport, writeScatter } from './report.ts';
import { runSweep } from './sweep.ts';

export interface AuditOutputs { json: string; csv: string; png: string; html: string }

/**
 * `keep`: the configurations an earlier sweep measured into the same folder and this one does not run are
 * reported beside the ones run now (each keeps its own numbers and grids; a re-run of some rows of a long sweep).
 */
export async function runAudit(sweep: AuditSweep, configPath: string | undefined, say: (line: string) => void, o: { keep?: boolean } = {}): Promise<AuditOutputs> {
  const rel = (p: string) => (configPath ? resolveFrom(configPath, p) : resolve(p));
  const out = rel(sweep.out);
  const kept = o.keep ? keptConfigurations(sweep, out) : [];
  if (kept.length) say(`kept from ${join(out, 'audit.json')}: ${kept.map((c) => c.name).join(', ')}`);
  mkdirSync(out, { recursive: true });
  const dataPath = findPneumoniaMnist(sweep.data && rel(sweep.data), 'set data: in the audit YAML');
  const withKept = (r: AuditResults): AuditResults => ({ ...r, configurations: [...kept, ...r.configurations] });
  const results = withKept(await runSweep({ ...sweep, out }, dataPath, say, (partial) => writeAuditTables(withKept(partial), out)));
  const tables = writeAuditTables(results, out);
  const scatter = writeScatter(results, join(out, 'scatter.png'));
  const html = writeHtmlReport(results, out, scatter.svg);
  return { ...tables, png: scatter.png, html };
}

/** The configurations of the audit.json already in `out` that this sweep does not run. */
function keptConfigurations(sweep: AuditSweep, out: string): ConfigurationResult[] {
  const previous = join(out, 'audit.json');
  if (!existsSync(previous)) return [];
  let results: AuditResults;
  try {
    results = JSON.parse(readFileSync(previous, 'utf8')) as AuditResults;
  } catch (e) {
    throw new Error(`keep: ${previous} is not readable audit results (${(e as Error).message}); move it away or run without --keep`);
  }
  if (!Array.isArray(results.configurations)) throw new Error(`keep: ${previous} has no configurations list`);
  return results.configurations.filter((c) => !sweep.configurations.some((s) => s.name === c.name));
}
