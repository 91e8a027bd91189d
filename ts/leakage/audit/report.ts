/**
 * The privacy–utility audit's outputs (issue 5), for a reader who did not run the sweep:
 *   audit.json / audit.csv  the results, whole and as one row per configuration;
 *   scatter PNG             utility against leakage, rasterized from svg-scatter.ts's SVG by resvg;
 *   report.html             one self-contained file: explanation, table, inline scatter, per-round scores, grids.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, extname, join, resolve } from 'node:path';
import { Resvg } from '@resvg/resvg-js';
import { csvField } from '../../core/csv.ts';
import { gapOverChance, type AttackScore, type AuditResults, type ConfigurationResult } from './results.ts';
import { escapeXml as escapeHtml, gradientMatchingGapDb, meetsTarget, scatterSvg, TARGET_GAP_DB, worstGapDb } from './svg-scatter.ts';

export { scatterSvg } from './svg-scatter.ts';

// ---------------------------------------------------------------------------------------------- tables

export const CSV_COLUMNS = [
  'name', 'envoys', 'rounds', 'roc_auc', 'accuracy', 'sensitivity', 'specificity', 'dp_epsilon',
  'psnr_mean', 'psnr_worst_case', 'ssim_mean', 'ssim_worst_case', 'psnr_gap_max_db', 'psnr_gap_mean_db',
  'worst_gap_db', 'worst_attack', 'gradient_matching_gap_max_db', 'default_policy_round', 'default_policy_probe',
] as const;

type CsvColumn = (typeof CSV_COLUMNS)[number];

function csvRow(c: ConfigurationResult): Record<CsvColumn, string | number | undefined> {
  return {
    name: c.name, envoys: c.envoys, rounds: c.rounds, ...c.utility, dp_epsilon: c.dp_epsilon,
    psnr_mean: c.leakage.psnr_mean, psnr_worst_case: c.leakage.psnr_worst_case,
    ssim_mean: c.leakage.ssim_mean, ssim_worst_case: c.leakage.ssim_worst_case,
    psnr_gap_max_db: c.leakage.psnr_gap_max_db, psnr_gap_mean_db: c.leakage.psnr_gap_mean_db,
    worst_gap_db: worstGapDb(c), worst_attack: c.worst_attack, gradient_matching_gap_max_db: gradientMatchingGapDb(c),
    default_policy_round: c.default_policy?.round, default_policy_probe: c.default_policy?.probe,
  };
}

/** Numbers keep full precision here (the CSV is data, not a display). */
export const csvCell = csvField;

/** audit.json (the results as they are) and audit.csv (one row per configuration) in outDir. */
export function writeAuditTables(results: AuditResults, outDir: string): { json: string; csv: string } {
  mkdirSync(outDir, { recursive: true });
  const json = join(outDir, 'audit.json');
  const csv = join(outDir, 'audit.csv');
  writeFileSync(json, JSON.stringify(results, null, 2) + '\n');
  const rows = results.configurations.map((c, index) => {
    const row = csvRow(c);
    return CSV_COLUMNS.map((k) => csvCell(row[k])).join(',');
  });
  writeFileSync(csv, [CSV_COLUMNS.join(','), ...rows].join('\r\n') + '\r\n');
  return { json, csv };
}

// --------------------------------------------------------------------------------------------- scatter

/**
 * Font files handed to resvg explicitly: on a headless CI machine fontconfig may find nothing or pick a
 * face without the glyphs we use (≤, –, →), and resvg silently drops text it cannot shape. DejaVu is what
 * Debian/Ubuntu (fonts-dejavu-core), Fedora and Arch ship; system fonts stay loaded as the fallback.
 */
const FONT_CANDIDATES = [
  '/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf',
  '/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf',
  '/usr/share/fonts/dejavu/DejaVuSans.ttf',
  '/usr/share/fonts/dejavu/DejaVuSans-Bold.ttf',
  '/usr/share/fonts/TTF/DejaVuSans.ttf',
  '/usr/share/fonts/TTF/DejaVuSans-Bold.ttf',
];

export function scatterFontFiles(): string[] {
  const extra = process.env.SECFLOW_REPORT_FONT; // any .ttf/.otf a user wants instead
  return [...(extra ? [extra] : []), ...FONT_CANDIDATES].filter((f) => existsSync(f));
}

