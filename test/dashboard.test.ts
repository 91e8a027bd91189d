/**
 * The director's live dashboard, in a real provisioned federation and a real headless browser (Playwright
 * driving Debian's chromium, which .ci/run installs; skipped with a note where no chromium is installed).
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { ACCESS_FILE } from '../ts/dashboard/access.ts';
import { SECFLOW_BIN, waitForOutput } from '../ts/local/roles.ts';
import { startTestFederation, type TestFederation } from './helpers/federation.ts';
import { tempDir } from './helpers/paths.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ROUNDS = 5;
let fed: TestFederation;
let accessUrl: string;

/** A real (tiny) leakage audit, for the dashboard's audit section: one configuration, one round, a short IG. */
function runTinyAudit(): string {
  const out = tempDir('secflow-dashboard-audit-');
  const config = join(out, 'audit.yaml');
  writeFileSync(config, stringify({
    name: 'dashboard-audit', out, envoys: 2, rounds: 1, train_limit: 300, test_limit: 100, model: { width: 4, seed: 1 },
    attacks: [{ attack: 'ig', iterations: 30 }], configurations: [{ name: 'none', description: 'no defense' }],
  }));
  const r = spawnSync(SECFLOW_BIN, ['leakage', 'audit', '--config', config], { encoding: 'utf8', timeout: 600_000 });
  if (r.status !== 0) throw new Error(`the audit failed: ${r.stderr.slice(-2000)}`);
  return out;
}

test.before(async () => {
  const audit = runTinyAudit();
  fed = await startTestFederation({
    envoys: ['alpha', 'beta', 'gamma'], dashboard: { auditReports: [audit] }, trainLimit: 1200,
    experiment: {
      name: 'live', rounds: ROUNDS, min_envoys_to_start: 3, model: { width: 4, seed: 1 },
      training: { learning_rate: 0.003, batch_size: 32, local_epochs: 2 }, aggregation: { min_envoys: 2 },
    },
  });
  accessUrl = readFileSync(join(fed.files.workspace, ACCESS_FILE), 'utf8').trim();
});
test.after.always(() => fed?.stop());

test.serial('the dashboard binds to loopback, needs its token and only answers reads', async (t) => {
  t.regex(fed.dashboard!, /^http:\/\/127\.0\.0\.1:\d+\/$/);
  t.is(statSync(join(fed.files.workspace, ACCESS_FILE)).mode & 0o777, 0o600);
  const token = new URL(accessUrl).searchParams.get('token')!;
  t.true(token.length >= 40);
  t.false(fed.log('director').includes(token), 'the token is never logged');

  const refused = await fetch(new URL('api/snapshot', fed.dashboard));
  t.is(refused.status, 401);
  t.regex(await refused.text(), new RegExp(ACCESS_FILE));
  t.is((await fetch(new URL('api/snapshot', fed.dashboard), { headers: { authorization: 'Bearer wrong-token' } })).status, 401);

  const page = await fetch(accessUrl);
  t.is(page.status, 200);
  t.regex(page.headers.get('set-cookie') ?? '', /^secflow_dashboard=.*HttpOnly; SameSite=Strict/);
  t.regex(page.headers.get('content-security-policy') ?? '', /script-src 'self'/);
  const auth = { authorization: `Bearer ${token}` };
  const snapshot = await (await fetch(new URL('api/snapshot', fed.dashboard), { headers: auth })).json();
  t.deepEqual(snapshot.status.envoys.map((e: { name: string }) => e.name).sort(), ['alpha', 'beta', 'gamma']);
  t.is((await fetch(new URL('api/snapshot', fed.dashboard), { method: 'POST', headers: auth, body: '{}' })).status, 404, 'no write route');
  for (const escape of ['..%2F..%2Fkits%2Fdirector%2Fkit.png', '..%2Fconfigs%2Fdirector.yaml', 'config.yaml']) {
    t.is((await fetch(new URL(`api/experiments/live/files/${escape}`, fed.dashboard), { headers: auth })).status, 404, escape);
  }
  t.is((await fetch(new URL('api/audits/0/files/audit.json', fed.dashboard), { headers: auth })).status, 404, 'pictures only');
  t.is((await fetch(new URL('api/audits/7/files/scatter.png', fed.dashboard), { headers: auth })).status, 404, 'no such audit');
  const scatter = await fetch(new URL('api/audits/0/files/scatter.png', fed.dashboard), { headers: auth });
  t.is(scatter.status, 200);
  t.is(scatter.headers.get('content-type'), 'image/png');
});

const browserTest = existsSync(CHROMIUM) ? test.serial : test.serial.skip;
if (!existsSync(CHROMIUM)) console.warn(`dashboard browser test skipped: no chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`);

browserTest('in a browser: envoys online, the curves grow while rounds finish, a dropout is shown with its reason, no console errors', async (t) => {
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  t.teardown(() => browser.close());
  const page = await browser.newPage();
  const problems: string[] = [];
  page.on('console', (m) => { if (m.type() === 'error') problems.push(m.text()); });
  page.on('pageerror', (e) => problems.push(e.message));
  await page.goto(accessUrl);
  await page.waitForSelector('#envoys tbody tr[data-envoy="gamma"]');
  t.false(page.url().includes('token='), 'the token leaves the address bar');
  t.regex(await page.locator('#envoys tbody').innerText(), /alpha\s+online[\s\S]*beta\s+online[\s\S]*gamma\s+online/);
  t.regex(await page.locator('#protection').innerText(), /TLS/);
  // The audit's table, its scatter and its reconstruction grid, loaded as images.
  await page.waitForSelector('#audits .audit img');
  t.regex(await page.locator('#audits').innerText(), /dashboard-audit[\s\S]*none\s+0\.\d{3}\s+-?\d+\.\d{2}\s+ig/);
  const loaded = await page.locator('#audits img').evaluateAll((imgs) => imgs.map((i) => (i as HTMLImageElement).naturalWidth > 0));
  t.true(loaded.length >= 2 && loaded.every(Boolean), `scatter and grid shown (${loaded})`);

  const seen = new Set<number>();
  const gamma = fed.envoys.get('gamma')!;
  void waitForOutput(gamma, /round 2 training/).then(() => gamma.child.kill('SIGKILL'));
  const running = fed.run();
  const watch = setInterval(() => {
    void page.locator('#chart-test').getAttribute('data-points').then((n) => { if (n !== null) seen.add(Number(n)); }, () => {});
  }, 300);
  const { final } = await running;
  t.is(final.type, 'finished');
  await page.waitForFunction((rounds) => document.querySelector('#chart-test')?.getAttribute('data-points') === String(rounds), ROUNDS, { timeout: 20_000 });
  clearInterval(watch);
  t.true([...seen].some((n) => n > 0 && n < ROUNDS), `the page showed a partial curve while the run went on (saw ${[...seen].sort()})`);
  await page.waitForFunction((rounds) => document.querySelector('#progress-text')?.textContent === `finished: ${rounds} of ${rounds} rounds`, ROUNDS, { timeout: 20_000 });
  t.regex(await page.locator('#protections').innerText(), /secure aggregation: off/);
  t.regex(await page.locator('#incidents').innerText(), /live, round 2: dropped out: gamma/);
  t.regex(await page.locator('#envoys tr[data-envoy="gamma"]').innerText(), /gone/);
  t.regex(await page.locator('#summary').innerText(), /latest test \(round 5\): ROC-AUC 0\.\d{3}/);
  t.is(await page.locator('#experiment').inputValue(), 'live');
  t.deepEqual(problems, []);
});
