// The metrics graph: one line per series over the time range (SVG). Hover shows the nearest
// point's labels (hold Shift to keep the tooltip still and shift-click a label to add it as a
// matcher); drag to zoom the range; click a point to open that profile; right-click a series
// for its labels as matchers.

import { formatValue, formatRate, formatTime, escapeHtml } from './format.js';

const PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];
const M = { left: 64, right: 12, top: 10, bottom: 24 };
const SVG = 'http://www.w3.org/2000/svg';

function el(name, attrs = {}) {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}

function niceStep(range, n) {
  const raw = range / n;
  const p = 10 ** Math.floor(Math.log10(raw || 1));
  for (const m of [1, 2, 2.5, 5, 10]) if (raw <= m * p) return m * p;
  return 10 * p;
}

export function seriesLabel(labels) {
  return `{${Object.entries(labels).map(([k, v]) => `${k}="${v}"`).join(', ')}}`;
}

export class MetricsGraph {
  constructor(container, opts = {}) {
    this.container = container;
    this.opts = opts;
    container.classList.add('graph');
    this.svg = el('svg', { class: 'graph-svg' });
    this.tooltip = document.createElement('div');
    this.tooltip.className = 'tooltip graph-tooltip';
    this.tooltip.hidden = true;
    this.menu = document.createElement('div');
    this.menu.className = 'menu';
    this.menu.hidden = true;
    container.append(this.svg, this.tooltip, this.menu);
    this.series = [];
    this.height = 200;
    this.drag = null;
    this.svg.addEventListener('mousemove', (e) => this.onMove(e));
    this.svg.addEventListener('mouseleave', () => {
      if (!this.shift) this.hideTooltip();
    });
    this.svg.addEventListener('mousedown', (e) => {
      if (e.button !== 0) return;
      e.preventDefault();
      this.drag = { x0: this.localX(e), x1: this.localX(e) };
    });
    window.addEventListener('mousemove', (e) => {
      if (!this.drag) return;
      this.drag.x1 = this.localX(e);
      this.drawBrush();
    });
    window.addEventListener('mouseup', (e) => {
      if (!this.drag) return;
      const { x0, x1 } = this.drag;
      this.drag = null;
      this.drawBrush();
      if (Math.abs(x1 - x0) > 4) {
        const a = this.timeAt(Math.min(x0, x1));
        const b = this.timeAt(Math.max(x0, x1));
        if (this.opts.onBrush) this.opts.onBrush(Math.round(a), Math.round(b));
      } else {
        const near = this.nearest(e);
        if (near && this.opts.onPoint) this.opts.onPoint(near.series, near.point);
      }
    });
    this.svg.addEventListener('contextmenu', (e) => {
      const near = this.nearest(e);
      if (!near) return;
      e.preventDefault();
      this.showMenu(near.series, e);
    });
    window.addEventListener('keydown', (e) => {
      if (e.key === 'Shift') {
        this.shift = true;
        this.tooltip.classList.add('pinned');
      }
    });
    window.addEventListener('keyup', (e) => {
      if (e.key === 'Shift') {
        this.shift = false;
        this.tooltip.classList.remove('pinned');
      }
    });
    document.addEventListener('click', (e) => {
      if (!this.menu.contains(e.target)) this.menu.hidden = true;
    });
    const addFrom = (e) => {
      const item = e.target.closest('[data-label]');
      if (!item) return;
      if (e.currentTarget === this.tooltip && !e.shiftKey) return;
      e.preventDefault();
      e.stopPropagation();
      this.menu.hidden = true;
      if (this.opts.onAddMatcher) this.opts.onAddMatcher(item.dataset.label, item.dataset.value);
    };
    this.tooltip.addEventListener('click', addFrom);
    this.menu.addEventListener('click', addFrom);
    new ResizeObserver(() => {
      if (this.container.clientWidth !== this.width) this.render();
    }).observe(container);
  }

