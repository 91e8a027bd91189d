import test from 'ava';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tf } from '../ts/core/tf.ts';
import { writeGrid } from '../ts/leakage/grid.ts';
import { csvCell, svgToPng, writeAuditTables, writeHtmlReport, writeScatter } from '../ts/leakage/audit/report.ts';
import { niceTicks } from '../ts/leakage/audit/svg-scatter.ts';
import { runAudit } from '../ts/leakage/audit/cli-run.ts';
import { AuditSweepSchema } from '../ts/leakage/audit/config.ts';
import type { AttackScore, AuditResults, ConfigurationResult } from '../ts/leakage/audit/results.ts';
import { PNEUMONIAMNIST, tempDir } from './helpers/paths.ts';

// Spelled out rather than imported, so renaming or reordering a column fails here.
const HEADER = 'name,envoys,rounds,roc_auc,accuracy,sensitivity,specificity,dp_epsilon,psnr_mean,psnr_worst_case,' +
  'ssim_mean,ssim_worst_case,psnr_gap_max_db,psnr_gap_mean_db,worst_gap_db,worst_attack,gradient_matching_gap_max_db,default_policy_round,default_policy_probe';
const EVIL = 'precode <script>alert(1)</script>';

function attack(round: number, grid?: string): AttackScore {
  return { attack: 'ig', round, envoys: ['hospital-a'], psnr: [21.5, 24.25], ssim: [0.41, 0.62], floor_psnr: [19, 20.5], floor_ssim: [0.38, 0.44], ...(grid ? { grid } : {}) };
}

/** A configuration whose gradient matching (IG) reached `gap`, and the analytic attack `analytic` when given. */
function configuration(name: string, utility: ConfigurationResult['utility'], gap: number, extra: Partial<ConfigurationResult> = {}, analytic?: number): ConfigurationResult {
  const worst = Math.max(gap, analytic ?? -Infinity);
  return {
    name, description: `synthetic ${name}`, defenses: {}, envoys: 3, rounds: 2, utility, attacks: [attack(1)],
    leakage: { psnr_mean: 22.875, psnr_worst_case: 24.25, ssim_mean: 0.515, ssim_worst_case: 0.62, psnr_gap_max_db: worst, psnr_gap_mean_db: gap / 2 },
    worst_gap_db: worst, worst_attack: analytic !== undefined && analytic > gap ? 'analytic' : 'ig',
    by_attack: { ig: { psnr_gap_max_db: gap, psnr_worst_case: 24.25 }, ...(analytic !== undefined ? { analytic: { psnr_gap_max_db: analytic, psnr_worst_case: 31 } } : {}) },
    round_winners: [{ round: 1, attack: analytic !== undefined && analytic > gap ? 'analytic' : 'ig', gap_db: worst }],
    run_dir: `/runs/${name}`, seconds: 61, ...extra,
  };
}

/** Three configurations: an undefended baseline with a real grid, DP meeting the target, PRECODE broken by the analytic attack. */
function synthetic(): AuditResults {
  return {
    sweep: 'unit-sweep', created_at: '2025-01-02T03:04:05Z', data: '../shared/data/pneumoniamnist.npz',
    configurations: [
      configuration('baseline', { roc_auc: 0.9512, accuracy: 0.875, sensitivity: 0.91, specificity: 0.8 }, 23.4,
        { attacks: [attack(1, 'grids/baseline-ig-r1.png'), attack(2, 'grids/missing.png')], default_policy: { round: 'refused (secure_aggregation.required)', probe: 'refused (allow_probes)' } }),
      configuration('dp, "eps 8"', { roc_auc: 0.8817, accuracy: 0.81, sensitivity: 0.95, specificity: 0.6 }, 0.6,
        { dp_epsilon: 7.93, defenses: { dp: { enabled: true, noise_multiplier: 1.1 } } }),
      configuration(EVIL, { roc_auc: 0.9301, accuracy: 0.86, sensitivity: 0.9, specificity: 0.78 }, 0.3,
        { defenses: { precode: { enabled: true, beta: 0.001 } } }, 9.5),
    ],
  };
}

/** Writes the synthetic results, a real 2x3 grid PNG under outDir/grids, and all three outputs. */
async function writeAll() {
  const dir = tempDir('secflow-audit-report-');
  const results = synthetic();
  const img = (v: number) => Float32Array.from({ length: 28 * 28 }, (_, i) => ((i % 28) / 28 + v) % 1);
  mkdirSync(join(dir, 'grids'));
  await writeGrid(join(dir, 'grids', 'baseline-ig-r1.png'), [[img(0), img(0.3), img(0.6)], [img(0.1), img(0.2), img(0.9)]], [28, 28, 1]);
  const tables = writeAuditTables(results, dir);
  const scatter = writeScatter(results, join(dir, 'scatter.png'));
  const html = writeHtmlReport(results, dir, scatter.svg);
  return { dir, results, tables, scatter, html };
}

