/**
 * The audit's scatter as an SVG string: leakage (worst-case PSNR gap above the no-information floor) on x,
 * test ROC-AUC on y, one labelled point per configuration. Built as text so the HTML report can inline it
 * and report.ts can rasterize the very same picture to PNG; no DOM or plotting runtime is needed.
 */
import type { AuditResults, ConfigurationResult } from './results.ts';

/** Issue 5's target for PRECODE: a worst-case gap of at most 1 dB above the floor counts as "no leakage". */
export const TARGET_GAP_DB = 1;

export const SCATTER_WIDTH = 900;
export const SCATTER_HEIGHT = 560;
/** Listed first so the rasterizer and browsers pick the font whose file report.ts hands to resvg. */
export const FONT_FAMILY = "'DejaVu Sans', Verdana, Arial, Helvetica, sans-serif";

const MARGIN = { left: 80, right: 30, top: 56, bottom: 78 };
const PLOT = {
  x0: MARGIN.left, x1: SCATTER_WIDTH - MARGIN.right,
  y0: MARGIN.top, y1: SCATTER_HEIGHT - MARGIN.bottom,
};
const COLOR = { meets: '#1a7f37', misses: '#c0392b', floor: '#555555', target: '#1f6feb', grid: '#e3e3e3' };
const LABEL_SIZE = 12;
const LABEL_MAX_CHARS = 32;

/** Escapes text for XML and HTML alike (element content and quoted attributes). */
export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** The worst case a reader should judge a configuration by: the largest gap any attack reached. */
export function worstGapDb(c: ConfigurationResult): number {
  return c.worst_gap_db ?? c.leakage.psnr_gap_max_db;
}

/** The gradient-matching attacks' (IG, DLG) worst gap alone: what the lab measured before its analytic attacks. */
export function gradientMatchingGapDb(c: ConfigurationResult): number | undefined {
  const gaps = Object.entries(c.by_attack ?? {}).filter(([name]) => ['ig', 'dlg', 'dlg-adam'].includes(name)).map(([, a]) => a.psnr_gap_max_db);
  return gaps.length ? Math.max(...gaps) : undefined;
}

export function meetsTarget(c: ConfigurationResult): boolean {
  return worstGapDb(c) <= TARGET_GAP_DB;
}

interface Ticks { lo: number; hi: number; values: number[]; decimals: number }

/**
 * Axis [min, max] with "nice" ticks inside it (steps of 1, 2 or 5 times a power of ten, about `count`).
 * The axis is not stretched to a whole step, so a 1.5 dB margin never becomes 5 dB of empty plot.
 */
export function niceTicks(min: number, max: number, count = 6): Ticks {
  if (!(max > min)) [min, max] = [min - 0.5, min + 0.5];
  const raw = (max - min) / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw * (1 - 1e-9))!;
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  // Rounding to the step's decimals keeps 0.30000000000000004 out of the labels.
  const round = (v: number) => Number(v.toFixed(decimals));
  const first = Math.ceil(min / step - 1e-9);
  const values: number[] = [];
  for (let i = first; i * step <= max + step * 1e-9; i++) values.push(round(i * step));
  return { lo: min, hi: max, values, decimals };
}

interface Point { config: ConfigurationResult; x: number; y: number; adaptiveX?: number }

const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

function plottable(results: AuditResults): { points: Point[]; skipped: string[] } {
  const points: Point[] = [];
  const skipped: string[] = [];
  for (const config of results.configurations) {
    const x = worstGapDb(config);
    const y = config.utility.roc_auc;
    const matching = gradientMatchingGapDb(config);
    if (!finite(x) || !finite(y)) skipped.push(config.name);
    else points.push({ config, x, y, adaptiveX: finite(matching) && matching < x - 0.01 ? matching : undefined });
  }
  return { points, skipped };
}

/** x always shows both reference lines (0 and 1 dB); y is ROC-AUC, zoomed to the data but within [0, 1]. */
function axes(points: Point[]): { x: Ticks; y: Ticks } {
  const xs = [0, TARGET_GAP_DB, ...points.flatMap((p) => (p.adaptiveX === undefined ? [p.x] : [p.x, p.adaptiveX]))];
  const [xMin, xMax] = [Math.min(...xs), Math.max(...xs)];
  const xPad = 0.06 * (xMax - xMin);
  const ys = points.map((p) => p.y);
  let [yMin, yMax] = ys.length ? [Math.min(...ys), Math.max(...ys)] : [0.5, 1];
  const yPad = Math.max(0.02, 0.1 * (yMax - yMin));
  [yMin, yMax] = [Math.max(0, yMin - yPad), Math.min(1, yMax + yPad)];
  return { x: niceTicks(xMin - xPad, xMax + xPad, 8), y: niceTicks(yMin, yMax, 6) };
}

type Scale = (v: number) => number;

function scales(t: { x: Ticks; y: Ticks }): { sx: Scale; sy: Scale } {
  return {
    sx: (v) => PLOT.x0 + ((v - t.x.lo) / (t.x.hi - t.x.lo)) * (PLOT.x1 - PLOT.x0),
    sy: (v) => PLOT.y1 - ((v - t.y.lo) / (t.y.hi - t.y.lo)) * (PLOT.y1 - PLOT.y0),
  };
}

