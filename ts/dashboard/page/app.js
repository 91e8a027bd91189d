// The dashboard page: polls /api/snapshot and redraws. Everything an envoy or experiment supplied goes into the
// page as text (textContent), never as HTML: a hostile participant's shard description cannot script the page.
'use strict';

const POLL_MS = 2000;
const state = { selected: null, charts: {}, lastImages: '', lastAudits: '' };

function el(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'text') node.textContent = v; else if (k === 'class') node.className = v; else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child);
  return node;
}

function fixed(x, digits = 3) { return typeof x === 'number' ? x.toFixed(digits) : '–'; }

function renderEnvoys(status) {
  const body = document.querySelector('#envoys tbody');
  const envoys = [...status.envoys].sort((a, b) => a.name.localeCompare(b.name));
  body.replaceChildren(...envoys.map((e) => el('tr', { 'data-envoy': e.name }, [
    el('td', { text: e.name }),
    el('td', { class: e.alive ? 'alive' : 'gone', text: e.alive ? (e.busy ? 'online, training' : 'online') : 'gone' }),
    el('td', { text: `${e.descriptor.counts.train} training, ${e.descriptor.counts.val} validation images (${e.descriptor.description})` }),
    el('td', { text: `${fixed(e.last_seen_seconds_ago, 1)} s ago` }),
    el('td', { text: e.refused_tasks ? `${e.refused_tasks}: ${e.last_refusal ?? ''}` : '0' }),
  ])));
}

function renderProtection(snapshot) {
  const p = document.getElementById('protection');
  p.textContent = `protection: ${snapshot.status.protection || 'unknown'}`;
  p.classList.toggle('insecure', /NONE|insecure/i.test(snapshot.status.protection));
}

function renderExperimentChoice(experiments) {
  const select = document.getElementById('experiment');
  const names = experiments.map((x) => x.name);
  if (!state.selected || !names.includes(state.selected)) state.selected = names[0] ?? null;
  if ([...select.options].map((o) => o.value).join() !== names.join()) {
    select.replaceChildren(...names.map((n) => el('option', { value: n, text: n })));
  }
  select.value = state.selected ?? '';
}

function renderProgress(x) {
  const s = x.state;
  const done = s ? (s.status === 'finished' ? s.rounds : s.next_round) : 0;
  document.getElementById('progress-text').textContent = s
    ? `${s.status}: ${done} of ${s.rounds} rounds${s.failed_rounds.length ? `, failed rounds ${s.failed_rounds.map((r) => r + 1).join(', ')}` : ''}` : 'no state yet';
  const bar = document.getElementById('progress');
  bar.max = s?.rounds ?? 1;
  bar.value = done;
  const p = x.protections;
  const chips = p ? [
    ['secure aggregation', p.secure_aggregation], ['PRECODE', p.precode], [`private batch-norm statistics (${p.batch_norm_statistics})`, p.batch_norm_statistics !== 'batch'],
    [p.dp ? `DP-SGD σ ${fixed(p.dp.noise_multiplier, 2)}` : 'DP-SGD', !!p.dp], [p.pruning === null ? 'pruning' : `pruning (keep ${p.pruning})`, p.pruning !== null],
  ] : [];
  document.getElementById('protections').replaceChildren(...chips.map(([label, on]) => el('li', { class: on ? 'on' : 'off', text: `${label}: ${on ? 'on' : 'off'}` })));
}

function lineChart(id, datasets, labels) {
  const existing = state.charts[id];
  if (existing) {
    existing.data.labels = labels;
    existing.data.datasets = datasets;
    existing.update('none');
    return;
  }
  const withLoss = datasets.some((d) => d.yAxisID === 'loss');
  state.charts[id] = new Chart(document.getElementById(id), {
    type: 'line', data: { labels, datasets },
    options: {
      animation: false, responsive: true, plugins: { legend: { position: 'bottom' } },
      scales: {
        x: { title: { display: true, text: 'round' } },
        y: { min: 0, max: 1 },
        ...(withLoss ? { loss: { position: 'right', min: 0, grid: { drawOnChartArea: false }, title: { display: true, text: 'loss' } } } : {}),
      },
    },
  });
}

function renderSummary(x) {
  const last = x.metrics.filter((m) => m.scope === 'director' && m.split === 'test').at(-1);
  const chosen = x.metrics.find((m) => m.split === 'test_at_threshold');
  const line = (m, at) => `ROC-AUC ${fixed(m.roc_auc)}, accuracy ${fixed(m.accuracy)}, sensitivity ${fixed(m.sensitivity)}, specificity ${fixed(m.specificity)} at ${at}`;
  document.getElementById('summary').textContent = last
    ? `latest test (round ${last.round + 1}): ${line(last.metrics, '0.5')}${chosen ? `; at the federation's threshold: ${line(chosen.metrics, fixed(chosen.metrics.threshold))}` : ''}`
    : 'no round finished yet';
}

