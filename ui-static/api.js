// The server's HTTP/JSON API (server/src/query/http.rs).

export class ApiError extends Error {}

/** The server refused the request's token (401): sign in again. */
export class AuthError extends ApiError {}

/**
 * Who the UI is: a read token and a tenant, kept in this browser's localStorage and sent with
 * every API request (`Authorization: Bearer`, and the tenant header the server names in
 * `/ui/access.json`).
 */
export const credentials = {
  get token() { return localStorage.getItem('strata-token') || ''; },
  get tenant() { return localStorage.getItem('strata-tenant') || ''; },
  tenantHeader: null,
  save(token, tenant) {
    for (const [k, v] of [['strata-token', token], ['strata-tenant', tenant]]) {
      if (v) localStorage.setItem(k, v); else localStorage.removeItem(k);
    }
  },
  headers() {
    const h = {};
    if (this.token) h.Authorization = `Bearer ${this.token}`;
    if (this.tenantHeader && this.tenant) h[this.tenantHeader] = this.tenant;
    return h;
  },
};

/**
 * What the server asks of the UI (server/src/ops/ui.rs): `{read_token_required, tenant_header,
 * default_tenant}`; `tenant_header` is null when tenants are off.
 */
export async function access() {
  const res = await fetch('/ui/access.json');
  const out = res.ok ? await res.json() : { read_token_required: false, tenant_header: null };
  credentials.tenantHeader = out.tenant_header;
  return out;
}

function query(params) {
  return new URLSearchParams(Object.entries(params).filter(([k, v]) => v !== undefined && v !== null && (v !== '' || k === 'query')));
}

async function getJson(path, params, { signal, raw } = {}) {
  const res = await fetch(`${path}?${query(params)}`, { signal, headers: credentials.headers() });
  const text = await res.text();
  if (!res.ok) {
    let msg = text;
    try { msg = JSON.parse(text).error || text; } catch { /* not JSON */ }
    throw new (res.status === 401 ? AuthError : ApiError)(msg);
  }
  return raw ? raw(text) : JSON.parse(text);
}

export function profileTypes(range) {
  return getJson('/api/v1/profile_types', { start: range?.start, end: range?.end });
}

export function complete(query, cursor, range, signal) {
  return getJson('/api/v1/complete', { query, cursor, start: range?.start, end: range?.end }, { signal });
}

/**
 * Series of points. Timestamps are nanoseconds, beyond a double's precision: they are kept as
 * strings (`timestamp_ns`) with `t` = epoch milliseconds as a number.
 */
export async function queryRange(params, signal) {
  const out = await getJson('/api/v1/query_range', params, {
    signal,
    raw: (text) => JSON.parse(text.replace(/"timestamp_ns":(\d+)/g, '"timestamp_ns":"$1"')),
  });
  for (const s of out.series) for (const p of s.points) p.t = Number(BigInt(p.timestamp_ns) / 1000000n);
  return out;
}

export function queryProfile(params, signal) {
  return getJson('/api/v1/query', params, { signal });
}

/**
 * Debug info status of build ids (server/src/debuginfo/http.rs): `{build_id: report}`, each
 * report with `status` (found, missing, failed, pending, unknown, disabled) and `reason`.
 */
export async function debuginfoStatus(buildIds) {
  if (!buildIds.length) return {};
  const out = await getJson('/api/v1/debuginfo/status', { build_id: buildIds.join(',') });
  return Object.fromEntries(out.build_ids.map((r) => [r.build_id, r]));
}

/** The URL of `/api/v1/query` with these parameters (downloads). */
export function profileUrl(params) {
  return `/api/v1/query?${query(params)}`;
}

/**
 * Downloads `url` as `filename` with the credentials' headers (a plain link cannot send them).
 */
export async function download(url, filename) {
  const res = await fetch(url, { headers: credentials.headers() });
  if (!res.ok) throw new (res.status === 401 ? AuthError : ApiError)((await res.text()).trim());
  const href = URL.createObjectURL(await res.blob());
  const a = Object.assign(document.createElement('a'), { href, download: filename });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(href), 10000);
}
