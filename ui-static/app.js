// Strata's UI: panes (query bar, time range, metrics graph) and the profile view (icicle graph,
// top table, sandwich), with the whole state in the URL.

import * as api from './api.js';
import { describeType, sortTypes, queryType, withType, addMatcher, typeUnit, parseType } from './types.js';
import { formatTime, formatValue, formatPercent, toLocalInput, escapeHtml } from './format.js';
import { QueryBar } from './querybar.js';
import { MetricsGraph } from './graph.js';
import { FlameGraph, buildTree, sandwich, nodeName } from './flame.js';
import { TopTable } from './table.js';

const $ = (sel, root = document) => root.querySelector(sel);

const PRESETS = [
  ['now-5m', 'Last 5 minutes'],
  ['now-15m', 'Last 15 minutes'],
  ['now-1h', 'Last hour'],
  ['now-6h', 'Last 6 hours'],
  ['now-24h', 'Last 24 hours'],
  ['now-7d', 'Last 7 days'],
];
const UNITS = { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3, w: 7 * 86400e3 };
const MAX_NODES = 20000;

/** A time (`now`, `now-15m`, epoch s/ms/ns digits) as epoch ms. */
export function resolveTime(text, now = Date.now()) {
  const t = String(text).trim();
  const m = t.match(/^now(?:\s*([-+])\s*(\d+(?:\.\d+)?)\s*([smhdw]))?$/);
  if (m) return m[1] ? now + (m[1] === '-' ? -1 : 1) * Number(m[2]) * UNITS[m[3]] : now;
  if (/^\d+$/.test(t)) {
    if (t.length <= 10) return Number(t) * 1e3;
    if (t.length <= 13) return Number(t);
    return Number(BigInt(t) / 1000000n);
  }
  const d = Date.parse(t);
  return Number.isNaN(d) ? now : d;
}

// ---------------------------------------------------------------- state <-> URL

const DEFAULTS = {
  q: '', from: 'now-15m', to: 'now', sel: '',
  compare: '', q2: '', from2: 'now-15m', to2: 'now', sel2: '',
  view: 'icicle', fn: '', search: '', zoom: '', color: 'package', invert: '', diff: 'absolute', refresh: '', persec: '',
};
const state = { ...DEFAULTS };

function readUrl() {
  const p = new URLSearchParams(location.search);
  for (const k of Object.keys(DEFAULTS)) state[k] = p.get(k) ?? DEFAULTS[k];
}

function writeUrl(push = false) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(state)) if (v !== DEFAULTS[k] && v !== '') p.set(k, v);
  const url = `${location.pathname}?${p}`;
  if (url === `${location.pathname}${location.search}`) return;
  if (push) history.pushState(null, '', url);
  else history.replaceState(null, '', url);
}

// ---------------------------------------------------------------- theme

const THEME_KEY = 'strata-theme';
const osDark = window.matchMedia('(prefers-color-scheme: dark)');

function applyTheme() {
  const choice = localStorage.getItem(THEME_KEY) || 'auto';
  const dark = choice === 'dark' || (choice === 'auto' && osDark.matches);
  document.documentElement.dataset.theme = dark ? 'dark' : 'light';
  const btn = $('#theme');
  if (btn) {
    btn.textContent = choice === 'auto' ? (dark ? '◐ Auto (dark)' : '◐ Auto (light)') : dark ? '☾ Dark' : '☀ Light';
    btn.title = 'Theme: follows the OS until chosen; click to cycle';
  }
}

function cycleTheme() {
  const choice = localStorage.getItem(THEME_KEY) || 'auto';
  const os = osDark.matches ? 'dark' : 'light';
  const other = os === 'dark' ? 'light' : 'dark';
  const value = choice === 'auto' ? other : choice === other ? os : 'auto';
  localStorage.setItem(THEME_KEY, value);
  applyTheme();
  redrawProfile();
}

// ---------------------------------------------------------------- panes

let types = [];

