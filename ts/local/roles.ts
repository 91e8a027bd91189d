/** Starting director and envoys as separate `secflow` processes on this machine (demo, tests, bench). */
import { cpus } from 'node:os';
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stopProcess } from './nats-server.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const SECFLOW_BIN = join(ROOT, 'bin', 'secflow');

export interface RoleProcess { name: string; child: ChildProcess; stop(): Promise<void> }

/** Runs `secflow <args>` with its output appended to logFile. */
export function spawnRole(name: string, args: string[], logFile: string, env: NodeJS.ProcessEnv = {}): RoleProcess {
  return spawnLogged(name, SECFLOW_BIN, args, logFile, env, undefined);
}

/**
 * TensorFlow thread pools for `processes` TensorFlow processes on this one machine: the cores shared out, at least
 * one thread each, unless the environment already says. Left to itself every process starts pools as large as
 * the machine; three DP-SGD envoys on 2 cores then starved the director so long (over 10 s) that it declared them
 * silent mid-round, and trained slower too (bench/RESULTS.md, "Clinical utility").
 */
export function sharedMachineThreads(processes: number): NodeJS.ProcessEnv {
  const threads = String(Math.max(1, Math.floor(cpus().length / Math.max(1, processes))));
  return {
    TF_NUM_INTRAOP_THREADS: process.env.TF_NUM_INTRAOP_THREADS ?? threads,
    TF_NUM_INTEROP_THREADS: process.env.TF_NUM_INTEROP_THREADS ?? threads,
  };
}

/** Runs a TypeScript script of this repository under Node with tsx (test and bench helpers, e.g. a hostile envoy). */
export function spawnScript(name: string, script: string, args: string[], logFile: string, env: NodeJS.ProcessEnv = {}): RoleProcess {
  // From the repository, where `--import tsx` resolves.
  return spawnLogged(name, process.execPath, ['--import', 'tsx', join(ROOT, script), ...args], logFile, env, ROOT);
}

function spawnLogged(name: string, command: string, args: string[], logFile: string, env: NodeJS.ProcessEnv, cwd: string | undefined): RoleProcess {
  const log = createWriteStream(logFile, { flags: 'a' });
  const child = spawn(command, args, {
    cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '2', ...env },
  });
  child.stdout!.pipe(log, { end: false });
  child.stderr!.pipe(log, { end: false });
  child.once('exit', () => log.end());
  return { name, child, stop: () => stopProcess(child) };
}

/** Resolves when a line matching `pattern` appears in the process output. */
export async function waitForOutput(role: RoleProcess, pattern: RegExp, timeoutMs = 120_000): Promise<string> {
  return (await waitForOutputs(role, [pattern], timeoutMs))[0];
}

/** Resolves once the role has printed a line matching each pattern (in any order), with those lines. One listener, however many patterns. */
export function waitForOutputs(role: RoleProcess, patterns: RegExp[], timeoutMs = 120_000): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const found: (string | undefined)[] = patterns.map(() => undefined);
    let pending = patterns.length;
    let tail = '';
    // Lines are split per stream: a partial stdout line must not join a stderr chunk.
    const reader = () => {
      let partial = '';
      return (d: Buffer) => {
        tail = (tail + d.toString()).slice(-2000);
        const lines = (partial + d.toString()).split('\n');
        partial = lines.pop()!;
        for (const line of lines) {
          patterns.forEach((p, i) => { if (found[i] === undefined && p.test(line)) { found[i] = line; pending--; } });
        }
        if (pending === 0) { cleanup(); resolve(found as string[]); }
      };
    };
    const onStdout = reader();
    const onStderr = reader();
    const missing = () => patterns.filter((_, i) => found[i] === undefined).slice(0, 5).join(', ');
    const onExit = (code: number | null) => { cleanup(); reject(new Error(`${role.name} exited (${code}) before printing ${missing()}:\n${tail}`)); };
    const timer = setTimeout(() => { cleanup(); reject(new Error(`${role.name} did not print ${missing()} within ${timeoutMs} ms:\n${tail}`)); }, timeoutMs);
    const cleanup = () => {
      clearTimeout(timer);
      role.child.stdout!.off('data', onStdout);
      role.child.stderr!.off('data', onStderr);
      role.child.off('exit', onExit);
    };
    role.child.stdout!.on('data', onStdout);
    role.child.stderr!.on('data', onStderr);
    role.child.once('exit', onExit);
  });
}