/** RFC 4180 records (quoted fields may hold commas, doubled quotes and line breaks). */
function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let field = '';
  let record: string[] = [];
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') { field += '"'; i++; }
      else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') { record.push(field); field = ''; }
    else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i++;
      record.push(field); records.push(record); field = ''; record = [];
    } else field += ch;
  }
  if (field || record.length) { record.push(field); records.push(record); }
  return records;
}

function pngSize(png: Buffer): { width: number; height: number } {
  return { width: png.readUInt32BE(16), height: png.readUInt32BE(20) };
}

async function pixels(png: Buffer): Promise<Uint8Array> {
  const node = (tf as unknown as { node: { decodePng: (b: Uint8Array, channels: number) => import('@tensorflow/tfjs').Tensor3D } }).node;
  const image = node.decodePng(png, 3);
  const data = Uint8Array.from(await image.data());
  image.dispose();
  return data;
}

/** How many pixels are within a few levels of an RGB colour (antialiasing blurs edges, not centres). */
function countColour(rgb: Uint8Array, [r, g, b]: [number, number, number]): number {
  let n = 0;
  for (let i = 0; i < rgb.length; i += 3) if (Math.abs(rgb[i] - r) + Math.abs(rgb[i + 1] - g) + Math.abs(rgb[i + 2] - b) < 12) n++;
  return n;
}

test('audit.csv: the header and one row per configuration, numbers and quoted names read back exactly', async (t) => {
  const { tables, results } = await writeAll();
  const [header, ...rows] = parseCsv(readFileSync(tables.csv, 'utf8'));
  t.is(header.join(','), HEADER);
  t.is(rows.length, 3);
  const cell = (row: string[], column: string) => row[header.indexOf(column)];
  results.configurations.forEach((c, i) => {
    t.is(cell(rows[i], 'name'), c.name);
    t.is(Number(cell(rows[i], 'roc_auc')), c.utility.roc_auc);
    t.is(Number(cell(rows[i], 'specificity')), c.utility.specificity);
    t.is(Number(cell(rows[i], 'psnr_gap_max_db')), c.leakage.psnr_gap_max_db);
    t.is(Number(cell(rows[i], 'psnr_gap_mean_db')), c.leakage.psnr_gap_mean_db);
    t.is(Number(cell(rows[i], 'rounds')), 2);
  });
  t.deepEqual(rows.map((r) => cell(r, 'dp_epsilon')), ['', '7.93', '']);
  t.deepEqual(rows.map((r) => cell(r, 'worst_gap_db')), ['23.4', '0.6', '9.5'], 'the worst case over every attack');
  t.deepEqual(rows.map((r) => cell(r, 'worst_attack')), ['ig', 'ig', 'analytic']);
  t.deepEqual(rows.map((r) => cell(r, 'gradient_matching_gap_max_db')), ['23.4', '0.6', '0.3']);
  t.deepEqual(JSON.parse(readFileSync(tables.json, 'utf8')), results);
});

test('CSV cells: commas, quotes and line breaks are quoted, quotes doubled, absent values empty', (t) => {
  t.is(csvCell('plain'), 'plain');
  t.is(csvCell('a,"b"\nc'), '"a,""b""\nc"');
  t.is(csvCell(0.125), '0.125');
  t.is(csvCell(undefined), '');
});

test('scatter PNG: 2x the SVG size, with the points drawn in their colours', async (t) => {
  const { scatter } = await writeAll();
  const png = readFileSync(scatter.png);
  t.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  t.deepEqual(pngSize(png), { width: 1800, height: 1120 });
  const rgb = await pixels(png);
  // A red point (misses the target: baseline, PRECODE under the analytic attack) and a green one (DP).
  t.true(countColour(rgb, [0xc0, 0x39, 0x2b]) > 300, 'red points');
  t.true(countColour(rgb, [0x1a, 0x7f, 0x37]) > 100, 'green point');
  t.true(countColour(rgb, [255, 255, 255]) < rgb.length / 3 - 1000, 'not blank');
  t.regex(scatter.svg, /<svg[^>]*width="900" height="560"/);
  t.is(scatter.svg.match(/class="point"/g)?.length, 3);
  t.false(scatter.svg.includes('<script>'));
});

test('scatter text renders: a font is found for the labels', (t) => {
  // resvg drops text it has no font for without an error; a text-only picture must not come out blank.
  const svg = '<svg xmlns="http://www.w3.org/2000/svg" width="200" height="40"><rect width="200" height="40" fill="white"/>' +
    '<text x="10" y="28" font-family="\'DejaVu Sans\', sans-serif" font-size="20">gap ≤ 1 dB</text></svg>';
  return pixels(svgToPng(svg, 1)).then((rgb) => t.true(countColour(rgb, [255, 255, 255]) < 200 * 40 - 200));
});

