// The icicle / flame graph on a canvas.
//
// The tree from `report=flamegraph` is turned into typed arrays once (`buildTree`); drawing
// walks it from the zoomed node and skips every subtree narrower than a pixel, so the cost of a
// frame depends on what is visible, not on the number of nodes. Hover draws on an overlay
// canvas, leaving the graph as it is.

import { formatValue, formatPercent, formatSigned, escapeHtml } from './format.js';

const ROW = 18;
const MIN_WIDTH = 0.6; // px: narrower subtrees are not drawn

/**
 * Columnar form of a flame graph JSON (`{nodes, frames, meta}`): per node its frame, parent,
 * depth, cumulative, flat, base cumulative, and x (offset from the root's start, in value units);
 * children flattened into `kids` (`kidStart[i]`, `kidCount[i]`), in x order.
 */
export function buildTree(json) {
  const nodes = json.nodes;
  const n = nodes.length;
  const t = {
    n,
    frames: json.frames,
    meta: json.meta || {},
    frame: new Int32Array(n),
    parent: new Int32Array(n),
    depth: new Int32Array(n),
    cum: new Float64Array(n),
    flat: new Float64Array(n),
    base: new Float64Array(n),
    baseFlat: new Float64Array(n),
    x: new Float64Array(n),
    kidStart: new Int32Array(n),
    kidCount: new Int32Array(n),
    kids: null,
    height: 0,
  };
  let nk = 0;
  for (let i = 0; i < n; i++) nk += nodes[i].children.length;
  const kids = new Int32Array(nk);
  let k = 0;
  let height = 0;
  for (let i = 0; i < n; i++) {
    const d = nodes[i];
    t.frame[i] = d.frame;
    t.parent[i] = d.parent;
    t.depth[i] = d.depth;
    if (d.depth > height) height = d.depth;
    t.cum[i] = d.cumulative;
    t.flat[i] = d.flat;
    t.base[i] = d.base_cumulative || 0;
    t.baseFlat[i] = d.base_flat || 0;
    t.kidStart[i] = k;
    t.kidCount[i] = d.children.length;
    for (const c of d.children) kids[k++] = c;
  }
  t.kids = kids;
  t.height = height;
  // x offsets: parents come before their children (depth-first order).
  for (let i = 0; i < n; i++) {
    let acc = t.x[i];
    for (let j = t.kidStart[i], e = j + t.kidCount[i]; j < e; j++) {
      const c = kids[j];
      t.x[c] = acc;
      acc += t.cum[c];
    }
  }
  return t;
}

/** The display name of node `i` ("total" for the root). */
export function nodeName(t, i) {
  if (i === 0) return 'total';
  const f = t.frames[t.frame[i]];
  return f ? f.name : `frame ${t.frame[i]}`;
}

/** The package of a function name: Go `crypto/sha256.(*d).W` -> `crypto/sha256`, Rust `std::io::x` -> `std`. */
export function packageOf(name) {
  if (name.includes('::')) return name.split('::')[0].replace(/^[<&]+/, '');
  const slash = name.lastIndexOf('/');
  const dot = name.indexOf('.', slash + 1);
  if (dot > 0) return name.slice(0, dot);
  return name;
}

function hash(s) {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 16777619);
  }
  return h >>> 0;
}

/** Children of `i` whose x range holds value-offset `v` (binary search over x order). */
function childAt(t, i, v) {
  let lo = t.kidStart[i];
  let hi = lo + t.kidCount[i] - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const c = t.kids[mid];
    if (v < t.x[c]) hi = mid - 1;
    else if (v >= t.x[c] + t.cum[c]) lo = mid + 1;
    else return c;
  }
  return -1;
}

/** Nodes whose function name is `name`, not below another such node. */
export function topmostOccurrences(t, name) {
  const out = [];
  const stack = [0];
  while (stack.length) {
    const i = stack.pop();
    if (i !== 0 && nodeName(t, i) === name) {
      out.push(i);
      continue;
    }
    for (let j = t.kidStart[i], e = j + t.kidCount[i]; j < e; j++) stack.push(t.kids[j]);
  }
  return out;
}

