/**
 * Starts a private nats-server on a free loopback port, for the demo and the tests. Only loopback: a
 * local federation must never listen on the network.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, connect as tcpConnect } from 'node:net';

export interface LocalNats {
  url: string;
  port: number;
  /** Re-reads the config file (what `nats-server --signal reload` does): after `secflow provision revoke`. */
  reload(): void;
  stop(): Promise<void>;
}

/** The upstream server scripts/setup.sh fetches from PyPI (keep the version in step with it). */
export const CACHED_NATS_SERVER_VERSION = '2.15.1';

export function cachedNatsServer(): string {
  const cache = process.env.SECFLOW_CACHE ?? join(homedir(), '.cache', 'fl-secflow');
  return join(cache, `nats-server-${CACHED_NATS_SERVER_VERSION}`, 'nats-server');
}

/** $NATS_SERVER_BIN, else the set-up's cached upstream server, else one on PATH. */
export function findNatsServer(): string {
  for (const candidate of [process.env.NATS_SERVER_BIN, cachedNatsServer()]) {
    if (candidate && existsSync(candidate)) return candidate;
  }
  const which = spawnSync('sh', ['-c', 'command -v nats-server'], { encoding: 'utf8' });
  if (which.status === 0 && which.stdout.trim()) return which.stdout.trim();
  throw new Error(`nats-server not found: run \`npm run setup\` (it fetches the upstream server into ${cachedNatsServer()}), ` +
    'or point NATS_SERVER_BIN at a nats-server binary, or pass --nats URL of a running server');
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** A plain (insecure) server: only for `--insecure` runs and tests of the opt-out itself. */
export async function startLocalNats(options: { maxPayload?: number } = {}): Promise<LocalNats> {
  const port = await freePort();
  // A config file rather than flags: max_payload can only be set there.
  const dir = mkdtempSync(join(tmpdir(), 'secflow-nats-'));
  const file = join(dir, 'nats.conf');
  writeFileSync(file, `listen: 127.0.0.1:${port}\n` + (options.maxPayload ? `max_payload: ${options.maxPayload}\n` : ''));
  return startNatsServer(file, dir, port, `nats://127.0.0.1:${port}`);
}

/** Starts nats-server on a config file, from `cwd` (a provisioned config's paths are relative to its folder). */
export async function startNatsServer(configFile: string, cwd: string, port: number, url: string): Promise<LocalNats> {
  const child: ChildProcess = spawn(findNatsServer(), ['-c', configFile], { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  return waitUntilListening(child, port, url);
}

async function waitUntilListening(child: ChildProcess, port: number, url: string): Promise<LocalNats> {
  let stderr = '';
  child.stderr?.on('data', (d) => { stderr = (stderr + d).slice(-4000); }); // the tail, for errors; never blocks the pipe
  const deadline = Date.now() + 10_000;
  while (!(await canConnect(port))) {
    if (child.exitCode !== null) throw new Error(`nats-server exited (${child.exitCode}): ${stderr.trim()}`);
    if (Date.now() > deadline) { child.kill('SIGKILL'); throw new Error(`nats-server did not listen on port ${port}: ${stderr.trim()}`); }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url,
    port,
    reload: () => { child.kill('SIGHUP'); },
    stop: () => stopProcess(child),
  };
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tcpConnect(port, '127.0.0.1');
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('error', () => resolve(false));
  });
}

/** SIGTERM, then SIGKILL if the process is still there after a grace period. */
export async function stopProcess(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}