/** Rasterizes an SVG to PNG at `scale` times its size (2 = sharp on high-density screens and in print). */
export function svgToPng(svg: string, scale = 2): Buffer {
  const fontFiles = scatterFontFiles();
  const renderer = new Resvg(svg, {
    fitTo: { mode: 'zoom', value: scale },
    font: {
      fontFiles,
      loadSystemFonts: true,
      defaultFontFamily: fontFiles.length ? 'DejaVu Sans' : 'sans-serif',
      sansSerifFamily: fontFiles.length ? 'DejaVu Sans' : 'sans-serif',
    },
  });
  return renderer.render().asPng();
}

/** The utility–leakage scatter as a PNG at `path`; returns the SVG it was drawn from, for inlining. */
export function writeScatter(results: AuditResults, path: string, scale = 2): { png: string; svg: string } {
  const svg = scatterSvg(results);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, svgToPng(svg, scale));
  return { png: path, svg };
}

// ------------------------------------------------------------------------------------------------ HTML

const mean = (v: number[]) => (v.length ? v.reduce((a, b) => a + b, 0) / v.length : NaN);
const max = (v: number[]) => (v.length ? Math.max(...v) : NaN);

/** A number for people: fixed digits, or a dash when absent or not finite (JSON turns NaN into null). */
function fmt(v: number | null | undefined, digits: number): string {
  return typeof v === 'number' && Number.isFinite(v) ? v.toFixed(digits) : '—';
}