/** A tree built by inserting weighted paths (frame index lists), in the JSON shape buildTree reads. */
class PathTree {
  constructor(frames, meta, rootFrame) {
    this.frames = frames;
    this.meta = meta;
    this.nodes = [{ frame: rootFrame, parent: 0, depth: 0, cumulative: 0, flat: 0, base_cumulative: 0, base_flat: 0, children: [], map: new Map() }];
  }

  child(p, frame) {
    const parent = this.nodes[p];
    let c = parent.map.get(frame);
    if (c === undefined) {
      c = this.nodes.length;
      this.nodes.push({ frame, parent: p, depth: parent.depth + 1, cumulative: 0, flat: 0, base_cumulative: 0, base_flat: 0, children: [], map: new Map() });
      parent.map.set(frame, c);
      parent.children.push(c);
    }
    return c;
  }

  /** Reorders depth-first, children by name, as the server does. */
  finish() {
    const order = [];
    const remap = new Map();
    const visit = (i) => {
      remap.set(i, order.length);
      order.push(i);
      const n = this.nodes[i];
      n.children.sort((a, b) => this.name(a).localeCompare(this.name(b)));
      for (const c of n.children) visit(c);
    };
    visit(0);
    const nodes = order.map((i) => {
      const n = this.nodes[i];
      return { ...n, parent: remap.get(n.parent), children: n.children.map((c) => remap.get(c)), map: undefined };
    });
    return { nodes, frames: this.frames, meta: this.meta };
  }

  name(i) {
    const f = this.frames[this.nodes[i].frame];
    return f ? f.name : '';
  }
}

/**
 * The sandwich of function `name`: `callers` (the function at the root, its callers as
 * children, to be drawn as a flame graph) and `callees` (the function at the root, what it
 * calls below), both in the JSON shape `buildTree` reads.
 */
export function sandwich(t, name) {
  const occ = topmostOccurrences(t, name);
  const rootFrame = occ.length ? t.frame[occ[0]] : 0;
  const callers = new PathTree(t.frames, t.meta, rootFrame);
  const callees = new PathTree(t.frames, t.meta, rootFrame);
  for (const o of occ) {
    const w = t.cum[o];
    const b = t.base[o];
    callers.nodes[0].cumulative += w;
    callers.nodes[0].base_cumulative += b;
    let p = 0;
    for (let a = t.parent[o]; a !== 0; a = t.parent[a]) {
      p = callers.child(p, t.frame[a]);
      callers.nodes[p].cumulative += w;
      callers.nodes[p].base_cumulative += b;
    }
    // Callees: the subtree of o merged under the root.
    const stack = [[o, 0]];
    while (stack.length) {
      const [s, d] = stack.pop();
      const dn = callees.nodes[d];
      dn.cumulative += t.cum[s];
      dn.flat += t.flat[s];
      dn.base_cumulative += t.base[s];
      dn.base_flat += t.baseFlat[s];
      for (let j = t.kidStart[s], e = j + t.kidCount[s]; j < e; j++) {
        const c = t.kids[j];
        stack.push([c, callees.child(d, t.frame[c])]);
      }
    }
  }
  for (const n of callers.nodes) if (n.children.length === 0) n.flat = n.cumulative;
  return { callers: callers.finish(), callees: callees.finish(), occurrences: occ.length };
}