const f1 = (v: number) => v.toFixed(1);

function text(x: number, y: number, content: string, attrs = ''): string {
  return `<text x="${f1(x)}" y="${f1(y)}" ${attrs}>${escapeXml(content)}</text>`;
}

function gridAndTicks(t: { x: Ticks; y: Ticks }, { sx, sy }: { sx: Scale; sy: Scale }): string[] {
  const out: string[] = [];
  for (const v of t.x.values) {
    out.push(`<line x1="${f1(sx(v))}" y1="${PLOT.y0}" x2="${f1(sx(v))}" y2="${PLOT.y1}" stroke="${COLOR.grid}"/>`);
    out.push(`<line x1="${f1(sx(v))}" y1="${PLOT.y1}" x2="${f1(sx(v))}" y2="${PLOT.y1 + 5}" stroke="#333"/>`);
    out.push(text(sx(v), PLOT.y1 + 19, v.toFixed(t.x.decimals), 'text-anchor="middle" font-size="12"'));
  }
  for (const v of t.y.values) {
    out.push(`<line x1="${PLOT.x0}" y1="${f1(sy(v))}" x2="${PLOT.x1}" y2="${f1(sy(v))}" stroke="${COLOR.grid}"/>`);
    out.push(`<line x1="${PLOT.x0 - 5}" y1="${f1(sy(v))}" x2="${PLOT.x0}" y2="${f1(sy(v))}" stroke="#333"/>`);
    out.push(text(PLOT.x0 - 8, sy(v) + 4, v.toFixed(t.y.decimals), 'text-anchor="end" font-size="12"'));
  }
  out.push(`<rect x="${PLOT.x0}" y="${PLOT.y0}" width="${PLOT.x1 - PLOT.x0}" height="${PLOT.y1 - PLOT.y0}" fill="none" stroke="#333"/>`);
  return out;
}

function axisTitles(): string[] {
  const midX = (PLOT.x0 + PLOT.x1) / 2;
  const midY = (PLOT.y0 + PLOT.y1) / 2;
  return [
    text(midX, SCATTER_HEIGHT - 40, 'worst-case PSNR gap above the no-information floor, dB (more leakage →)',
      'text-anchor="middle" font-size="14"'),
    text(22, midY, 'test ROC-AUC', `text-anchor="middle" font-size="14" transform="rotate(-90 22 ${f1(midY)})"`),
    text(PLOT.x0, 26, 'Privacy–utility trade-off: one point per configuration', 'font-size="16" font-weight="bold"'),
  ];
}

/**
 * The floor (0 dB) and the 1 dB target, each a vertical line labelled just above the plot frame, where
 * the labels can hang left and right of their lines without running into points or out of the picture.
 */
function referenceLines(sx: Scale): string[] {
  const line = (x: number, color: string, label: string, anchor: string, dx: number) => [
    `<line x1="${f1(sx(x))}" y1="${PLOT.y0}" x2="${f1(sx(x))}" y2="${PLOT.y1}" stroke="${color}" stroke-width="1.5" stroke-dasharray="6 4"/>`,
    text(sx(x) + dx, PLOT.y0 - 6, label, `text-anchor="${anchor}" font-size="11" fill="${color}"`),
  ];
  return [
    `<rect x="${PLOT.x0}" y="${PLOT.y0}" width="${f1(Math.max(0, sx(TARGET_GAP_DB) - PLOT.x0))}" height="${PLOT.y1 - PLOT.y0}" fill="${COLOR.meets}" fill-opacity="0.06"/>`,
    ...line(0, COLOR.floor, 'floor (0 dB)', 'end', -4),
    ...line(TARGET_GAP_DB, COLOR.target, `target ${TARGET_GAP_DB} dB`, 'start', 4),
  ];
}

interface Box { x0: number; y0: number; x1: number; y1: number }
const overlaps = (a: Box, b: Box) => a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1;

/**
 * Label placement, greedy: right of the point, else left, nudged up or down until the label clears the
 * labels and points already placed. Widths are estimated (DejaVu Sans averages ~0.6 em per character),
 * enough to keep a handful of configurations readable.
 */