class Pane {
  constructor(root, suffix) {
    this.root = root;
    this.k = (name) => name + suffix; // state key
    root.innerHTML = `
      <div class="pane-bar">
        <select class="type" title="Profile type"></select>
        <div class="qwrap"><input class="query" placeholder="profile type{label=&quot;value&quot;}"></div>
        <select class="range" title="Time range">
          ${PRESETS.map(([v, l]) => `<option value="${v}">${l}</option>`).join('')}
          <option value="custom">Absolute…</option>
        </select>
        <span class="abs" hidden>
          <input type="datetime-local" step="1" class="from"> – <input type="datetime-local" step="1" class="to">
        </span>
        <button class="run primary">Search</button>
      </div>
      <div class="type-desc"></div>
      <div class="graph-host"></div>
      <div class="pane-foot"><span class="sel-info"></span>
        <label class="persec-l"><input type="checkbox" class="persec"> per second</label>
        <button class="merge">Merge whole range</button></div>`;
    this.typeSel = $('.type', root);
    this.rangeSel = $('.range', root);
    this.bar = new QueryBar($('.query', root), {
      onRun: () => this.run(),
      range: () => {
        const r = this.range();
        return { start: String(r.start), end: String(r.end) };
      },
    });
    this.graph = new MetricsGraph($('.graph-host', root), {
      onBrush: (a, b) => {
        this.set({ from: String(a), to: String(b), sel: '' });
        this.load();
        loadProfile();
      },
      onPoint: (series, p) => {
        if (this.step) this.set({ sel: `r:${p.t}-${p.t + this.step * 1000 - 1}` });
        else this.set({ sel: `t:${p.timestamp_ns}` });
        this.renderGraph();
        loadProfile();
      },
      onAddMatcher: (label, value) => {
        this.bar.value = addMatcher(this.bar.value, label, value);
        this.run();
      },
    });
    this.typeSel.addEventListener('change', () => {
      this.bar.value = withType(this.bar.value || '', this.typeSel.value);
      this.run();
    });
    this.rangeSel.addEventListener('change', () => {
      if (this.rangeSel.value === 'custom') {
        const r = this.range();
        $('.from', root).value = toLocalInput(r.start);
        $('.to', root).value = toLocalInput(r.end);
        $('.abs', root).hidden = false;
        return;
      }
      this.set({ from: this.rangeSel.value, to: 'now', sel: '' });
      this.load();
      loadProfile();
    });
    for (const input of root.querySelectorAll('.abs input')) {
      input.addEventListener('change', () => {
        const a = Date.parse($('.from', root).value);
        const b = Date.parse($('.to', root).value);
        if (a < b) {
          this.set({ from: String(a), to: String(b), sel: '' });
          this.load();
          loadProfile();
        }
      });
    }
    $('.run', root).addEventListener('click', () => this.run());
    $('.merge', root).addEventListener('click', () => {
      this.set({ sel: '' });
      this.renderGraph();
      loadProfile();
    });
    $('.persec', root).addEventListener('change', (e) => {
      state.persec = e.target.checked ? '1' : '0';
      writeUrl();
      for (const p of panes) p.renderGraph();
    });
  }

  get(name) {
    return state[this.k(name)];
  }

  set(values) {
    for (const [k, v] of Object.entries(values)) state[this.k(k)] = v;
    writeUrl(true);
  }

  range() {
    const now = Date.now();
    return { start: resolveTime(this.get('from'), now), end: resolveTime(this.get('to'), now) };
  }

  run() {
    this.bar.close();
    this.set({ q: this.bar.value.trim(), sel: '' });
    this.syncControls();
    this.load();
    loadProfile();
  }

  syncControls() {
    const q = this.get('q');
    if (document.activeElement !== this.bar.input) this.bar.value = q;
    const type = queryType(q);
    const ids = sortTypes([...new Set([...types, type].filter(Boolean))]);
    this.typeSel.innerHTML = ids
      .map((id) => {
        const d = describeType(id);
        return `<option value="${escapeHtml(id)}" title="${escapeHtml(d.description)}">${escapeHtml(d.name)}</option>`;
      })
      .join('');
    this.typeSel.value = type;
    const d = type ? describeType(type) : null;
    $('.type-desc', this.root).innerHTML = d ? `<b>${escapeHtml(d.name)}</b> · ${escapeHtml(d.description)} <code>${escapeHtml(type)}</code>` : '';
    const from = this.get('from');
    const preset = PRESETS.find(([v]) => v === from) && this.get('to') === 'now';
    this.rangeSel.value = preset ? from : 'custom';
    $('.abs', this.root).hidden = !!preset;
    if (!preset) {
      const r = this.range();
      $('.from', this.root).value = toLocalInput(r.start);
      $('.to', this.root).value = toLocalInput(r.end);
    }
    $('.persec', this.root).checked = this.perSecond();
  }