function renderCurves(x) {
  const test = x.metrics.filter((m) => m.scope === 'director' && m.split === 'test');
  const rounds = [...new Set(test.map((m) => m.round + 1))];
  const series = (key) => rounds.map((r) => test.find((m) => m.round + 1 === r)?.metrics[key] ?? null);
  lineChart('chart-test', [
    { label: 'ROC-AUC', data: series('roc_auc') }, { label: 'loss', data: series('loss'), yAxisID: 'loss', borderDash: [6, 3] },
    { label: 'sensitivity', data: series('sensitivity') }, { label: 'specificity', data: series('specificity') },
  ], rounds);
  document.getElementById('chart-test').dataset.points = String(rounds.length);
  const local = x.metrics.filter((m) => m.scope === 'envoy' && m.split === 'val_local');
  const envoys = [...new Set(local.map((m) => m.envoy))].sort();
  const envoyRounds = [...new Set(local.map((m) => m.round + 1))].sort((a, b) => a - b);
  lineChart('chart-envoys', envoys.map((name) => ({
    label: name, data: envoyRounds.map((r) => local.find((m) => m.envoy === name && m.round + 1 === r)?.metrics.roc_auc ?? null),
  })), envoyRounds);
}

function renderIncidents(snapshot) {
  const items = [];
  for (const e of snapshot.events) {
    const where = `${e.experiment}${e.round !== undefined ? `, round ${e.round + 1}` : ''}`;
    for (const r of e.refusals ?? []) items.push(['refusal', `${where}: ${r.envoy} refused (${r.rule}): ${r.reason}`]);
    if (e.dropped?.length) items.push(['failure', `${where}: dropped out: ${e.dropped.join(', ')}`]);
    if (e.type === 'round_failed' || e.type === 'failed') items.push(['failure', `${where}: ${e.type.replace('_', ' ')}: ${e.message ?? ''}`]);
  }
  for (const r of snapshot.status.refused) items.push(['refusal', `message from ${r.sender} refused ${r.count}×: ${r.reason}`]);
  const list = document.getElementById('incidents');
  list.replaceChildren(...(items.length ? items.slice(-100).reverse().map(([kind, text]) => el('li', { class: kind, text })) : [el('li', { text: 'none' })]));
}

function picture(src, caption) {
  return el('figure', {}, [el('img', { src, alt: caption }), el('figcaption', { text: caption })]);
}

function fileUrl(prefix, path) {
  return `${prefix}/files/${path.split('/').map(encodeURIComponent).join('/')}`;
}

function renderAudits(audits) {
  const key = JSON.stringify(audits);
  if (!audits.length || key === state.lastAudits) return;
  state.lastAudits = key;
  document.getElementById('audits').replaceChildren(...audits.map((a) => el('div', { class: 'audit', 'data-audit': String(a.index) }, [
    el('h3', { text: a.name }),
    ...(a.problem ? [el('p', { class: 'muted', text: a.problem })] : []),
    el('table', {}, [
      el('thead', {}, [el('tr', {}, ['configuration', 'test ROC-AUC', 'worst gap above the floor (dB)', 'by'].map((h) => el('th', { text: h })))]),
      el('tbody', {}, a.configurations.map((c) => el('tr', {}, [c.name, fixed(c.roc_auc), fixed(c.worst_gap_db, 2), c.worst_attack].map((v) => el('td', { text: v }))))),
    ]),
    el('div', { class: 'gallery' }, a.images.map((path) => picture(fileUrl(`/api/audits/${a.index}`, path), path))),
  ])));
}

function renderImages(x) {
  const key = `${x.name}:${x.images.join()}`;
  if (key === state.lastImages) return;
  state.lastImages = key;
  if (!x.images.length) { document.getElementById('images').replaceChildren(el('p', { class: 'muted', text: 'none in this run folder (an audited run writes them)' })); return; }
  document.getElementById('images').replaceChildren(...x.images.map((path) => picture(fileUrl(`/api/experiments/${encodeURIComponent(x.name)}`, path), path)));
}

async function refresh() {
  try {
    const response = await fetch('/api/snapshot', { cache: 'no-store' });
    if (!response.ok) throw new Error(`${response.status} ${await response.text()}`);
    const snapshot = await response.json();
    document.getElementById('federation').textContent = snapshot.federation;
    renderProtection(snapshot);
    renderEnvoys(snapshot.status);
    renderExperimentChoice(snapshot.experiments);
    const x = snapshot.experiments.find((e) => e.name === state.selected);
    if (x) { renderProgress(x); renderSummary(x); renderCurves(x); renderImages(x); }
    renderIncidents(snapshot);
    renderAudits(snapshot.audits);
    document.getElementById('updated').textContent = `updated ${new Date(snapshot.generated_at).toLocaleTimeString()}`;
  } catch (error) {
    document.getElementById('updated').textContent = `cannot reach the director: ${error.message}`;
  }
}

document.getElementById('experiment').addEventListener('change', (event) => {
  state.selected = event.target.value;
  state.lastImages = '';
  void refresh();
});
// A token in the address bar has become a cookie (server.ts): drop it from the URL and the history.
if (location.search.includes('token=')) history.replaceState(null, '', location.pathname);
void refresh();
setInterval(refresh, POLL_MS);