function placeLabels(points: { px: number; py: number; label: string }[], obstacles: Box[]): { x: number; y: number; anchor: string }[] {
  const placed: Box[] = [...obstacles, ...points.map((p) => ({ x0: p.px - 6, y0: p.py - 6, x1: p.px + 6, y1: p.py + 6 }))];
  return points.map((p) => {
    const w = 0.6 * LABEL_SIZE * p.label.length;
    const candidates = [0, -14, 14, -28, 28, -42, 42].flatMap((dy) => [{ side: 1, dy }, { side: -1, dy }]);
    const fits = (c: { side: number; dy: number }) => {
      const x0 = c.side > 0 ? p.px + 9 : p.px - 9 - w;
      const box = { x0, y0: p.py + c.dy - LABEL_SIZE + 3, x1: x0 + w, y1: p.py + c.dy + 3 };
      const inside = box.x0 >= PLOT.x0 + 2 && box.x1 <= PLOT.x1 - 2 && box.y0 >= PLOT.y0 + 2 && box.y1 <= PLOT.y1 - 2;
      return inside && !placed.some((b) => overlaps(b, box)) ? box : undefined;
    };
    const chosen = candidates.find((c) => fits(c)) ?? { side: p.px > (PLOT.x0 + PLOT.x1) / 2 ? -1 : 1, dy: 0 };
    const box = fits(chosen);
    if (box) placed.push(box);
    return { x: chosen.side > 0 ? p.px + 9 : p.px - 9, y: p.py + chosen.dy + 4, anchor: chosen.side > 0 ? 'start' : 'end' };
  });
}

const shorten = (name: string) => (name.length > LABEL_MAX_CHARS ? name.slice(0, LABEL_MAX_CHARS - 1) + '…' : name);

function markers(points: Point[], { sx, sy }: { sx: Scale; sy: Scale }): string[] {
  const out: string[] = [];
  const segments: Box[] = [];
  for (const p of points.filter((q) => q.adaptiveX !== undefined)) {
    const color = meetsTarget(p.config) ? COLOR.meets : COLOR.misses;
    const [a, b] = [sx(p.x), sx(p.adaptiveX!)].sort((u, v) => u - v);
    segments.push({ x0: a, y0: sy(p.y) - 6, x1: b + 6, y1: sy(p.y) + 6 });
    out.push(`<line x1="${f1(sx(p.x))}" y1="${f1(sy(p.y))}" x2="${f1(sx(p.adaptiveX!))}" y2="${f1(sy(p.y))}" stroke="${color}" stroke-dasharray="3 3"/>`);
    out.push(`<circle cx="${f1(sx(p.adaptiveX!))}" cy="${f1(sy(p.y))}" r="5" fill="white" stroke="${color}" stroke-width="2"/>`);
  }
  const labels = placeLabels(points.map((p) => ({ px: sx(p.x), py: sy(p.y), label: shorten(p.config.name) })), segments);
  points.forEach((p, i) => {
    const color = meetsTarget(p.config) ? COLOR.meets : COLOR.misses;
    out.push(`<circle class="point" cx="${f1(sx(p.x))}" cy="${f1(sy(p.y))}" r="5.5" fill="${color}"><title>${escapeXml(p.config.name)}</title></circle>`);
    out.push(text(labels[i].x, labels[i].y, shorten(p.config.name), `class="label" text-anchor="${labels[i].anchor}" font-size="${LABEL_SIZE}"`));
  });
  return out;
}

function legend(hasAdaptive: boolean, skipped: string[]): string[] {
  const y = SCATTER_HEIGHT - 14;
  const entries = [
    { marker: `fill="${COLOR.meets}"`, label: `≤ ${TARGET_GAP_DB} dB under every attack` },
    { marker: `fill="${COLOR.misses}"`, label: `> ${TARGET_GAP_DB} dB under some attack` },
    ...(hasAdaptive ? [{ marker: 'fill="white" stroke="#333" stroke-width="2"', label: 'gradient matching (IG, DLG) alone' }] : []),
  ];
  let x = PLOT.x0 + 6;
  const out = entries.flatMap((e) => {
    const item = [`<circle cx="${f1(x)}" cy="${y - 4}" r="4.5" ${e.marker}/>`, text(x + 10, y, e.label, 'font-size="11"')];
    x += 10 + 0.6 * 11 * e.label.length + 24;
    return item;
  });
  if (skipped.length) {
    out.push(text(PLOT.x1, y, `not plotted (no finite score): ${skipped.map(shorten).join(', ')}`, 'text-anchor="end" font-size="11" fill="#a00"'));
  }
  return out;
}

/** The whole scatter as a standalone SVG document (also valid inline in HTML). */
export function scatterSvg(results: AuditResults): string {
  const { points, skipped } = plottable(results);
  const ticks = axes(points);
  const s = scales(ticks);
  const body = [
    `<rect width="${SCATTER_WIDTH}" height="${SCATTER_HEIGHT}" fill="white"/>`,
    ...gridAndTicks(ticks, s),
    ...referenceLines(s.sx),
    ...axisTitles(),
    ...markers(points, s),
    ...legend(points.some((p) => p.adaptiveX !== undefined), skipped),
  ];
  if (!points.length) body.push(text((PLOT.x0 + PLOT.x1) / 2, (PLOT.y0 + PLOT.y1) / 2, 'no configuration to plot', 'text-anchor="middle" font-size="14"'));
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${SCATTER_WIDTH}" height="${SCATTER_HEIGHT}" viewBox="0 0 ${SCATTER_WIDTH} ${SCATTER_HEIGHT}" ` +
    `font-family="${escapeXml(FONT_FAMILY)}" role="img" aria-label="${escapeXml(`ROC-AUC against worst-case PSNR gap for ${results.configurations.length} configurations`)}">\n` +
    body.join('\n') + '\n</svg>\n';
}