  /**
   * @param series  [{labels, points: [{t, value, value_per_second, timestamp_ns}]}]
   * @param o       {start, end (ms), unit, perSecond, selection: {start, end} | {t} | null}
   */
  setData(series, o) {
    this.series = series;
    this.o = o;
    this.render();
  }

  localX(e) {
    return e.clientX - this.svg.getBoundingClientRect().left;
  }

  timeAt(x) {
    const { start, end } = this.o;
    const w = this.width - M.left - M.right;
    return start + ((Math.min(Math.max(x, M.left), M.left + w) - M.left) / w) * (end - start);
  }

  val(p) {
    return this.o.perSecond ? p.value_per_second : p.value;
  }

  render() {
    const W = this.container.clientWidth || 800;
    const H = this.height;
    this.width = W;
    const svg = this.svg;
    svg.setAttribute('width', W);
    svg.setAttribute('height', H);
    svg.replaceChildren();
    if (!this.o) return;
    const { start, end, unit, perSecond } = this.o;
    let max = 0;
    for (const s of this.series) for (const p of s.points) max = Math.max(max, this.val(p));
    if (max === 0) max = 1;
    const step = niceStep(max, 4);
    max = Math.ceil(max / step) * step;
    this.max = max;
    const iw = W - M.left - M.right;
    const ih = H - M.top - M.bottom;
    this.X = (t) => M.left + ((t - start) / (end - start || 1)) * iw;
    this.Y = (v) => M.top + ih - (v / max) * ih;
    const fmt = (v) => (perSecond ? formatRate(v, unit) : formatValue(v, unit));
    const axis = el('g', { class: 'axis' });
    for (let v = 0; v <= max + step / 2; v += step) {
      const y = this.Y(v);
      axis.append(el('line', { x1: M.left, x2: W - M.right, y1: y, y2: y, class: 'gridline' }));
      const tx = el('text', { x: M.left - 6, y: y + 4, 'text-anchor': 'end' });
      tx.textContent = fmt(v);
      axis.append(tx);
    }
    const span = end - start;
    const tstep = [1e3, 5e3, 15e3, 30e3, 60e3, 300e3, 900e3, 1800e3, 3600e3, 3 * 3600e3, 6 * 3600e3, 12 * 3600e3, 86400e3]
      .find((s) => span / s <= Math.max(3, iw / 110)) || 86400e3;
    for (let t = Math.ceil(start / tstep) * tstep; t <= end; t += tstep) {
      const x = this.X(t);
      const tx = el('text', { x, y: H - 6, 'text-anchor': 'middle' });
      const full = formatTime(t);
      tx.textContent = span > 86400e3 ? full.slice(5, 16) : tstep < 60e3 ? full.slice(11) : full.slice(11, 16);
      axis.append(tx);
    }
    svg.append(axis);
    // Selection: a band for a merged range, a line for one profile.
    const sel = this.o.selection;
    if (sel && sel.start !== undefined) {
      const x0 = Math.max(M.left, this.X(sel.start));
      const x1 = Math.min(W - M.right, this.X(sel.end));
      if (x1 > x0) svg.append(el('rect', { x: x0, y: M.top, width: x1 - x0, height: ih, class: 'selection-band' }));
    } else if (sel && sel.t !== undefined) {
      const x = this.X(sel.t);
      svg.append(el('line', { x1: x, x2: x, y1: M.top, y2: M.top + ih, class: 'selection-line' }));
    }
    this.series.forEach((s, k) => {
      const color = PALETTE[k % PALETTE.length];
      s.color = color;
      const d = s.points.map((p, j) => `${j ? 'L' : 'M'}${this.X(p.t).toFixed(1)},${this.Y(this.val(p)).toFixed(1)}`).join('');
      const path = el('path', { d, class: 'series', stroke: color, 'data-series': k });
      svg.append(path);
      if (s.points.length <= 200) {
        for (const p of s.points) svg.append(el('circle', { cx: this.X(p.t), cy: this.Y(this.val(p)), r: 2.2, fill: color, class: 'point' }));
      }
    });
    this.brush = el('rect', { class: 'brush', y: M.top, height: ih, width: 0, x: 0 });
    this.hoverDot = el('circle', { r: 5, class: 'hover-dot', visibility: 'hidden' });
    svg.append(this.brush, this.hoverDot);
    if (!this.series.length) {
      const tx = el('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle', class: 'empty' });
      tx.textContent = 'No data in this range';
      svg.append(tx);
    }
  }

  drawBrush() {
    if (!this.brush) return;
    if (!this.drag) {
      this.brush.setAttribute('width', 0);
      return;
    }
    const a = Math.max(M.left, Math.min(this.drag.x0, this.drag.x1));
    const b = Math.min(this.width - M.right, Math.max(this.drag.x0, this.drag.x1));
    this.brush.setAttribute('x', a);
    this.brush.setAttribute('width', Math.max(0, b - a));
  }

  /** The point nearest the mouse (x first, then y). */
  nearest(e) {
    if (!this.X || !this.series.length) return null;
    const r = this.svg.getBoundingClientRect();
    const mx = e.clientX - r.left;
    const my = e.clientY - r.top;
    let best = null;
    let bestD = Infinity;
    for (const s of this.series) {
      for (const p of s.points) {
        const dx = this.X(p.t) - mx;
        const dy = this.Y(this.val(p)) - my;
        const d = dx * dx * 4 + dy * dy;
        if (d < bestD) {
          bestD = d;
          best = { series: s, point: p };
        }
      }
    }
    return best;
  }

  onMove(e) {
    if (this.shift && !this.tooltip.hidden) return;
    const near = this.nearest(e);
    if (!near) return this.hideTooltip();
    const { series, point } = near;
    const { unit, perSecond } = this.o;
    this.hoverDot.setAttribute('cx', this.X(point.t));
    this.hoverDot.setAttribute('cy', this.Y(this.val(point)));
    this.hoverDot.setAttribute('fill', series.color);
    this.hoverDot.setAttribute('visibility', 'visible');
    const labels = Object.entries(series.labels)
      .map(([k, v]) => `<div class="tt-label" data-label="${escapeHtml(k)}" data-value="${escapeHtml(v)}"><b>${escapeHtml(k)}</b>=${escapeHtml(v)}</div>`)
      .join('');
    this.tooltip.innerHTML = `<div class="tt-name">${perSecond ? formatRate(point.value_per_second, unit) : formatValue(point.value, unit)}</div>
      <div>${formatTime(point.t)}${point.profiles > 1 ? ` · ${point.profiles} profiles` : ''}</div>${labels}
      <div class="tt-hint">click: open profile · drag: zoom · hold Shift, then shift-click a label: add matcher</div>`;
    this.tooltip.hidden = false;
    const r = this.container.getBoundingClientRect();
    const x = e.clientX - r.left + 14;
    this.tooltip.style.left = `${Math.min(x, Math.max(0, r.width - this.tooltip.offsetWidth))}px`;
    this.tooltip.style.top = `${e.clientY - r.top + 12}px`;
  }

  hideTooltip() {
    this.tooltip.hidden = true;
    if (this.hoverDot) this.hoverDot.setAttribute('visibility', 'hidden');
  }

  showMenu(series, e) {
    const r = this.container.getBoundingClientRect();
    this.menu.innerHTML = `<div class="menu-title">Add to query</div>${Object.entries(series.labels)
      .map(([k, v]) => `<div class="menu-item" data-label="${escapeHtml(k)}" data-value="${escapeHtml(v)}">${escapeHtml(k)}="${escapeHtml(v)}"</div>`)
      .join('')}`;
    this.menu.style.left = `${e.clientX - r.left}px`;
    this.menu.style.top = `${e.clientY - r.top}px`;
    this.menu.hidden = false;
  }
}