  perSecond() {
    if (state.persec) return state.persec === '1';
    const t = parseType(queryType(this.get('q')));
    return t.delta; // rates for per-interval types, raw values for gauges
  }

  /** The profile side this pane selects: {query, start, end} (ms) or {query, time} (ns). */
  side() {
    const sel = this.get('sel');
    const q = this.get('q');
    if (sel.startsWith('t:')) return { query: q, time: sel.slice(2) };
    if (sel.startsWith('r:')) {
      const [a, b] = sel.slice(2).split('-');
      return { query: q, start: a, end: b };
    }
    const r = this.range();
    return { query: q, start: String(r.start), end: String(r.end) };
  }

  describeSelection() {
    const sel = this.get('sel');
    if (sel.startsWith('t:')) return `Profile at ${formatTime(Number(BigInt(sel.slice(2)) / 1000000n))}`;
    const s = this.side();
    return `Merged ${formatTime(Number(s.start))} – ${formatTime(Number(s.end))}`;
  }

  async load() {
    this.syncControls();
    const q = this.get('q');
    if (!q) return;
    const r = this.range();
    this.r = r;
    const span = r.end - r.start;
    this.step = span > 3600e3 ? Math.ceil(span / 1000 / 300) : 0;
    const seq = (this.seq = (this.seq || 0) + 1);
    try {
      const res = await api.queryRange({ query: q, start: String(r.start), end: String(r.end), step: this.step ? `${this.step}s` : undefined });
      if (seq !== this.seq) return;
      this.series = res.series;
      showError('');
    } catch (e) {
      if (seq !== this.seq) return;
      this.series = [];
      showError(e);
    }
    this.renderGraph();
  }

  renderGraph() {
    if (!this.r) return;
    const sel = this.get('sel');
    let selection = null;
    if (sel.startsWith('t:')) selection = { t: Number(BigInt(sel.slice(2)) / 1000000n) };
    else if (sel.startsWith('r:')) {
      const [a, b] = sel.slice(2).split('-').map(Number);
      selection = { start: a, end: b };
    } else selection = { start: this.r.start, end: this.r.end };
    this.graph.setData(this.series || [], {
      start: this.r.start, end: this.r.end, unit: typeUnit(queryType(this.get('q'))), perSecond: this.perSecond(), selection,
    });
    $('.sel-info', this.root).textContent = this.describeSelection();
    this.root.dataset.points = (this.series || []).reduce((n, s) => n + s.points.length, 0);
  }
}

const panes = [];

// ---------------------------------------------------------------- profile view

let flame;
let table;
let sandwichTop;
let sandwichBottom;
let tree = null;
let profileSeq = 0;
let topData = null;
const timings = {};

/** Shows an error (an Error or a message; '' hides it); a refused token asks to sign in. */
function showError(err) {
  if (err instanceof api.AuthError) {
    signIn(err.message);
    return;
  }
  const msg = typeof err === 'string' ? err : err.message;
  const e = $('#error');
  e.textContent = msg;
  e.hidden = !msg;
}

/**
 * The sign-in dialog: a read token (when the server wants one) and a tenant (when tenants are
 * on), kept in localStorage; the page reloads with them. `why` says what the server answered.
 */
function signIn(why) {
  const d = $('#signin');
  if (d.open) return;
  $('#signin-why').textContent = why || '';
  $('#signin-token').value = api.credentials.token;
  $('#signin-tenant').value = api.credentials.tenant;
  d.showModal();
}

