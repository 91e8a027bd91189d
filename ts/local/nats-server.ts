/**
 * Starts a private nats-server on a free loopback port, for the demo and the tests. Only loopback: a
 * local federation must never listen on the network.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, connect as tcpConnect } from 'node:net';

export interface LocalNats { url: string; port: number; stop(): Promise<void> }

export function findNatsServer(): string {
  for (const candidate of [process.env.NATS_SERVER_BIN, '/usr/sbin/nats-server', '/usr/bin/nats-server', '/usr/local/bin/nats-server']) {
    if (candidate && existsSync(candidate)) return candidate;
  }
  const which = spawnSync('sh', ['-c', 'command -v nats-server'], { encoding: 'utf8' });
  if (which.status === 0 && which.stdout.trim()) return which.stdout.trim();
  throw new Error('nats-server is not installed. Install it with: sudo apt-get update && sudo apt-get install -y nats-server ' +
    '(or point NATS_SERVER_BIN at a nats-server binary, or pass --nats URL of a running server)');
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

export async function startLocalNats(options: { maxPayload?: number } = {}): Promise<LocalNats> {
  const bin = findNatsServer();
  const port = await freePort();
  // A config file rather than flags: max_payload can only be set there.
  const file = join(mkdtempSync(join(tmpdir(), 'secflow-nats-')), 'nats.conf');
  writeFileSync(file, `listen: 127.0.0.1:${port}\n` + (options.maxPayload ? `max_payload: ${options.maxPayload}\n` : ''));
  const child: ChildProcess = spawn(bin, ['-c', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  return waitUntilListening(child, port);
}

async function waitUntilListening(child: ChildProcess, port: number): Promise<LocalNats> {
  let stderr = '';
  child.stderr?.on('data', (d) => { stderr += d; });
  const deadline = Date.now() + 10_000;
  while (!(await canConnect(port))) {
    if (child.exitCode !== null) throw new Error(`nats-server exited (${child.exitCode}): ${stderr.trim()}`);
    if (Date.now() > deadline) { child.kill('SIGKILL'); throw new Error(`nats-server did not listen on port ${port}: ${stderr.trim()}`); }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
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