/** The canvas flame graph. */
export class FlameGraph {
  /**
   * @param {HTMLElement} container
   * @param {object} opts  onZoom(node), onContext(node, event) callbacks
   */
  constructor(container, opts = {}) {
    this.container = container;
    this.opts = opts;
    container.classList.add('flame');
    this.canvas = document.createElement('canvas');
    this.overlay = document.createElement('canvas');
    this.overlay.className = 'flame-overlay';
    this.tooltip = document.createElement('div');
    this.tooltip.className = 'tooltip flame-tooltip';
    this.tooltip.hidden = true;
    container.append(this.canvas, this.overlay, this.tooltip);
    this.tree = null;
    this.zoom = 0;
    this.hover = -1;
    this.invert = false;
    this.colorBy = 'package';
    this.search = '';
    this.matches = null;
    this.diffRelative = false;
    this.colorCache = new Map();
    this.lastDrawMs = 0;
    this.drawn = 0;
    this.overlay.addEventListener('mousemove', (e) => this.onMove(e));
    this.overlay.addEventListener('mouseleave', () => this.setHover(-1));
    this.overlay.addEventListener('click', (e) => {
      const i = this.hit(e);
      if (i >= 0) this.setZoom(i);
    });
    this.overlay.addEventListener('contextmenu', (e) => {
      const i = this.hit(e);
      if (i > 0 && this.opts.onContext) {
        e.preventDefault();
        this.opts.onContext(i, e);
      }
    });
    this.resizeObserver = new ResizeObserver(() => {
      if (this.tree && this.container.clientWidth !== this.width) this.render();
    });
    this.resizeObserver.observe(container);
  }

  /** Sets the tree (from `buildTree`); keeps the zoom if `zoomPath` (names) is given and found. */
  setTree(tree, zoomPath) {
    this.tree = tree;
    this.colorCache.clear();
    this.zoom = zoomPath ? this.findPath(zoomPath) : 0;
    this.hover = -1;
    this.computeMatches();
    this.render();
  }

  /** Debug info status per build id (`api.debuginfoStatus`), for unsymbolized frames' tooltips. */
  setDebuginfo(byBuildId) {
    this.debuginfo = byBuildId;
    this.tooltipNode = -1;
  }

  /** The node at a path of names from the root (the deepest found). */
  findPath(names) {
    const t = this.tree;
    let cur = 0;
    for (const name of names) {
      let next = -1;
      for (let j = t.kidStart[cur], e = j + t.kidCount[cur]; j < e; j++) {
        if (nodeName(t, t.kids[j]) === name) { next = t.kids[j]; break; }
      }
      if (next < 0) break;
      cur = next;
    }
    return cur;
  }

  /** Names from the root (exclusive) to node i. */
  pathOf(i) {
    const out = [];
    for (let a = i; a !== 0; a = this.tree.parent[a]) out.push(nodeName(this.tree, a));
    return out.reverse();
  }

  setZoom(i) {
    if (!this.tree) return;
    this.zoom = i;
    this.render();
    if (this.opts.onZoom) this.opts.onZoom(i);
  }

  setOptions({ invert, colorBy, search, diffRelative }) {
    if (invert !== undefined) this.invert = invert;
    if (colorBy !== undefined && colorBy !== this.colorBy) {
      this.colorBy = colorBy;
      this.colorCache.clear();
    }
    if (diffRelative !== undefined) this.diffRelative = diffRelative;
    if (search !== undefined && search !== this.search) {
      this.search = search;
      this.computeMatches();
    }
    if (this.tree) this.render();
  }

  /** Marks nodes whose name matches the search (case-insensitive substring, or /regex/). */
  computeMatches() {
    const t = this.tree;
    this.matches = null;
    this.matchValue = 0;
    if (!t || !this.search) return;
    let test;
    const m = this.search.match(/^\/(.*)\/$/);
    if (m) {
      try {
        const re = new RegExp(m[1], 'i');
        test = (s) => re.test(s);
      } catch { test = () => false; }
    } else {
      const s = this.search.toLowerCase();
      test = (name) => name.toLowerCase().includes(s);
    }
    const byFrame = new Int8Array(t.frames.length); // 0 unknown, 1 yes, 2 no
    const matches = new Uint8Array(t.n);
    // Mass of matching nodes not under another match.
    let value = 0;
    const stack = [0];
    const under = new Uint8Array(t.n);
    while (stack.length) {
      const i = stack.pop();
      let hit = false;
      if (i !== 0) {
        const f = t.frame[i];
        if (byFrame[f] === 0) byFrame[f] = test(nodeName(t, i)) ? 1 : 2;
        hit = byFrame[f] === 1;
      }
      if (hit) {
        matches[i] = 1;
        if (!under[i]) value += t.cum[i];
      }
      for (let j = t.kidStart[i], e = j + t.kidCount[i]; j < e; j++) {
        const c = t.kids[j];
        under[c] = under[i] || hit ? 1 : 0;
        stack.push(c);
      }
    }
    this.matches = matches;
    this.matchValue = value;
  }

