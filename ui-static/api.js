// The server's HTTP/JSON API (server/src/query_http.rs).

export class ApiError extends Error {}

async function getJson(path, params, { signal, raw } = {}) {
  const url = `${path}?${new URLSearchParams(Object.entries(params).filter(([k, v]) => v !== undefined && v !== null && (v !== '' || k === 'query')))}`;
  const res = await fetch(url, { signal });
  const text = await res.text();
  if (!res.ok) {
    let msg = text;
    try { msg = JSON.parse(text).error || text; } catch { /* not JSON */ }
    throw new ApiError(msg);
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
 * Debug info status of build ids (server/src/debuginfo_http.rs): `{build_id: report}`, each
 * report with `status` (found, missing, failed, pending, unknown, disabled) and `reason`.
 */
export async function debuginfoStatus(buildIds) {
  if (!buildIds.length) return {};
  const out = await getJson('/api/v1/debuginfo/status', { build_id: buildIds.join(',') });
  return Object.fromEntries(out.build_ids.map((r) => [r.build_id, r]));
}

/** The URL of `/api/v1/query` with these parameters (downloads). */
export function profileUrl(params) {
  return `/api/v1/query?${new URLSearchParams(Object.entries(params).filter(([k, v]) => v !== undefined && v !== null && (v !== '' || k === 'query')))}`;
}
