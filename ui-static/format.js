// Number and unit formatting.

const SCALES = {
  nanoseconds: [[1, 'ns'], [1e3, 'µs'], [1e6, 'ms'], [1e9, 's'], [60e9, 'min'], [3600e9, 'h']],
  bytes: [[1, 'B'], [1024, 'KiB'], [1024 ** 2, 'MiB'], [1024 ** 3, 'GiB'], [1024 ** 4, 'TiB']],
  count: [[1, ''], [1e3, 'k'], [1e6, 'M'], [1e9, 'G']],
};

/** A value in `unit` (nanoseconds, bytes, count, ...) as short text: 1.25 s, 12.3 MiB, 4.5k. */
export function formatValue(v, unit = 'count') {
  const scales = SCALES[unit] || SCALES.count;
  const a = Math.abs(v);
  let [div, suffix] = scales[0];
  for (const s of scales) if (a >= s[0]) [div, suffix] = s;
  const x = v / div;
  const digits = Math.abs(x) >= 100 || div === 1 ? 0 : Math.abs(x) >= 10 ? 1 : 2;
  const text = x.toFixed(Number.isInteger(x) ? 0 : digits);
  const unitText = unit in SCALES ? suffix : ` ${unit}`;
  return unitText && unit !== 'count' ? `${text} ${unitText}` : `${text}${unitText}`;
}

/** A rate (value per second) in `unit`: 250 ms/s, 3.2 MiB/s. CPU time per second as cores. */
export function formatRate(v, unit) {
  if (unit === 'nanoseconds') return `${(v / 1e9).toFixed(v >= 1e10 ? 1 : 2)} cores`;
  return `${formatValue(v, unit)}/s`;
}

export function formatPercent(x) {
  if (!isFinite(x)) return '—';
  const p = x * 100;
  return `${Math.abs(p) >= 10 ? p.toFixed(1) : p.toFixed(2)}%`;
}

export function formatSigned(v, unit) {
  return (v > 0 ? '+' : v < 0 ? '−' : '±') + formatValue(Math.abs(v), unit);
}

/** Epoch ms as local `YYYY-MM-DD HH:MM:SS`. */
export function formatTime(ms) {
  const d = new Date(ms);
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** Epoch ms as the value of an <input type=datetime-local>. */
export function toLocalInput(ms) {
  return formatTime(ms).replace(' ', 'T');
}

export function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}
