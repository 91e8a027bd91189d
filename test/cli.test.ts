/** The secflow command as a user meets it: help, config errors, data fetch against a local HTTP server. */
import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { SECFLOW_BIN } from '../ts/local/roles.ts';
import { tempDir } from './helpers/paths.ts';

function secflow(...args: string[]) {
  const r = spawnSync(SECFLOW_BIN, args, { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('--help lists every role and command', (t) => {
  const r = secflow('--help');
  t.is(r.code, 0);
  for (const word of ['director', 'envoy', 'experiment', 'status', 'data']) t.true(r.out.includes(word), word);
  const sub = secflow('experiment', 'run', '--help');
  t.regex(sub.out, /--config <file>/);
});

test('a director config with a mistyped key stops with a message naming file and key', (t) => {
  const file = join(tempDir(), 'director.yaml');
  writeFileSync(file, 'federation: f\nworkspce: runs\n');
  const r = secflow('director', 'start', '--config', file);
  t.is(r.code, 1);
  t.true(r.err.includes(file));
  t.regex(r.err, /Unrecognized key.*'workspce'/);
});

test('an envoy whose data file is missing stops with a clear message', (t) => {
  const file = join(tempDir(), 'envoy.yaml');
  writeFileSync(file, 'name: a\nfederation: f\ninsecure: true\nshard:\n  train: {kind: pneumoniamnist, path: missing.npz, split: train}\n');
  const r = secflow('envoy', 'start', '--config', file);
  t.is(r.code, 1);
  t.regex(r.err, /missing\.npz: file not found/);
});

test('experiment run without a federation says how to name one', (t) => {
  const file = join(tempDir(), 'experiment.yaml');
  writeFileSync(file, 'name: x\nrounds: 1\n');
  const r = secflow('experiment', 'run', '--config', file);
  t.is(r.code, 1);
  t.regex(r.err, /say who you are: --kit <your data scientist kit>/);
});

test('a role config with neither a kit nor insecure: true says how to get a kit', (t) => {
  const file = join(tempDir(), 'envoy.yaml');
  writeFileSync(file, 'name: a\nfederation: f\nshard:\n  train: {kind: pneumoniamnist, path: p.npz, split: train}\n');
  const r = secflow('envoy', 'start', '--config', file);
  t.is(r.code, 1);
  t.regex(r.err, /kit: no startup kit: set kit: to the folder `secflow provision` made for this participant, or insecure: true/);
});

test('an insecure role prints the warning every time it starts', (t) => {
  const file = join(tempDir(), 'director.yaml');
  writeFileSync(file, 'federation: f\ninsecure: true\nnats: {url: "nats://127.0.0.1:9"}\n');
  const r = spawnSync(SECFLOW_BIN, ['director', 'start', '--config', file], { encoding: 'utf8', timeout: 60_000 });
  t.regex(r.stderr, /INSECURE MODE: TLS, authentication and message signatures are OFF/);
});

test('provision writes a CA, a server config and one kit per participant, private files 0600', (t) => {
  const dir = tempDir();
  const config = join(dir, 'federation.yaml');
  writeFileSync(config, 'federation: clinic\nnats: {url: "tls://fl.example.org:4222", listen: "0.0.0.0:4222"}\nenvoys:\n  - {name: hospital-a}\n  - {name: hospital-b, max_examples: 900}\nscientists: [{name: alice}]\n');
  const r = secflow('provision', '--config', config, '--out', join(dir, 'kits'));
  t.is(r.code, 0, r.err);
  for (const who of ['director', 'hospital-a', 'hospital-b', 'alice']) t.regex(r.out, new RegExp(`${who}\\s+${join(dir, 'kits', who)}`));
  for (const file of ['tls.key', 'nats.nk', 'signing.key', 'sealing.key']) {
    t.is(statSync(join(dir, 'kits', 'hospital-a', file)).mode & 0o777, 0o600, file);
  }
  t.is(statSync(join(dir, 'kits', 'provisioner', 'ca.key')).mode & 0o777, 0o600);
  t.is(statSync(join(dir, 'kits', 'nats-server', 'server.key')).mode & 0o777, 0o600);
  const server = readFileSync(join(dir, 'kits', 'nats-server', 'nats-server.conf'), 'utf8');
  t.regex(server, /listen: "0\.0\.0\.0:4222"/);
  t.regex(server, /verify: true/);
  t.is((server.match(/nkey: "U/g) ?? []).length, 4);
  t.regex(readFileSync(join(dir, 'kits', 'hospital-a', 'envoy.yaml'), 'utf8'), /Fill in shard[\s\S]*kit: \.\n[\s\S]*REPLACE-WITH/);
  const again = secflow('provision', '--config', config, '--out', join(dir, 'kits'));
  t.is(again.code, 1);
  t.regex(again.err, /already holds a provisioned federation/);
  const added = secflow('provision', 'add-envoy', '--kits', join(dir, 'kits'), '--name', 'hospital-c');
  t.is(added.code, 0, added.err);
  t.regex(added.out, /roster version 2/);
  const bad = secflow('provision', 'add-envoy', '--kits', join(dir, 'kits'), '--name', 'hospital.d');
  t.is(bad.code, 1);
  t.regex(bad.err, /envoy name "hospital\.d" is not a valid name/);
  const revoked = secflow('provision', 'revoke', '--kits', join(dir, 'kits'), '--name', 'hospital-b');
  t.is(revoked.code, 0, revoked.err);
  t.regex(revoked.out, /roster version 3/);
  t.is((readFileSync(join(dir, 'kits', 'nats-server', 'nats-server.conf'), 'utf8').match(/nkey: "U/g) ?? []).length, 4, 'c in, b out');
});

function secflowAsync(...args: string[]): Promise<{ status: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(SECFLOW_BIN, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('exit', (status) => resolve({ status, stderr }));
  });
}

async function serveBytes(bytes: Buffer): Promise<{ url: string; server: Server }> {
  const server = createServer((_, res) => { res.setHeader('content-length', bytes.length); res.end(bytes); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}/pneumoniamnist.npz`, server };
}

test('data fetch saves a download whose MD5 matches, and refuses one that does not', async (t) => {
  const bytes = Buffer.from('pretend this is an npz file '.repeat(1000));
  const md5 = createHash('md5').update(bytes).digest('hex');
  const { url, server } = await serveBytes(bytes);
  t.teardown(() => server.close());
  const dir = tempDir();
  const good = join(dir, 'good.npz');
  // The HTTP server lives in this process: run secflow asynchronously so the server can answer.
  const ok = await secflowAsync('data', 'fetch', '--dest', good, '--url', url, '--md5', md5);
  t.is(ok.status, 0, ok.stderr);
  t.true(readFileSync(good).equals(bytes));
  const bad = join(dir, 'bad.npz');
  const refused = await secflowAsync('data', 'fetch', '--dest', bad, '--url', url, '--md5', '0'.repeat(32));
  t.is(refused.status, 1);
  t.regex(refused.stderr, /has MD5 [0-9a-f]{32}, expected 0{32}: incomplete or altered, not saved/);
  t.false(existsSync(bad));
});

test('data fetch without a network fails with a hint instead of a stack trace', (t) => {
  const r = spawnSync(SECFLOW_BIN, ['data', 'fetch', '--dest', join(tempDir(), 'x.npz'), '--url', 'http://127.0.0.1:9/none'], { encoding: 'utf8' });
  t.is(r.status, 1);
  t.regex(r.stderr, /cannot download http:\/\/127\.0\.0\.1:9\/none/);
  t.notRegex(r.stderr, /at .*\.ts:\d+/);
});