function setupAccess(access) {
  const h = access.tenant_header;
  $('#signin-tenant-row').hidden = !h;
  $('#signin-token-row').hidden = !access.read_token_required;
  if (h) $('#signin-tenant').placeholder = access.default_tenant;
  const who = $('#who');
  who.hidden = !access.read_token_required && !h;
  who.textContent = h ? `Tenant: ${api.credentials.tenant || access.default_tenant}` : api.credentials.token ? 'Token…' : 'Sign in';
  who.title = h ? `Sent as ${h}; click to change` : 'Change the read token';
  who.addEventListener('click', () => signIn(''));
  $('#signin').addEventListener('submit', (e) => {
    if (e.submitter?.value === 'cancel') return;
    api.credentials.save($('#signin-token').value.trim(), $('#signin-tenant').value.trim());
    location.reload();
  });
  // A plain link cannot send the token or the tenant: fetch the profile and save it.
  $('#download').addEventListener('click', (e) => {
    if (!Object.keys(api.credentials.headers()).length) return;
    e.preventDefault();
    api.download(e.currentTarget.href, 'profile.pb.gz').catch(showError);
  });
}

function profileParams() {
  const [a, b] = panes;
  const params = {};
  if (state.compare) {
    const base = a.side();
    const cmp = b.side();
    Object.assign(params, { mode: 'diff', query: cmp.query, start: cmp.start, end: cmp.end, time: cmp.time });
    Object.assign(params, { base_query: base.query, base_start: base.start, base_end: base.end, base_time: base.time });
    params.diff = state.diff;
  } else {
    const s = a.side();
    Object.assign(params, { mode: s.time ? 'single' : 'merge', query: s.query, start: s.start, end: s.end, time: s.time });
  }
  return params;
}

async function loadProfile() {
  const [a, b] = panes;
  if (!a.get('q') || (state.compare && !b.get('q'))) return;
  const params = profileParams();
  $('#download').href = api.profileUrl({ ...params, report: 'pprof' });
  $('#profile-title').textContent = state.compare
    ? `Diff: B (${b.describeSelection()}) vs A (${a.describeSelection()})`
    : a.describeSelection();
  const seq = ++profileSeq;
  $('#profile').classList.add('loading');
  const t0 = performance.now();
  try {
    const [fg, top] = await Promise.all([
      api.queryProfile({ ...params, report: 'flamegraph', max_nodes: MAX_NODES }),
      state.view === 'table' || state.view === 'both' ? api.queryProfile({ ...params, report: 'top' }) : null,
    ]);
    if (seq !== profileSeq) return;
    timings.fetch = performance.now() - t0;
    showError('');
    const t1 = performance.now();
    tree = buildTree(fg);
    tree.pruned = fg.pruned_nodes;
    timings.build = performance.now() - t1;
    topData = top;
    renderProfile(true);
    loadDebuginfo(tree);
    timings.firstPaint = performance.now() - t1;
  } catch (e) {
    if (seq !== profileSeq) return;
    showError(e);
    tree = null;
    renderProfile(true);
  } finally {
    if (seq === profileSeq) $('#profile').classList.remove('loading');
  }
}

/** Fetches the debug info status of the unsymbolized frames' build ids, for the tooltip. */
function loadDebuginfo(t) {
  const ids = new Set();
  for (const f of t.frames) if (f && !f.symbolized && f.build_id) ids.add(f.build_id);
  if (!ids.size) return;
  api.debuginfoStatus([...ids].slice(0, 100)).then((m) => {
    if (tree === t) flame.setDebuginfo(m);
  }, () => {});
}

function zoomPath() {
  return state.zoom ? state.zoom.split(';') : null;
}

