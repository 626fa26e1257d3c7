// The query bar: a text input with autocomplete from `/api/v1/complete` (profile types, label
// names, operators, label values). Up/Down choose, Enter or Tab accept, Escape closes; Enter
// with the list closed runs the query.

import { complete } from './api.js';
import { escapeHtml } from './format.js';

const enc = new TextEncoder();
/** Byte offset (the server's cursor) of a UTF-16 index. */
const byteOffset = (s, i) => enc.encode(s.slice(0, i)).length;
/** UTF-16 index of a byte offset. */
function charIndex(s, b) {
  let bytes = 0;
  for (let i = 0; i < s.length; i++) {
    if (bytes >= b) return i;
    bytes += enc.encode(s[i]).length;
  }
  return s.length;
}

export class QueryBar {
  /**
   * @param {HTMLInputElement} input
   * @param opts  onRun(query), range() -> {start, end}
   */
  constructor(input, opts) {
    this.input = input;
    this.opts = opts;
    this.list = document.createElement('ul');
    this.list.className = 'complete';
    this.list.hidden = true;
    input.parentElement.append(this.list);
    this.items = [];
    this.active = 0;
    this.seq = 0;
    input.setAttribute('autocomplete', 'off');
    input.setAttribute('spellcheck', 'false');
    input.addEventListener('input', () => this.suggest());
    input.addEventListener('focus', () => this.suggest());
    input.addEventListener('click', () => this.suggest());
    input.addEventListener('blur', () => setTimeout(() => this.close(), 150));
    input.addEventListener('keydown', (e) => this.onKey(e));
    this.list.addEventListener('mousedown', (e) => {
      const li = e.target.closest('li');
      if (!li) return;
      e.preventDefault();
      this.accept(Number(li.dataset.i));
    });
  }

  get value() {
    return this.input.value;
  }

  set value(v) {
    this.input.value = v;
  }

  close() {
    this.list.hidden = true;
    this.items = [];
  }

  async suggest() {
    const q = this.input.value;
    const cursor = this.input.selectionStart ?? q.length;
    const seq = ++this.seq;
    this.abort?.abort();
    this.abort = new AbortController();
    let res;
    try {
      res = await complete(q, byteOffset(q, cursor), this.opts.range?.(), this.abort.signal);
    } catch {
      return;
    }
    if (seq !== this.seq || document.activeElement !== this.input) return;
    // A complete label name: the operators come next.
    if (res.context.kind === 'label_name' && res.prefix && res.suggestions.includes(res.prefix) && !/^\s*[=!]/.test(q.slice(cursor))) {
      res = { context: { kind: 'operator', label: res.prefix }, prefix: '', start: byteOffset(q, cursor), suggestions: ['=', '!=', '=~', '!~'] };
    }
    this.ctx = res;
    this.cursor = cursor;
    this.items = res.suggestions.filter((s) => s !== res.prefix || res.context.kind === 'operator').slice(0, 50);
    this.active = 0;
    if (!this.items.length) return this.close();
    const kind = { profile_type: 'type', label_name: 'label', operator: 'operator', label_value: 'value', separator: '' }[res.context.kind] ?? '';
    this.list.innerHTML = this.items
      .map((s, i) => `<li data-i="${i}" class="${i === 0 ? 'active' : ''}"><span>${escapeHtml(s)}</span><small>${kind}</small></li>`)
      .join('');
    this.list.hidden = false;
  }

  onKey(e) {
    const open = !this.list.hidden && this.items.length;
    if (open && (e.key === 'ArrowDown' || e.key === 'ArrowUp')) {
      e.preventDefault();
      this.active = (this.active + (e.key === 'ArrowDown' ? 1 : this.items.length - 1)) % this.items.length;
      [...this.list.children].forEach((li, i) => li.classList.toggle('active', i === this.active));
      this.list.children[this.active]?.scrollIntoView({ block: 'nearest' });
    } else if (open && (e.key === 'Tab' || (e.key === 'Enter' && !e.ctrlKey))) {
      e.preventDefault();
      this.accept(this.active);
    } else if (e.key === 'Escape') {
      this.close();
    } else if (e.key === 'Enter') {
      e.preventDefault();
      this.close();
      this.opts.onRun?.(this.input.value);
    }
  }

  /** Puts suggestion i in place of the typed prefix, plus what the grammar needs next. */
  accept(i) {
    const s = this.items[i];
    if (s === undefined) return;
    const q = this.input.value;
    const start = charIndex(q, this.ctx.start);
    const end = this.cursor;
    let insert = s;
    const rest = q.slice(end);
    const kind = this.ctx.context.kind;
    if (kind === 'profile_type' && !rest.startsWith('{')) insert += '{';
    if (kind === 'operator' && !rest.startsWith('"')) insert += '"';
    if (kind === 'label_value') insert = s.replace(/[\\"]/g, (c) => `\\${c}`) + (rest.startsWith('"') ? '' : '"');
    if (kind === 'separator' && s === ',') insert = ', ';
    let after = q.slice(0, start) + insert;
    let tail = rest;
    if (kind === 'label_value' && rest.startsWith('"')) {
      after += '"';
      tail = rest.slice(1);
    }
    if (kind === 'label_value' && !tail.trim()) tail = '}';
    this.input.value = after + tail;
    const pos = after.length;
    this.input.setSelectionRange(pos, pos);
    this.close();
    this.input.focus();
    this.suggest();
  }
}
