// The top table (`report=top`): sortable by any column, filtered by the search text; a click on
// a row opens that function's sandwich view.

import { formatValue, formatPercent, formatSigned, escapeHtml } from './format.js';

const MAX_ROWS = 500;

export class TopTable {
  constructor(container, opts = {}) {
    this.container = container;
    this.opts = opts;
    this.sort = { key: 'flat', desc: true };
    this.data = null;
    this.filter = '';
    container.addEventListener('click', (e) => {
      const th = e.target.closest('th[data-key]');
      if (th) {
        const key = th.dataset.key;
        this.sort = { key, desc: this.sort.key === key ? !this.sort.desc : key !== 'name' };
        this.render();
        return;
      }
      const tr = e.target.closest('tr[data-name]');
      if (tr && this.opts.onSelect) this.opts.onSelect(tr.dataset.name);
    });
  }

  setData(data) {
    this.data = data;
    this.render();
  }

  setFilter(text) {
    this.filter = text || '';
    if (this.data) this.render();
  }

  render() {
    const d = this.data;
    if (!d) {
      this.container.innerHTML = '';
      return;
    }
    const unit = d.meta.unit;
    const total = d.meta.total || 1;
    const diff = d.meta.diff;
    let test = () => true;
    if (this.filter) {
      const m = this.filter.match(/^\/(.*)\/$/);
      try {
        const re = m ? new RegExp(m[1], 'i') : null;
        const s = this.filter.toLowerCase();
        test = re ? (n) => re.test(n) : (n) => n.toLowerCase().includes(s);
      } catch { /* keep all */ }
    }
    let rows = d.rows.map((r) => {
      const f = d.frames[r.frame] || {};
      return { ...r, name: f.name || `frame ${r.frame}`, symbolized: f.symbolized !== false, binary: f.binary || '', delta: r.cumulative - r.base_cumulative };
    });
    rows = rows.filter((r) => test(r.name));
    const { key, desc } = this.sort;
    rows.sort((a, b) => {
      const x = a[key];
      const y = b[key];
      const c = typeof x === 'string' ? x.localeCompare(y) : x - y;
      return desc ? -c : c;
    });
    const cols = [
      ['name', 'Function'],
      ['flat', 'Flat'],
      ['cumulative', 'Cumulative'],
    ];
    if (diff) cols.push(['base_cumulative', 'Base'], ['delta', 'Diff']);
    const head = cols
      .map(([k, label]) => `<th data-key="${k}" class="${k === key ? (desc ? 'sorted desc' : 'sorted asc') : ''}">${label}</th>`)
      .join('');
    const body = rows
      .slice(0, MAX_ROWS)
      .map((r) => {
        const cells = [
          `<td class="name${r.symbolized ? '' : ' unsymbolized'}" title="${escapeHtml(r.binary)}">${escapeHtml(r.name)}</td>`,
          `<td>${formatValue(r.flat, unit)} <small>${formatPercent(r.flat / total)}</small></td>`,
          `<td>${formatValue(r.cumulative, unit)} <small>${formatPercent(r.cumulative / total)}</small></td>`,
        ];
        if (diff) {
          cells.push(`<td>${formatValue(r.base_cumulative, unit)}</td>`);
          const cls = r.delta > 0 ? 'worse' : r.delta < 0 ? 'better' : '';
          const rel = r.base_cumulative > 0 ? ` <small>${formatPercent(r.delta / r.base_cumulative)}</small>` : '';
          cells.push(`<td class="${cls}">${formatSigned(r.delta, unit)}${rel}</td>`);
        }
        return `<tr data-name="${escapeHtml(r.name)}">${cells.join('')}</tr>`;
      })
      .join('');
    const more = rows.length > MAX_ROWS ? `<div class="more">${rows.length - MAX_ROWS} more rows; search to narrow</div>` : '';
    this.container.innerHTML = `<table class="top"><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>${more}`;
  }
}