/** "precode: beta=0.001; secagg" from the experiment's YAML sections, leaving out disabled ones. */
export function describeDefenses(defenses: Record<string, unknown>): string {
  const parts = Object.entries(defenses).flatMap(([key, value]) => {
    if (value === undefined || value === null || value === false) return [];
    if (value === true) return [key];
    if (typeof value !== 'object') return [`${key}: ${String(value)}`];
    const settings = value as Record<string, unknown>;
    if (settings.enabled === false) return [];
    const shown = Object.entries(settings).filter(([k]) => k !== 'enabled').map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`);
    return [shown.length ? `${key}: ${shown.join(', ')}` : key];
  });
  return parts.length ? parts.join('; ') : 'none';
}

const STYLE = `
body { font-family: 'DejaVu Sans', Verdana, Arial, sans-serif; max-width: 1180px; margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { margin-top: 2em; border-bottom: 1px solid #ddd; } h3 { margin-top: 1.6em; }
.meta { color: #555; } .note { color: #8a5a00; } code { background: #f4f4f4; padding: 0 0.25em; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: 0.88em; margin: 0.6em 0; }
th, td { border: 1px solid #d0d0d0; padding: 0.25em 0.55em; text-align: right; white-space: nowrap; }
th { background: #f0f0f0; } td.text, th.text { text-align: left; white-space: normal; }
tr.meets td { background: #e6f4ea; } td.bad { color: #c0392b; font-weight: bold; }
figure { margin: 1em 0; } figure svg, figure img { max-width: 100%; height: auto; }
figure img.grid { image-rendering: pixelated; border: 1px solid #ddd; }
figcaption { font-size: 0.9em; color: #555; }
`;

function explanation(): string {
  return `
<h2>What was measured</h2>
<p><b>Threat model.</b> The director is honest but curious: it runs the federation as specified, but keeps
every model update it receives and runs gradient-inversion attacks on them to reconstruct the hospitals' chest
X-rays, using only what it legitimately knows (the weights it sent, the model and the training settings). To
measure the worst case, the audited experiments add <i>probe</i> updates: an envoy also trains on a single
image and sends that update, which is the easiest update to invert. With secure aggregation the director
receives only the sum of the envoys' updates, and that sum is what is attacked.</p>
<p><b>Two channels.</b> An update carries gradients and, for every batch-norm layer, the moving mean and
variance. After a step on one image those statistics are that image's per-layer feature means and
variances, and the attacks match them too (they pin down brightness and contrast, which training-mode batch
norm hides from the gradients). PRECODE perturbs the gradients only; <i>shard statistics</i>
(<code>training.batch_norm_statistics: shard</code>) replace the moving statistics by their values over the
envoy's whole shard, so they no longer depend on the images trained on, and the attacks then ignore them.
The sweep shows each alone and both together. Without the statistics, training-mode batch norm leaves an
image's brightness and contrast nearly invisible in the gradients: attacks then find the shapes but not the
intensities, and PSNR would call a structurally exact reconstruction harmless. So the attacker gives such
reconstructions the training set's average brightness and contrast (dataset knowledge, like the floor's mean
image) before they are scored.</p>
<p><b>Utility</b> is the final federated model on the held-out test set: ROC-AUC, accuracy, sensitivity (true
positive rate on pneumonia) and specificity (true negative rate on normal images).</p>
<p><b>Leakage</b> compares each reconstruction with the true image. PSNR (peak signal-to-noise ratio, in dB,
pixels in [0, 1]) is 10·log<sub>10</sub>(1/MSE): higher means closer. SSIM (structural similarity, at most 1
for identical images) compares local structure rather than single pixels.</p>
<p><b>The no-information floor.</b> A chest X-ray resembles every other chest X-ray, so even a guess that
knows nothing about the patient scores a fairly high PSNR. The floor is the score of the training-set mean
image against the same true image: what an attacker gets without any update at all. The <b>gap above the
floor</b> (reconstruction PSNR minus floor PSNR, per image) is what the update leaked; a gap at or below
0 dB means the attack did no better than the dataset average.</p>
<p><b>Batches and chance.</b> An attack on a batch (or a secure sum) returns one image per true image, in no
particular order, and each true image is paired with the reconstruction that resembles it most. Then the
luckiest pair beats the mean image by chance alone, the more so the larger the batch: as many guesses made
without any observation (blends of a few random training images) reach +1 dB on 3 images and +5 to +7 dB on
192. The lab measures that chance score for every batch it attacks (the <i>chance</i> column) and counts an
attack's worst-case gap only above it; for a single image it is 0.</p>
<p><b>The attacks.</b> Gradient matching (Inverting Gradients, DLG) optimizes a dummy image until its gradient
looks like the observed one. The <i>analytic</i> attack needs no such search for the hard part: for a dense
layer and one image, every row of the weight gradient is the layer's input times that row's bias gradient, so
the input (the image's conv features, whatever PRECODE's noise or KL did after it) comes out exactly, and only
an inversion from features back to pixels remains; batch norm's ε then fixes the image's scale. On PRECODE
models, <i>precode-ignore</i> matches the conv blocks' gradients under the upstream gradient the encoder
reveals, leaving the stochastic layer out.</p>
<p><b>Why the worst case.</b> One well-reconstructed X-ray is a privacy breach even if all the others
failed, and averages hide it. Configurations are therefore judged by the largest per-image gap over every
round and every attack; the table names the attack that reached it, round by round. A configuration is
safe here only at a worst-case gap of at most ${TARGET_GAP_DB} dB; rows that meet it are highlighted.</p>`;
}

function summaryTable(results: AuditResults): string {
  const head = ['Configuration', 'Defenses', 'Envoys', 'Rounds', 'ROC-AUC', 'Accuracy', 'Sensitivity', 'Specificity',
    'DP ε', 'PSNR mean (dB)', 'PSNR worst (dB)', 'SSIM mean', 'SSIM worst', 'Gap mean (dB)', 'Worst gap (dB)',
    'Won by', 'Per round (gap dB, attack)', 'Gradient matching alone (dB)', 'A default envoy (round / probe)'];
  const rows = results.configurations.map((c, index) => {
    const gapCell = (v: number | undefined) => `<td${typeof v === 'number' && v > TARGET_GAP_DB ? ' class="bad"' : ''}>${fmt(v, 2)}</td>`;
    return `<tr${meetsTarget(c) ? ' class="meets"' : ''}>` +
      `<td class="text"><a href="#${anchorOf(c, index)}">${escapeHtml(c.name)}</a></td>` +
      `<td class="text">${escapeHtml(describeDefenses(c.defenses))}</td>` +
      `<td>${c.envoys}</td><td>${c.rounds}</td>` +
      [c.utility.roc_auc, c.utility.accuracy, c.utility.sensitivity, c.utility.specificity].map((v) => `<td>${fmt(v, 4)}</td>`).join('') +
      `<td>${fmt(c.dp_epsilon, 2)}</td>` +
      `<td>${fmt(c.leakage.psnr_mean, 2)}</td><td>${fmt(c.leakage.psnr_worst_case, 2)}</td>` +
      `<td>${fmt(c.leakage.ssim_mean, 3)}</td><td>${fmt(c.leakage.ssim_worst_case, 3)}</td>` +
      `<td>${fmt(c.leakage.psnr_gap_mean_db, 2)}</td>` + gapCell(worstGapDb(c)) +
      `<td class="text">${escapeHtml(c.worst_attack ?? '')}</td>` +
      `<td class="text">${(c.round_winners ?? []).map((w) => `r${w.round}: ${fmt(w.gap_db, 1)} ${escapeHtml(w.attack)}`).join('<br>')}</td>` +
      gapCell(gradientMatchingGapDb(c)) +
      `<td class="text">${c.default_policy ? `${escapeHtml(c.default_policy.round)} / ${escapeHtml(c.default_policy.probe)}` : '—'}</td>` +
      '</tr>';
  });
  return `<h2>Results</h2>
<p>The last column says whether a hospital on the default privacy policy (no update from fewer than 64 images
or batches under 16, secure sums of 3 or more, PRECODE with shard statistics or DP-SGD, no probes) would train
the configuration's rounds and its probes at all; a refused configuration's leakage is what a hospital that
opted out of its defaults would risk.</p>
<p>Highlighted: worst-case gap ≤ ${TARGET_GAP_DB} dB under every attack run on that configuration. Gaps above
${TARGET_GAP_DB} dB are in red. DP ε is the largest per-envoy ε under DP-SGD (— where DP was off). The same numbers
are in <code>audit.csv</code> and, with every per-image score, in <code>audit.json</code>.</p>
<div class="scroll"><table>
<tr>${head.map((h, i) => `<th${i < 2 ? ' class="text"' : ''}>${escapeHtml(h)}</th>`).join('')}</tr>
${rows.join('\n')}
</table></div>`;
}

function scatterSection(svg: string): string {
  return `<h2>Utility against leakage</h2>
<figure>${svg}
<figcaption>Each filled point is one configuration: its test ROC-AUC against the worst-case PSNR gap above the
no-information floor under every attack. A hollow point on the same row is the gradient-matching attacks' gap alone.
Left of the grey line (0 dB) an attack learned nothing beyond the dataset mean; left of the blue line
(${TARGET_GAP_DB} dB) is issue 5's target. Up and to the left is better.</figcaption></figure>`;
}

/** Ids for in-page links; the position keeps two names that differ only in punctuation apart. */
function anchorOf(c: ConfigurationResult, index: number): string {
  return `config-${index + 1}-${c.name.replace(/[^A-Za-z0-9_-]+/g, '-')}`;
}

function attackRow(a: AttackScore): string {
  const who = a.envoys.length > 1 ? `secure aggregate of ${a.envoys.length}: ${a.envoys.join(', ')}` : a.envoys.join(', ');
  const best = gapOverChance(a);
  return `<tr><td>${a.round}</td><td class="text">${escapeHtml(a.attack)}</td><td class="text">${escapeHtml(who)}</td>` +
    `<td>${a.psnr.length}</td><td>${fmt(mean(a.psnr), 2)}</td><td>${fmt(max(a.psnr), 2)}</td><td>${fmt(mean(a.floor_psnr), 2)}</td>` +
    `<td>${fmt(a.chance_gap_db ?? 0, 2)}</td><td${best > TARGET_GAP_DB ? ' class="bad"' : ''}>${fmt(best, 2)}</td>` +
    `<td>${fmt(mean(a.ssim), 3)}</td><td>${fmt(max(a.ssim), 3)}</td><td>${fmt(mean(a.floor_ssim), 3)}</td></tr>`;
}

const IMAGE_TYPES: Record<string, string> = { '.png': 'image/png', '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.gif': 'image/gif', '.webp': 'image/webp', '.svg': 'image/svg+xml' };

/** A reconstruction grid inlined as a data: URI, or a note saying why it is not shown. */
function gridFigure(a: AttackScore, outDir: string): string {
  if (!a.grid) return '';
  const caption = `${a.attack}, round ${a.round}, ${a.envoys.join(', ')}: true images above, reconstructions below`;
  const file = resolve(outDir, a.grid);
  const type = IMAGE_TYPES[extname(file).toLowerCase()];
  if (!type) return `<p class="note">Grid <code>${escapeHtml(a.grid)}</code> (${escapeHtml(caption)}) is not an image type this report embeds.</p>`;
  if (!existsSync(file)) return `<p class="note">Grid <code>${escapeHtml(a.grid)}</code> (${escapeHtml(caption)}) was not found in the output folder.</p>`;
  const uri = `data:${type};base64,${readFileSync(file).toString('base64')}`;
  return `<figure><img class="grid" src="${uri}" alt="${escapeHtml(caption)}"><figcaption>${escapeHtml(caption)}</figcaption></figure>`;
}

function configurationSection(c: ConfigurationResult, index: number, outDir: string): string {
  const attacks = [...c.attacks].sort((a, b) => a.round - b.round || a.attack.localeCompare(b.attack));
  const adaptive = Object.entries(c.by_attack ?? {})
    .map(([name, a]) => `<li>${escapeHtml(name)}: worst-case gap ${fmt(a.psnr_gap_max_db, 2)} dB, best PSNR ${fmt(a.psnr_worst_case, 2)} dB</li>`).join('\n');
  return `<section id="${anchorOf(c, index)}">
<h3>${escapeHtml(c.name)}</h3>
${c.description ? `<p>${escapeHtml(c.description)}</p>` : ''}
<ul>
<li>Defenses: <code>${escapeHtml(describeDefenses(c.defenses))}</code></li>
<li>${c.envoys} envoys, ${c.rounds} rounds, ${fmt(c.seconds, 0)} s; run folder <code>${escapeHtml(c.run_dir)}</code></li>
<li>Test ROC-AUC ${fmt(c.utility.roc_auc, 4)}, accuracy ${fmt(c.utility.accuracy, 4)}, sensitivity ${fmt(c.utility.sensitivity, 4)}, specificity ${fmt(c.utility.specificity, 4)}${c.dp_epsilon === undefined ? '' : `, DP ε ${fmt(c.dp_epsilon, 2)}`}</li>
<li>Worst-case gap ${fmt(worstGapDb(c), 2)} dB: ${meetsTarget(c) ? 'meets' : '<b>misses</b>'} the ${TARGET_GAP_DB} dB target</li>
${adaptive}
</ul>
${attacks.length ? `<div class="scroll"><table>
<tr><th>Round</th><th class="text">Attack</th><th class="text">Update of</th><th>Images</th><th>PSNR mean</th><th>PSNR best</th><th>Floor PSNR mean</th><th>Chance (dB)</th><th>Gap best over chance (dB)</th><th>SSIM mean</th><th>SSIM best</th><th>Floor SSIM mean</th></tr>
${attacks.map(attackRow).join('\n')}
</table></div>` : '<p class="note">No attack was recorded for this configuration.</p>'}
${attacks.map((a) => gridFigure(a, outDir)).join('\n')}
</section>`;
}

/** report.html in outDir: everything above in one file that opens anywhere, with no other file needed. */
export function writeHtmlReport(results: AuditResults, outDir: string, svg = scatterSvg(results)): string {
  mkdirSync(outDir, { recursive: true });
  const path = join(outDir, 'report.html');
  const seconds = results.configurations.reduce((s, c) => s + (Number.isFinite(c.seconds) ? c.seconds : 0), 0);
  const html = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Privacy–utility audit: ${escapeHtml(results.sweep)}</title>
<style>${STYLE}</style></head>
<body>
<h1>Privacy–utility audit: ${escapeHtml(results.sweep)}</h1>
<p class="meta">Created ${escapeHtml(results.created_at)} · data <code>${escapeHtml(results.data)}</code> ·
${results.configurations.length} configurations · ${fmt(seconds / 60, 1)} minutes of runs</p>
${explanation()}
${summaryTable(results)}
${scatterSection(svg)}
<h2>Per configuration</h2>
<p>Scores per round and attack on the probe updates. “Gap best” is the largest per-image PSNR gap above that
image's floor; the grids show the true images above and the attack's reconstructions below.</p>
${results.configurations.map((c, i) => configurationSection(c, i, outDir)).join('\n')}
<p class="meta">Generated by FL-SecFlow (ts/leakage/audit/report.ts).</p>
</body></html>
`;
  writeFileSync(path, html);
  return path;
}