  /** Fraction of the total in matching frames (null without a search). */
  matchFraction() {
    if (!this.matches) return null;
    return this.matchValue / (this.tree.cum[0] || 1);
  }

  colors() {
    const cs = getComputedStyle(document.documentElement);
    const dark = document.documentElement.dataset.theme === 'dark';
    return {
      dark,
      text: dark ? '#f0f0f0' : '#111',
      bg: cs.getPropertyValue('--bg').trim() || (dark ? '#15171c' : '#fff'),
      dim: dark ? '#3a3d45' : '#e4e4e4',
      unsym: dark ? '#5b5b66' : '#b9b9c2',
    };
  }

  colorOf(i, c) {
    const t = this.tree;
    if (t.meta.diff) return this.diffColor(i, c);
    if (i === 0) return c.dark ? '#5a5f6b' : '#c9ccd3';
    const f = t.frame[i];
    let col = this.colorCache.get(f);
    if (col) return col;
    const frame = t.frames[f];
    if (frame && !frame.symbolized) col = c.unsym;
    else {
      const key = this.colorBy === 'binary' ? (frame?.binary || '').split('/').pop() : packageOf(nodeName(t, i));
      const h = hash(key);
      const hue = this.colorBy === 'binary' ? h % 360 : 10 + (h % 50); // warm for packages
      const sat = 55 + ((h >> 8) % 30);
      const light = c.dark ? 32 + ((h >> 16) % 14) : 58 + ((h >> 16) % 16);
      col = `hsl(${hue},${sat}%,${light}%)`;
    }
    this.colorCache.set(f, col);
    return col;
  }

  diffColor(i, c) {
    const t = this.tree;
    const cum = t.cum[i];
    const base = t.base[i];
    let r = base > 0 ? (cum - base) / base : cum > 0 ? 1 : 0;
    r = Math.max(-1, Math.min(1, r));
    const a = Math.min(1, Math.abs(r) * 2);
    const neutral = c.dark ? [70, 72, 80] : [215, 215, 220];
    const target = r > 0 ? (c.dark ? [200, 50, 50] : [230, 70, 60]) : (c.dark ? [40, 160, 70] : [60, 190, 90]);
    const mix = neutral.map((v, k) => Math.round(v + (target[k] - v) * a));
    return `rgb(${mix[0]},${mix[1]},${mix[2]})`;
  }