function renderProfile(newData = false) {
  const view = state.view;
  $('#profile').dataset.view = view;
  for (const b of document.querySelectorAll('#views button')) b.classList.toggle('active', b.dataset.view === view);
  $('#diffmode').hidden = !state.compare;
  $('#diffmode').value = state.diff;
  $('#colorby').value = state.color;
  $('#invert').checked = !!state.invert;
  if (document.activeElement !== $('#search')) $('#search').value = state.search;
  if (!tree) {
    $('#flame-host').hidden = true;
    $('#summary').textContent = 'No profile';
    return;
  }
  $('#flame-host').hidden = !(view === 'icicle' || view === 'both');
  $('#table').hidden = !(view === 'table' || view === 'both');
  $('#sandwich').hidden = view !== 'sandwich';
  flame.setOptions({ invert: !!state.invert, colorBy: state.color, search: state.search, diffRelative: state.diff === 'relative' });
  if (newData || flame.tree !== tree) flame.setTree(tree, zoomPath());
  renderSummary();
  renderBreadcrumb();
  if (view === 'table' || view === 'both') {
    if (topData) {
      table.setFilter(state.search);
      table.setData(topData);
    } else {
      api.queryProfile({ ...profileParams(), report: 'top' }).then((d) => {
        topData = d;
        table.setFilter(state.search);
        table.setData(d);
      }, (e) => showError(e));
    }
  }
  if (view === 'sandwich') renderSandwich();
}

function renderSummary() {
  const m = tree.meta;
  const unit = m.unit;
  const parts = [`Total ${formatValue(m.total, unit)}`];
  if (m.diff) parts.push(`base ${formatValue(m.base_total, unit)}`);
  parts.push(`${tree.n.toLocaleString()} nodes${tree.pruned ? ` (${tree.pruned.toLocaleString()} small ones merged away)` : ''}`);
  // Unsymbolized frames: share of the total where the leaf is unsymbolized.
  let unsym = 0;
  for (let i = 1; i < tree.n; i++) {
    const f = tree.frames[tree.frame[i]];
    if (f && !f.symbolized) unsym += tree.flat[i];
  }
  $('#summary').textContent = parts.join(' · ');
  const notice = $('#notice');
  notice.hidden = unsym === 0;
  notice.textContent = unsym ? `${formatPercent(unsym / (tree.cum[0] || 1))} of samples end in unsymbolized frames (shown in grey italics, by address).` : '';
  const frac = flame.matchFraction();
  $('#match').textContent = frac === null ? '' : `${formatPercent(frac)} of total matches`;
}

function renderBreadcrumb() {
  const bc = $('#breadcrumb');
  if (!flame.tree || flame.zoom === 0) {
    bc.innerHTML = '';
    bc.hidden = true;
    return;
  }
  const chain = [];
  for (let a = flame.zoom; ; a = tree.parent[a]) {
    chain.push(a);
    if (a === 0) break;
  }
  chain.reverse();
  bc.hidden = false;
  bc.innerHTML = chain
    .map((i) => `<a href="#" data-node="${i}">${escapeHtml(i === 0 ? 'total' : nodeName(tree, i))}</a>`)
    .join(' <span>›</span> ');
}

function renderSandwich() {
  const name = state.fn;
  const host = $('#sandwich');
  $('#sandwich-title').textContent = name ? `Sandwich of ${name}: callers above, callees below` : 'Right-click a frame or click a table row to see its callers and callees';
  if (!name || !tree) {
    sandwichTop.tree = null;
    return;
  }
  const s = sandwich(tree, name);
  host.dataset.occurrences = s.occurrences;
  const t1 = buildTree(s.callers);
  const t2 = buildTree(s.callees);
  sandwichTop.setOptions({ invert: true, colorBy: state.color, search: state.search });
  sandwichBottom.setOptions({ invert: false, colorBy: state.color, search: state.search });
  sandwichTop.setTree(t1);
  sandwichBottom.setTree(t2);
}

function redrawProfile() {
  if (flame?.tree) flame.render();
  if (sandwichTop?.tree) sandwichTop.render();
  if (sandwichBottom?.tree) sandwichBottom.render();
  for (const p of panes) p.renderGraph();
}

function openSandwich(name) {
  state.fn = name;
  state.view = 'sandwich';
  writeUrl(true);
  renderProfile();
}

// ---------------------------------------------------------------- wiring

let refreshTimer = null;

