/** `secflow leakage audit`: run the sweep and write its table, scatter and HTML report into `out`. */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { resolveFrom } from '../../core/config/load.ts';
import { findPneumoniaMnist } from '../../core/data/fetch.ts';
import type { AuditSweep } from './config.ts';
import type { AuditResults, ConfigurationResult } from './results.ts';
import { writeAuditTables, writeHtmlReport, writeScatter } from './report.ts';
import { runSweep } from './sweep.ts';

export interface AuditOutputs { json: string; csv: string; png: string; html: string }

/**
 * `kept`: configurations measured by an earlier sweep into the same folder, reported beside the ones run now
 * (each keeps its own numbers and grids; a re-run of some rows of a long sweep).
 */
export async function runAudit(sweep: AuditSweep, configPath: string | undefined, say: (line: string) => void, kept: ConfigurationResult[] = []): Promise<AuditOutputs> {
  const rel = (p: string) => (configPath ? resolveFrom(configPath, p) : resolve(p));
  const out = rel(sweep.out);
  mkdirSync(out, { recursive: true });
  const dataPath = findPneumoniaMnist(sweep.data && rel(sweep.data), 'set data: in the audit YAML');
  const withKept = (r: AuditResults): AuditResults => ({ ...r, configurations: [...kept, ...r.configurations] });
  const results = withKept(await runSweep({ ...sweep, out }, dataPath, say, (partial) => writeAuditTables(withKept(partial), out)));
  const tables = writeAuditTables(results, out);
  const scatter = writeScatter(results, join(out, 'scatter.png'));
  const html = writeHtmlReport(results, out, scatter.svg);
  return { ...tables, png: scatter.png, html };
}