  /** Draws the visible nodes. */
  render() {
    const t0 = performance.now();
    const t = this.tree;
    const dpr = window.devicePixelRatio || 1;
    const W = this.container.clientWidth || 800;
    this.width = W;
    if (!t) return;
    const zd = t.depth[this.zoom];
    // Rows: the zoomed node's ancestors plus its subtree's depth.
    let maxDepth = zd;
    {
      // Deepest visible node: bounded by the tree height.
      maxDepth = t.height;
    }
    const rows = maxDepth + 1;
    const H = rows * ROW;
    this.rows = rows;
    for (const cv of [this.canvas, this.overlay]) {
      if (cv.width !== Math.round(W * dpr) || cv.height !== Math.round(H * dpr)) {
        cv.width = Math.round(W * dpr);
        cv.height = Math.round(H * dpr);
        cv.style.width = `${W}px`;
        cv.style.height = `${H}px`;
      }
    }
    this.container.style.height = `${H}px`;
    const ctx = this.canvas.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const c = this.colors();
    ctx.clearRect(0, 0, W, H);
    ctx.font = '11px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace';
    ctx.textBaseline = 'middle';
    if (!this.charW) this.charW = ctx.measureText('mmmmmmmmmm').width / 10;
    const charW = this.charW;
    const zx = t.x[this.zoom];
    const scale = W / (t.cum[this.zoom] || 1);
    const matches = this.matches;
    let drawn = 0;
    const rowY = (d) => (this.invert ? (rows - 1 - d) * ROW : d * ROW);
    const draw = (i, x, w) => {
      const y = rowY(t.depth[i]);
      const dim = matches && !matches[i] && i !== 0;
      ctx.fillStyle = dim ? c.dim : this.colorOf(i, c);
      ctx.fillRect(x, y, Math.max(w - 0.5, 0.5), ROW - 1);
      if (matches && matches[i]) {
        ctx.strokeStyle = c.dark ? '#fff' : '#000';
        ctx.lineWidth = 1;
        ctx.strokeRect(x + 0.5, y + 0.5, Math.max(w - 1.5, 0.5), ROW - 2);
      }
      drawn++;
      if (w > 24) {
        const name = i === 0 ? 'total' : nodeName(t, i);
        const max = Math.floor((w - 6) / charW);
        const label = name.length > max ? `${name.slice(0, Math.max(0, max - 1))}…` : name;
        if (label.length > 1) {
          ctx.fillStyle = dim ? (c.dark ? '#999' : '#777') : c.text;
          const frame = t.frames[t.frame[i]];
          if (i !== 0 && frame && !frame.symbolized) ctx.font = 'italic 11px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace';
          ctx.fillText(label, x + 3, y + ROW / 2);
          if (i !== 0 && frame && !frame.symbolized) ctx.font = '11px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace';
        }
      }
    };
    // Ancestors of the zoomed node: full width.
    for (let a = this.zoom; a !== 0;) {
      a = t.parent[a];
      draw(a, 0, W);
    }
    // The zoomed subtree, skipping what is narrower than MIN_WIDTH.
    const stack = [this.zoom];
    while (stack.length) {
      const i = stack.pop();
      const x = (t.x[i] - zx) * scale;
      const w = t.cum[i] * scale;
      draw(i, x, w);
      for (let j = t.kidStart[i], e = j + t.kidCount[i]; j < e; j++) {
        const k = t.kids[j];
        if (t.cum[k] * scale >= MIN_WIDTH) stack.push(k);
      }
    }
    this.drawn = drawn;
    this.lastDrawMs = performance.now() - t0;
    this.drawOverlay();
  }

  /** Node i's rectangle in CSS pixels relative to the canvas (tests, keyboard). */
  rectOf(i) {
    const t = this.tree;
    const scale = this.width / (t.cum[this.zoom] || 1);
    const above = t.depth[i] <= t.depth[this.zoom];
    const x = above ? 0 : (t.x[i] - t.x[this.zoom]) * scale;
    const w = above ? this.width : t.cum[i] * scale;
    const y = this.invert ? (this.rows - 1 - t.depth[i]) * ROW : t.depth[i] * ROW;
    return { x, y, w, h: ROW };
  }

  /** The node under a mouse event, or -1. */
  hit(e) {
    const t = this.tree;
    if (!t) return -1;
    const r = this.overlay.getBoundingClientRect();
    const px = e.clientX - r.left;
    const py = e.clientY - r.top;
    let d = Math.floor(py / ROW);
    if (this.invert) d = this.rows - 1 - d;
    if (d < 0) return -1;
    const zd = t.depth[this.zoom];
    if (d <= zd) {
      let a = this.zoom;
      while (t.depth[a] > d) a = t.parent[a];
      return a;
    }
    const scale = this.width / (t.cum[this.zoom] || 1);
    const v = t.x[this.zoom] + px / scale;
    let cur = this.zoom;
    while (t.depth[cur] < d) {
      cur = childAt(t, cur, v);
      if (cur < 0) return -1;
    }
    if (t.cum[cur] * scale < MIN_WIDTH) return -1;
    return cur;
  }

