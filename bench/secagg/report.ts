/**
 * Markdown tables for bench/RESULTS.md from bench/results/secagg.json.
 * usage: npx tsx bench/secagg/report.ts [bench/results/secagg.json]
 */
import { readFileSync } from 'node:fs';

type Any = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const j = JSON.parse(readFileSync(process.argv[2] ?? 'bench/results/secagg.json', 'utf8')) as Any;
const f = (x: unknown, d = 3) => (typeof x === 'number' ? (Math.abs(x) >= 100 ? x.toFixed(0) : Number(x.toPrecision(d)).toString()) : '—');
const ms = (s: unknown) => (typeof s === 'number' ? f(s * 1000) : 'skip');
const ratio = (a: unknown, b: unknown) => (typeof a === 'number' && typeof b === 'number' && b > 0 ? f(a / b, 2) + '×' : '—');
const dstr = (d: number) => `10^${Math.round(Math.log10(d))}`;
const GB = (x: unknown) => (typeof x === 'number' ? (x / 1e9).toFixed(2) + ' GB/s' : String(x));

const lines: string[] = [];
const h = j.headline as Any;
const p = j.raw_prg as Any;
const pe = j.raw_prg_end_of_run as Any;
lines.push('| raw keystream, one thread, per CPU-second (start / end of run) | rate |', '| --- | --- |');
lines.push(`| crate PRG \`MaskStream::fill\`, 4 KiB blocks (bench/secagg/prg-raw) | ${GB(p.rust_keystream_4KiB_bytes_per_s)} / ${GB(pe.rust_keystream_4KiB_bytes_per_s)} |`);
lines.push(`| crate \`apply_masks_window\` (keystream + u32 add, 1 thread) | ${GB(p.rust_apply_masks_window_1core_bytes_per_s)} / ${GB(pe.rust_apply_masks_window_1core_bytes_per_s)} |`);
lines.push(`| addon \`expandMask\` (allocates and copies a JS array per call; best of 64 KiB–4 MiB) | ${GB(p.native_expandMask_bytes_per_cpu_s)} / ${GB(pe.native_expandMask_bytes_per_cpu_s)} |`);
lines.push(`| node:crypto \`aes-256-ctr\` (OpenSSL, 64 KiB updates) | ${GB(p.openssl_aes256ctr_bytes_per_cpu_s)} / ${GB(pe.openssl_aes256ctr_bytes_per_cpu_s)} |`);
lines.push(`| \`openssl speed -evp aes-256-ctr\`, 16 KiB | ${GB(p.openssl_speed_aes256ctr_bytes_per_s)} / ${GB(pe.openssl_speed_aes256ctr_bytes_per_s)} |`);
lines.push(`| WASM \`expandMask\` (software AES on wasm32) | ${GB(p.wasm_expandMask_bytes_per_s)} / ${GB(pe.wasm_expandMask_bytes_per_s)} |`);
lines.push(`| Flower \`pseudo_rand_gen\` (NumPy MT19937 \`randint\` int64) | ${f((j.flower.pseudo_rand_gen_words_per_s ?? 0) / 1e6)} M words/s |`);
lines.push('');
lines.push('Director unmask + aggregate (times in ms; "terms" = masks the director expands and adds; native = `SecAggServer.finish()` of a real round, else `unmaskAggregate` with the same number of terms, marked *):', '');
lines.push('| n | d | drop | terms | plain sum TS | plain sum NumPy | native | native GB/s per core | TS | WASM | Flower | Flower terms | TS ÷ native | WASM ÷ native | **Flower ÷ native** | native ÷ plain sum |');
lines.push('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
for (const c of j.cells as Any[]) {
  const nr = c.native_round as Any;
  const real = typeof nr.director_unmask_s === 'number';
  const nat = real ? nr.director_unmask_s : c.native_unmaskAggregate_s;
  const perCore = real ? nr.director_unmask_bytes_per_cpu_s : c.native_unmaskAggregate_bytes_per_cpu_s;
  const fl = c.flower ?? {};
  lines.push(`| ${c.n} | ${dstr(c.d)} | ${c.dropout * 100}% (${c.dropped}) | ${c.director_mask_terms} | ${ms(c.plain_sum_ts_s)} | ${ms(fl.plain_sum_s)} | ${ms(nat)}${real ? '' : '*'} | ${(perCore / 1e9).toFixed(2)} | ${ms(c.ts.director_unmask_s)} | ${ms(c.wasm.director_unmask_s)} | ${ms(fl.director_unmask_s)} | ${fl.flower_unmask_terms ?? '—'} | ${ratio(c.ts.director_unmask_s, nat)} | ${ratio(c.wasm.director_unmask_s, nat)} | ${ratio(fl.director_unmask_s, nat)} | ${ratio(nat, c.plain_sum_ts_s)} |`);
}
lines.push('');
lines.push('Envoy masking, per envoy (ms; self mask + one pairwise mask per neighbour; native = `SecAggClient.maskedInput` in the real round, else `unmaskAggregate` on the same number of terms, marked *):', '');
lines.push('| n | d | neighbours | native | TS | WASM | Flower | TS ÷ native | WASM ÷ native | Flower ÷ native |');
lines.push('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
for (const c of j.cells as Any[]) {
  if (c.dropout !== 0) continue;
  const nr = c.native_round as Any;
  const real = typeof nr.envoy_mask_s === 'number';
  const nat = real ? nr.envoy_mask_s : c.native_envoy_mask_arith_s;
  const fl = c.flower ?? {};
  lines.push(`| ${c.n} | ${dstr(c.d)} | ${c.neighbours} | ${ms(nat)}${real ? '' : '*'} | ${ms(c.ts.envoy_mask_s)} | ${ms(c.wasm.envoy_mask_s)} | ${ms(fl.envoy_mask_s)} | ${ratio(c.ts.envoy_mask_s, nat)} | ${ratio(c.wasm.envoy_mask_s, nat)} | ${ratio(fl.envoy_mask_s, nat)} |`);
}
lines.push('');
const skipped = (j.cells as Any[]).flatMap((c) => [
  ...['ts', 'wasm'].filter((k) => c[k]?.skipped).map((k) => `${k} n=${c.n} d=${dstr(c.d)} ${c.dropout * 100}%: ${c[k].skipped}`),
  ...(c.native_round?.skipped ? [`native real round n=${c.n} d=${dstr(c.d)} ${c.dropout * 100}%: ${c.native_round.skipped}`] : []),
  ...(c.flower?.director_unmask_skipped ? [`flower unmask n=${c.n} d=${dstr(c.d)} ${c.dropout * 100}%: ${c.flower.director_unmask_skipped}`] : []),
]);
lines.push(`Skipped (${skipped.length}):`, '', ...skipped.map((s) => `- ${s}`));
lines.push('', `headline: ${JSON.stringify({ native_prg_fraction: j.native_prg_fraction, native_vs_flower_speedup: j.native_vs_flower_speedup, ...h })}`);
console.log(lines.join('\n'));
