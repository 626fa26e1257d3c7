// Friendly names and descriptions of profile types (Parca ids: name:sample_type:sample_unit:period_type:period_unit[:delta]).

const KNOWN = [
  // [test(id) -> bool, name, description]
  [(t) => t.name === 'parca_agent' && t.sample_type === 'samples', 'On-CPU (eBPF)',
    'Stacks sampled by the eBPF agent while running on a CPU, for every process. Use to find what burns CPU across the machine.'],
  [(t) => t.name === 'process_cpu' && t.sample_type === 'cpu', 'On-CPU',
    'Time spent running on a CPU. Use to find the code that burns CPU; not time spent waiting.'],
  [(t) => t.name === 'process_cpu' && t.sample_type === 'samples', 'On-CPU (samples)',
    'Number of CPU samples (same profile as On-CPU, counted in samples instead of time).'],
  [(t) => t.name === 'fgprof' || t.name === 'wall', 'Wall clock',
    'On- and off-CPU time (running plus waiting on I/O, locks, sleep). Use for latency.'],
  [(t) => t.name === 'memory' && t.sample_type === 'inuse_space', 'Memory in use',
    'Bytes allocated and not yet freed when the profile was taken. Use to find leaks and what holds the heap.'],
  [(t) => t.name === 'memory' && t.sample_type === 'inuse_objects', 'Objects in use',
    'Number of live heap objects when the profile was taken. Use with many small allocations.'],
  [(t) => t.name === 'memory' && t.sample_type === 'alloc_space', 'Allocations',
    'Bytes allocated (freed or not). Use to reduce allocation rate and GC pressure.'],
  [(t) => t.name === 'memory' && t.sample_type === 'alloc_objects', 'Allocated objects',
    'Number of objects allocated (freed or not). Use to reduce allocation count and GC work.'],
  [(t) => t.name === 'goroutine', 'Goroutines',
    'Number of goroutines and where they are. Use to find goroutine leaks and what is stuck.'],
  [(t) => t.name === 'mutex' && t.sample_type === 'delay', 'Lock contention',
    'Time goroutines waited for a contended mutex. Use when throughput is limited by locks.'],
  [(t) => t.name === 'mutex', 'Lock contentions',
    'Number of waits on a contended mutex. Use with Lock contention to see how often.'],
  [(t) => t.name === 'block' && t.sample_type === 'delay', 'Blocking',
    'Time goroutines spent blocked (channels, select, sync primitives). Use for stalls and latency.'],
  [(t) => t.name === 'block', 'Blocking events',
    'Number of blocking events (channels, select, sync primitives).'],
];

/** Parses a type id into its parts. */
export function parseType(id) {
  const p = id.split(':');
  return {
    id, name: p[0], sample_type: p[1] || '', sample_unit: p[2] || '', period_type: p[3] || '',
    period_unit: p[4] || '', delta: p[5] === 'delta',
  };
}

/** {name, description} for a type id. */
export function describeType(id) {
  const t = parseType(id);
  for (const [test, name, description] of KNOWN) {
    if (test(t)) {
      if (t.name === 'memory' && t.delta) {
        return { name: `${name} (per interval)`, description: `${description} Counted per scrape interval.` };
      }
      if (['mutex', 'block', 'memory'].includes(t.name) && !t.delta && !t.sample_type.startsWith('inuse')) {
        return { name: `${name} (since start)`, description: `${description} Cumulative since the process started.` };
      }
      return { name, description };
    }
  }
  return { name: `${t.name} ${t.sample_type}`, description: `${t.sample_type} in ${t.sample_unit}${t.delta ? ', per interval' : ''}.` };
}

/** Sorts type ids: well-known first, in KNOWN's order, then by id. */
export function sortTypes(ids) {
  const rank = (id) => {
    const t = parseType(id);
    const i = KNOWN.findIndex(([test]) => test(t));
    return (i < 0 ? 100 : i) * 2 + (t.name === 'memory' && !t.delta && t.sample_type.startsWith('alloc') ? 1 : 0);
  };
  return [...ids].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}

/** The type part of a query (before `{`). */
export function queryType(query) {
  return query.split('{')[0].trim();
}

/** The query with its type replaced, its matchers kept. */
export function withType(query, type) {
  const i = query.indexOf('{');
  return type + (i >= 0 ? query.slice(i) : '{}');
}

/** Adds (or replaces) matcher `label="value"` in a query. */
export function addMatcher(query, label, value, op = '=') {
  const i = query.indexOf('{');
  const type = i >= 0 ? query.slice(0, i) : query;
  let body = i >= 0 ? query.slice(i + 1, query.lastIndexOf('}') >= 0 ? query.lastIndexOf('}') : undefined) : '';
  const parts = splitMatchers(body).filter((m) => !m.startsWith(`${label}=`) && !m.startsWith(`${label}!`) && m.trim());
  parts.push(`${label}${op}${JSON.stringify(value)}`);
  return `${type}{${parts.join(', ')}}`;
}

function splitMatchers(body) {
  const out = [];
  let cur = '';
  let q = false;
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (q && c === '\\') { cur += c + body[++i]; continue; }
    if (c === '"') q = !q;
    if (!q && c === ',') { out.push(cur.trim()); cur = ''; continue; }
    cur += c;
  }
  if (cur.trim()) out.push(cur.trim());
  return out;
}

/** The unit of a type id's values. */
export function typeUnit(id) {
  return parseType(id).sample_unit || 'count';
}