  onMove(e) {
    const t0 = performance.now();
    const i = this.hit(e);
    this.setHover(i, e);
    this.lastHoverMs = performance.now() - t0;
  }

  setHover(i, e) {
    if (i !== this.hover) {
      this.hover = i;
      this.drawOverlay();
    }
    if (i < 0 || !e) {
      this.tooltip.hidden = true;
      return;
    }
    if (this.tooltipNode !== i || this.tooltip.hidden) {
      this.tooltip.innerHTML = this.tooltipHtml(i);
      this.tooltipNode = i;
    }
    this.tooltip.hidden = false;
    const r = this.container.getBoundingClientRect();
    const tw = this.tooltip.offsetWidth;
    let x = e.clientX - r.left + 14;
    if (x + tw > r.width) x = Math.max(0, e.clientX - r.left - tw - 14);
    this.tooltip.style.left = `${x}px`;
    this.tooltip.style.top = `${e.clientY - r.top + 16}px`;
  }

  drawOverlay() {
    const ctx = this.overlay.getContext('2d');
    const dpr = window.devicePixelRatio || 1;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, this.overlay.width, this.overlay.height);
    const i = this.hover;
    const t = this.tree;
    if (!t || i < 0) return;
    const scale = this.width / (t.cum[this.zoom] || 1);
    let x = 0;
    let w = this.width;
    if (t.depth[i] > t.depth[this.zoom]) {
      x = (t.x[i] - t.x[this.zoom]) * scale;
      w = t.cum[i] * scale;
    }
    const y = this.invert ? (this.rows - 1 - t.depth[i]) * ROW : t.depth[i] * ROW;
    ctx.strokeStyle = document.documentElement.dataset.theme === 'dark' ? '#fff' : '#000';
    ctx.lineWidth = 2;
    ctx.strokeRect(x + 1, y + 1, Math.max(w - 2, 1), ROW - 3);
  }

  tooltipHtml(i) {
    const t = this.tree;
    const unit = t.meta.unit || 'count';
    const total = t.cum[0] || 1;
    const name = nodeName(t, i);
    const frame = i === 0 ? null : t.frames[t.frame[i]];
    const rows = [
      ['Cumulative', `${formatValue(t.cum[i], unit)} (${formatPercent(t.cum[i] / total)})`],
      ['Flat', `${formatValue(t.flat[i], unit)} (${formatPercent(t.flat[i] / total)})`],
    ];
    if (t.meta.diff) {
      const b = t.base[i];
      const d = t.cum[i] - b;
      rows.push(['Base', formatValue(b, unit)]);
      rows.push(['Diff', `${formatSigned(d, unit)} (${b > 0 ? (d >= 0 ? '+' : '') + formatPercent(d / b) : 'new'})`]);
    }
    if (frame) {
      if (frame.binary) rows.push(['Binary', frame.binary.split('/').pop()]);
      if (frame.file) rows.push(['File', `${frame.file}${frame.line ? `:${frame.line}` : ''}`]);
      if (!frame.symbolized) rows.push(['Symbols', `unsymbolized (${frame.address}${frame.build_id ? `, build id ${frame.build_id}` : ''})`]);
      const dbg = !frame.symbolized && frame.build_id && this.debuginfo?.[frame.build_id];
      if (dbg) rows.push(['Debug info', dbg.status === 'found' ? 'found; symbols are on their way' : `${dbg.status}${dbg.reason ? `: ${dbg.reason}` : ''}`]);
    }
    return `<div class="tt-name">${escapeHtml(name)}</div><table>${rows
      .map(([k, v]) => `<tr><th>${k}</th><td>${escapeHtml(v)}</td></tr>`)
      .join('')}</table><div class="tt-hint">click to zoom · right-click for sandwich</div>`;
  }
}
