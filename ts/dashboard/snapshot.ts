/**
 * What the dashboard shows, read from the two places the director keeps it: its memory (envoys, queue,
 * refused messages, the latest experiment events) through the narrow `DashboardSource`, and the run folders
 * in its workspace (state, config, metrics, pictures). Read-only: nothing here writes or sends anything.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join, relative, sep } from 'node:path';
import { parse } from 'yaml';
import { ExperimentSchema } from '../core/config/experiment.ts';
import type { ExperimentEvent, StatusReply } from '../core/messages.ts';
import { protectionsOf } from '../director/model-card.ts';
import { readMetricsLog, type MetricsRecord, type RunState } from '../director/run-folder.ts';
import type { AuditResults } from '../leakage/audit/results.ts';

/** The director as the dashboard sees it (director.ts implements it). */
export interface DashboardSource {
  readonly federation: string;
  readonly workspace: string;
  status(): StatusReply;
  recentEvents(): readonly ExperimentEvent[];
}

/** A leakage audit's output folder (`secflow leakage audit`): its table in short, and its pictures. */
export interface AuditView {
  /** Its position in `dashboard.audit_reports` (the picture route's key: no paths travel to the browser and back). */
  index: number;
  name: string;
  problem?: string;
  configurations: { name: string; roc_auc: number; worst_gap_db: number; worst_attack: string }[];
  images: string[];
}

export interface ExperimentView {
  name: string;
  state: RunState | null;
  /** Why the run folder could not be read in full (a damaged file), if so. */
  problem?: string;
  protections: ReturnType<typeof protectionsOf> | null;
  metrics: MetricsRecord[];
  threshold: unknown;
  /** PNGs in the run folder (audit reconstruction grids, scatter plots), relative to it. */
  images: string[];
}

export interface Snapshot {
  federation: string;
  generated_at: string;
  status: StatusReply;
  events: readonly ExperimentEvent[];
  experiments: ExperimentView[];
  audits: AuditView[];
}

export function takeSnapshot(source: DashboardSource, auditReports: readonly string[] = []): Snapshot {
  return {
    federation: source.federation, generated_at: new Date().toISOString(),
    status: source.status(), events: source.recentEvents().slice(-200), experiments: readExperiments(source),
    audits: auditReports.map(readAudit),
  };
}

function readAudit(dir: string, index: number): AuditView {
  const view: AuditView = { index, name: basename(dir), configurations: [], images: [] };
  try {
    const results = readJson(join(dir, 'audit.json')) as AuditResults | null;
    if (!results) return { ...view, problem: 'no audit.json yet' };
    view.name = results.sweep;
    view.configurations = results.configurations.map((c) => ({ name: c.name, roc_auc: c.utility.roc_auc, worst_gap_db: c.worst_gap_db, worst_attack: c.worst_attack }));
    view.images = pngsUnder(dir);
  } catch (error) {
    view.problem = (error as Error).message.slice(0, 300);
  }
  return view;
}

export function runFolderOf(source: DashboardSource, experiment: string): string {
  return join(source.workspace, source.federation, experiment);
}

function readExperiments(source: DashboardSource): ExperimentView[] {
  const root = join(source.workspace, source.federation);
  if (!existsSync(root)) return [];
  return readdirSync(root, { withFileTypes: true }).filter((d) => d.isDirectory())
    .map((d) => readExperiment(d.name, join(root, d.name)))
    .sort((a, b) => (b.state?.updated_at ?? '').localeCompare(a.state?.updated_at ?? ''));
}

function readExperiment(name: string, dir: string): ExperimentView {
  const view: ExperimentView = { name, state: null, protections: null, metrics: [], threshold: null, images: [] };
  try {
    view.state = readJson(join(dir, 'state.json')) as RunState | null;
    const config = existsSync(join(dir, 'config.yaml')) ? ExperimentSchema.parse(parse(readFileSync(join(dir, 'config.yaml'), 'utf8'))) : undefined;
    view.metrics = readMetricsLog(dir);
    view.protections = config ? protectionsOf(config, latestEpsilons(view.metrics)) : null;
    view.threshold = readJson(join(dir, 'threshold.json'));
    view.images = pngsUnder(dir);
  } catch (error) {
    view.problem = (error as Error).message.slice(0, 300);
  }
  return view;
}

function latestEpsilons(metrics: MetricsRecord[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of metrics) if (r.split === 'privacy' && r.envoy && r.metrics.epsilon !== undefined) out[r.envoy] = r.metrics.epsilon;
  return out;
}

function readJson(path: string): unknown {
  return existsSync(path) ? JSON.parse(readFileSync(path, 'utf8')) : null;
}

/** Every PNG below `dir` (the exported model and checkpoints hold none), as forward-slash relative paths. */
export function pngsUnder(dir: string, limit = 200): string[] {
  const found: string[] = [];
  const walk = (d: string) => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      if (found.length >= limit) return;
      const path = join(d, entry.name);
      if (entry.isDirectory() && entry.name !== 'checkpoints' && entry.name !== 'tensorboard') walk(path);
      else if (entry.isFile() && entry.name.toLowerCase().endsWith('.png') && statSync(path).size > 0) found.push(relative(dir, path).split(sep).join('/'));
    }
  };
  walk(dir);
  return found.sort();
}