test('report.html: every configuration, escaped names, the inline scatter, the grid as a data: URI, missing grid noted', async (t) => {
  const { html, dir } = await writeAll();
  const page = readFileSync(html, 'utf8');
  t.true(page.includes('<h3>baseline</h3>'));
  t.true(page.includes('<h3>dp, &quot;eps 8&quot;</h3>'));
  t.true(page.includes('<h3>precode &lt;script&gt;alert(1)&lt;/script&gt;</h3>'));
  t.false(page.includes('<script>'), 'no raw <script> from the data');
  t.regex(page, /<svg xmlns="http:\/\/www.w3.org\/2000\/svg"[^>]*>[\s\S]*class="point"[\s\S]*<\/svg>/);
  const grid = readFileSync(join(dir, 'grids', 'baseline-ig-r1.png')).toString('base64');
  t.true(page.includes(`src="data:image/png;base64,${grid}"`));
  t.regex(page, /grids\/missing\.png<\/code>[^<]*was not found/);
  t.true(page.includes('2025-01-02T03:04:05Z') && page.includes('../shared/data/pneumoniamnist.npz'));
  // Highlighted: DP (0.6 dB) only; PRECODE's 0.3 dB under IG does not count, the analytic attack reached 9.5 dB.
  t.is(page.match(/<tr class="meets">/g)?.length, 1);
  t.regex(page, /<tr class="meets"><td class="text"><a [^>]*>dp, &quot;eps 8&quot;<\/a>/);
  t.true(page.includes('<td>7.93</td>'), 'DP epsilon');
  t.true(page.includes('<td class="bad">9.50</td><td class="text">analytic</td><td class="text">r1: 9.5 analytic</td><td>0.30</td>'),
    'the worst gap is flagged and names the attack that won, per round too');
  t.true(page.includes('<td class="text">refused (secure_aggregation.required) / refused (allow_probes)</td>'), 'what a default envoy would do');
  // Per-round scores: best gap of the probe images is 24.25 - 20.5 = 3.75 dB (one image each: chance scores 0).
  t.regex(page, /<td>2<\/td><td class="text">ig<\/td><td class="text">hospital-a<\/td><td>2<\/td><td>22.88<\/td><td>24.25<\/td><td>19.75<\/td><td>0.00<\/td><td class="bad">3.75<\/td>/);
  t.true(page.includes('<b>Batches and chance.</b>'), 'the report says why a batch\'s worst case is counted over chance');
});

/** A sweep into `dir` that runs no configuration of its own (no federation): only what it keeps is reported. */
function emptySweep(dir: string) {
  return { ...AuditSweepSchema.parse({ out: dir, data: PNEUMONIAMNIST }), configurations: [] };
}

test('keep: the rows an earlier sweep wrote into the folder stay in audit.json, the CSV and the report; without it they go', async (t) => {
  const { dir } = await writeAll();
  const said: string[] = [];
  const kept = await runAudit(emptySweep(dir), undefined, (line) => said.push(line), { keep: true });
  const names = (JSON.parse(readFileSync(kept.json, 'utf8')) as AuditResults).configurations.map((c) => c.name);
  t.deepEqual(names, ['baseline', 'dp, "eps 8"', EVIL]);
  t.is(readFileSync(kept.csv, 'utf8').trim().split('\n').length, 4, 'header and three rows');
  t.true(readFileSync(kept.html, 'utf8').includes('<h3>baseline</h3>'));
  t.true(said.some((line) => line.includes('kept from') && line.includes('baseline')), said.join('\n'));
  const fresh = await runAudit(emptySweep(dir), undefined, () => {});
  t.deepEqual((JSON.parse(readFileSync(fresh.json, 'utf8')) as AuditResults).configurations, []);
});

test('keep: an unreadable audit.json is named, and nothing is overwritten', async (t) => {
  const dir = tempDir('secflow-audit-report-');
  writeFileSync(join(dir, 'audit.json'), '{"configurations": [');
  const error = await t.throwsAsync(runAudit(emptySweep(dir), undefined, () => {}, { keep: true }));
  t.true(error!.message.includes(join(dir, 'audit.json')) && error!.message.includes('not readable'), error!.message);
  t.is(readFileSync(join(dir, 'audit.json'), 'utf8'), '{"configurations": [');
});

test('nice ticks: steps of 1, 2 or 5, inside the axis, without float noise', (t) => {
  t.deepEqual(niceTicks(-1.5, 26, 8).values, [0, 5, 10, 15, 20, 25]);
  t.deepEqual(niceTicks(0.86, 0.97, 6).values, [0.86, 0.88, 0.9, 0.92, 0.94, 0.96]);
  t.deepEqual(niceTicks(0, 1, 5).values, [0, 0.2, 0.4, 0.6, 0.8, 1]);
  t.true(niceTicks(3, 3, 4).values.includes(3), 'a one-value axis still has a tick at the value');
});