function setRefresh() {
  clearInterval(refreshTimer);
  $('#refresh').value = state.refresh;
  const s = Number(state.refresh);
  if (!s) return;
  refreshTimer = setInterval(() => {
    for (const p of panes) if (!p.root.hidden && String(p.get('to')).startsWith('now')) p.load();
    if (!panes.some((p) => p.get('sel'))) loadProfile();
  }, s * 1000);
}

function applyCompare() {
  const on = !!state.compare;
  panes[1].root.hidden = !on;
  $('#compare').classList.toggle('active', on);
  $('#compare').textContent = on ? 'Stop comparing' : 'Compare';
  $('#panes').classList.toggle('two', on);
  for (const [i, label] of [[0, on ? 'A · baseline' : ''], [1, 'B · comparison']]) {
    panes[i].root.dataset.label = label;
  }
}

async function start() {
  readUrl();
  applyTheme();
  osDark.addEventListener('change', () => {
    applyTheme();
    redrawProfile();
  });
  $('#theme').addEventListener('click', cycleTheme);
  panes.push(new Pane($('#pane-a'), ''), new Pane($('#pane-b'), '2'));
  flame = new FlameGraph($('#flame'), {
    onZoom: (i) => {
      state.zoom = flame.pathOf(i).join(';');
      writeUrl(true);
      renderBreadcrumb();
    },
    onContext: (i) => openSandwich(nodeName(tree, i)),
  });
  sandwichTop = new FlameGraph($('#sandwich-callers'), {});
  sandwichBottom = new FlameGraph($('#sandwich-callees'), {});
  table = new TopTable($('#table'), { onSelect: openSandwich });
  $('#breadcrumb').addEventListener('click', (e) => {
    const a = e.target.closest('a[data-node]');
    if (!a) return;
    e.preventDefault();
    flame.setZoom(Number(a.dataset.node));
  });
  $('#reset-zoom').addEventListener('click', () => flame.setZoom(0));
  $('#views').addEventListener('click', (e) => {
    const b = e.target.closest('button[data-view]');
    if (!b) return;
    state.view = b.dataset.view;
    writeUrl(true);
    renderProfile();
  });
  let searchTimer;
  $('#search').addEventListener('input', (e) => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => {
      state.search = e.target.value;
      writeUrl();
      if (tree) renderProfile();
    }, 120);
  });
  $('#colorby').addEventListener('change', (e) => {
    state.color = e.target.value;
    writeUrl();
    renderProfile();
  });
  $('#invert').addEventListener('change', (e) => {
    state.invert = e.target.checked ? '1' : '';
    writeUrl();
    renderProfile();
  });
  $('#diffmode').addEventListener('change', (e) => {
    state.diff = e.target.value;
    writeUrl(true);
    loadProfile();
  });
  $('#compare').addEventListener('click', () => {
    state.compare = state.compare ? '' : '1';
    if (state.compare && !state.q2) {
      state.q2 = state.q;
      state.from2 = state.from;
      state.to2 = state.to;
    }
    state.zoom = '';
    writeUrl(true);
    applyCompare();
    if (state.compare) panes[1].load();
    loadProfile();
  });
  $('#refresh').addEventListener('change', (e) => {
    state.refresh = e.target.value;
    writeUrl();
    setRefresh();
  });
  window.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && flame.zoom && document.activeElement === document.body) flame.setZoom(0);
  });
  window.addEventListener('popstate', () => {
    readUrl();
    applyCompare();
    for (const p of panes) if (!p.root.hidden) p.load();
    loadProfile();
  });

  const access = await api.access();
  setupAccess(access);
  if (access.read_token_required && !api.credentials.token) {
    signIn('This server wants a read token.');
    return;
  }
  try {
    types = (await api.profileTypes()).map((t) => t.id);
  } catch (e) {
    showError(e);
  }
  if (!state.q && types.length) {
    state.q = `${sortTypes(types)[0]}{}`;
    writeUrl();
  }
  applyCompare();
  setRefresh();
  const loads = [panes[0].load()];
  if (state.compare) loads.push(panes[1].load());
  loadProfile();
  await Promise.all(loads);
}

// For tests and debugging.
window.__strata = { state, timings, get flame() { return flame; }, get tree() { return tree; }, get table() { return table; }, panes };

start();
