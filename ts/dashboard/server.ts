/**
 * The director's live dashboard: a read-only web app (Fastify) over `snapshot.ts`. GET only; JSON at
 * /api/snapshot, run-folder pictures at /api/experiments/<name>/files/<path>.png, and a static page
 * (page/) that polls the snapshot and draws its curves with Chart.js. Loopback unless configured otherwise;
 * behind a token when the federation has identities (access.ts).
 */
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import type { DashboardConfig } from '../core/config/director.ts';
import { isName } from '../core/names.ts';
import { ACCESS_FILE, COOKIE, openGate, tokenGate, writeAccessFile, type AccessGate } from './access.ts';
import { runFolderOf, takeSnapshot, type DashboardSource } from './snapshot.ts';

const PAGE = join(dirname(fileURLToPath(import.meta.url)), 'page');
// chart.js exports no subpath for its browser bundle; it sits beside the CommonJS entry in dist/.
const CHART_JS = join(dirname(createRequire(import.meta.url).resolve('chart.js')), 'chart.umd.min.js');
const STATIC: Record<string, { file: string; type: string }> = {
  '/': { file: join(PAGE, 'index.html'), type: 'text/html; charset=utf-8' },
  '/app.js': { file: join(PAGE, 'app.js'), type: 'text/javascript; charset=utf-8' },
  '/style.css': { file: join(PAGE, 'style.css'), type: 'text/css; charset=utf-8' },
  '/vendor/chart.umd.min.js': { file: CHART_JS, type: 'text/javascript; charset=utf-8' },
};

export interface RunningDashboard {
  /** The address to open (without the token). */
  url: string;
  /** Where the URL with its token was written (secure federations only). */
  accessFile?: string;
  close(): Promise<void>;
}

export async function startDashboard(config: DashboardConfig, source: DashboardSource, o: { secure: boolean }): Promise<RunningDashboard> {
  const gate = o.secure ? tokenGate() : openGate();
  const app = buildApp(source, gate, config.audit_reports);
  await app.listen({ host: config.host, port: config.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}/`;
  const accessFile = gate.token ? writeAccessFile(source.workspace, `${url}?token=${gate.token}`) : undefined;
  return { url, accessFile, close: () => app.close() };
}

export function buildApp(source: DashboardSource, gate: AccessGate, auditReports: readonly string[] = []): FastifyInstance {
  const app = Fastify({ logger: false });
  app.addHook('onRequest', async (request, reply) => {
    securityHeaders(reply);
    const query = request.query as { token?: string };
    if (!gate.allows(request.headers, query.token)) {
      return reply.code(401).type('text/plain').send(`the dashboard needs its access token: open the URL in <workspace>/${ACCESS_FILE}`);
    }
    if (gate.token && query.token) reply.header('set-cookie', `${COOKIE}=${gate.token}; HttpOnly; SameSite=Strict; Path=/`);
  });
  for (const [path, asset] of Object.entries(STATIC)) {
    app.get(path, async (_request, reply) => reply.type(asset.type).send(readFileSync(asset.file)));
  }
  app.get('/favicon.ico', async (_request, reply) => reply.code(204).send()); // browsers ask; there is none
  app.get('/api/snapshot', async () => takeSnapshot(source, auditReports));
  app.get('/api/experiments/:name/files/*', async (request, reply) => {
    const { name, '*': path } = request.params as { name: string; '*': string };
    return isName(name) ? sendPng(runFolderOf(source, name), path, reply) : reply.code(404).send({ error: 'no such picture' });
  });
  app.get('/api/audits/:index/files/*', async (request, reply) => {
    const { index, '*': path } = request.params as { index: string; '*': string };
    const folder = /^\d+$/.test(index) ? auditReports[Number(index)] : undefined;
    return folder ? sendPng(folder, path, reply) : reply.code(404).send({ error: 'no such picture' });
  });
  return app;
}

/** A PNG inside `folder` (a run folder or an audit report), and nothing else: no other types, no path out of it. */
async function sendPng(folder: string, path: string, reply: FastifyReply) {
  if (!path.toLowerCase().endsWith('.png')) return reply.code(404).send({ error: 'no such picture' });
  const file = resolve(folder, path);
  if (!existsSync(file) || !existsSync(folder) || !realpathSync(file).startsWith(realpathSync(folder) + sep)) {
    return reply.code(404).send({ error: 'no such picture' });
  }
  return reply.type('image/png').send(readFileSync(file));
}

function securityHeaders(reply: FastifyReply): void {
  reply.header('cache-control', 'no-store');
  reply.header('x-content-type-options', 'nosniff');
  reply.header('referrer-policy', 'no-referrer');
  reply.header('x-frame-options', 'DENY');
  reply.header('content-security-policy', "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'");
}
