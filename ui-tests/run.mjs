// Browser test of Strata's UI against a running server holding real Go profiles (the goapp
// fixture, scraped). Usage: node run.mjs <base url> [screenshot dir]
// Run by server/tests/ui.rs; headless Debian chromium through playwright-core.

import path from 'node:path';
import { assert, openBrowser, treeNames as namesOf, profileLoaded as loadedOn } from './harness.mjs';

const base = process.argv[2];
const shots = process.argv[3] || path.resolve('target/ui-screenshots');
if (!base) {
  console.error('usage: node run.mjs <base url> [screenshot dir]');
  process.exit(2);
}
const CPU = 'process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta';

const { browser, context, page, errors, shot, check } = await openBrowser(shots);
const treeNames = () => namesOf(page);
/** Waits for a profile whose title matches `re` to be loaded and drawn. */
const profileLoaded = (re) => loadedOn(page, re);
/** Page coordinates of point `k` (negative: from the end) of pane `pane`'s first series. */
async function pointAt(pane, k) {
  return page.evaluate(([pane, k]) => {
    const g = window.__strata.panes[pane].graph;
    const pts = g.series[0].points;
    const p = pts[(k + pts.length) % pts.length];
    const r = g.svg.getBoundingClientRect();
    return { x: r.left + g.X(p.t), y: r.top + g.Y(g.val(p)) };
  }, [pane, k]);
}
/** Hovers/clicks the widest node named `name` in the main flame graph. */
async function nodeCenter(name) {
  const r = await page.evaluate((name) => {
    const s = window.__strata;
    const t = s.tree;
    let best = -1;
    for (let i = 1; i < t.n; i++) if (t.frames[t.frame[i]].name === name && (best < 0 || t.cum[i] > t.cum[best])) best = i;
    if (best < 0) return null;
    const rect = s.flame.rectOf(best);
    const c = s.flame.canvas.getBoundingClientRect();
    return { x: c.left + rect.x + Math.min(rect.w / 2, 60), y: c.top + rect.y + rect.h / 2 };
  }, name);
  assert(r, `a node named ${name}`);
  return r;
}

await check('page loads and picks a profile type', async () => {
  await page.goto(base);
  await page.waitForFunction(() => document.querySelectorAll('#pane-a .type option').length > 3);
  const names = await page.$$eval('#pane-a .type option', (os) => os.map((o) => o.textContent));
  for (const n of ['On-CPU', 'Memory in use', 'Goroutines', 'Lock contention', 'Blocking']) {
    assert(names.some((x) => x.startsWith(n)), `type picker offers ${n}: ${names}`);
  }
  await page.selectOption('#pane-a .type', 'memory:inuse_space:bytes:space:bytes');
  await page.waitForFunction(() => /Memory in use/.test(document.querySelector('#pane-a .type-desc').textContent));
  assert((await page.inputValue('#pane-a .query')).startsWith('memory:inuse_space'), 'query follows the type');
  await page.selectOption('#pane-a .type', CPU);
  await page.waitForFunction(() => /On-CPU/.test(document.querySelector('#pane-a .type-desc').textContent));
});

await check('query with autocomplete', async () => {
  const q = page.locator('#pane-a .query');
  await q.fill('');
  await q.type(`${CPU}{jo`);
  await page.locator('#pane-a .complete li', { hasText: 'job' }).first().waitFor();
  await shot('autocomplete-label');
  await page.keyboard.press('Enter');
  await page.locator('#pane-a .complete li', { hasText: '=' }).first().waitFor();
  await page.locator('#pane-a .complete li span', { hasText: /^=$/ }).click();
  await page.locator('#pane-a .complete li', { hasText: 'goapp' }).waitFor();
  await shot('autocomplete-value');
  await page.locator('#pane-a .complete li', { hasText: 'goapp' }).click();
  const v = await q.inputValue();
  assert(v === `${CPU}{job="goapp"}`, `completed query: ${v}`);
  await page.click('#pane-a .run');
  await page.waitForFunction((v) => new URL(location.href).searchParams.get('q') === v, v);
});

await check('metrics graph shows the series', async () => {
  await page.waitForSelector('#pane-a path.series');
  await page.waitForFunction(() => Number(document.querySelector('#pane-a').dataset.points) >= 3);
  await profileLoaded(/Merged/);
  await shot('graph-and-merged-icicle');
});

await check('merged icicle graph has the hot functions', async () => {
  const hot = await page.evaluate(() => {
    const t = window.__strata.tree;
    const by = {};
    for (let i = 1; i < t.n; i++) {
      const n = t.frames[t.frame[i]].name;
      by[n] = Math.max(by[n] || 0, t.cum[i] / t.cum[0]);
    }
    return by;
  });
  assert(hot['main.burnCPU'] > 0.3, `main.burnCPU is hot: ${hot['main.burnCPU']}`);
  assert(hot['crypto/sha256.block'] > 0.1, `crypto/sha256.block is hot: ${hot['crypto/sha256.block']}`);
});

await check('hover tooltip, click to zoom, breadcrumb', async () => {
  const c = await nodeCenter('main.burnCPU');
  await page.mouse.move(c.x, c.y);
  await page.waitForSelector('.flame-tooltip:not([hidden])');
  const tip = await page.textContent('.flame-tooltip');
  assert(tip.includes('main.burnCPU') && tip.includes('Cumulative') && tip.includes('%'), `tooltip: ${tip}`);
  assert(/\d+(\.\d+)? (ms|s|min)/.test(tip), `time units in tooltip: ${tip}`);
  await shot('icicle-hover');
  await page.mouse.click(c.x, c.y);
  await page.waitForSelector('#breadcrumb:not([hidden])');
  assert((await page.textContent('#breadcrumb')).includes('main.burnCPU'), 'breadcrumb');
  assert(new URL(page.url()).searchParams.get('zoom') === 'main.burnCPU', `zoom in URL: ${page.url()}`);
  await shot('icicle-zoomed');
  await page.click('#breadcrumb a[data-node="0"]');
  await page.waitForSelector('#breadcrumb[hidden]', { state: 'attached' });
});

await check('search highlights and shows % of total', async () => {
  await page.fill('#search', 'sha256');
  await page.waitForFunction(() => /% of total matches/.test(document.querySelector('#match').textContent));
  const frac = await page.evaluate(() => window.__strata.flame.matchFraction());
  assert(frac > 0.1 && frac <= 1, `match fraction ${frac}`);
  await shot('icicle-search');
  await page.fill('#search', '');
  await page.waitForFunction(() => document.querySelector('#match').textContent === '');
});

await check('invert into a flame graph; colour by binary', async () => {
  const y0 = await page.evaluate(() => window.__strata.flame.rectOf(0).y);
  await page.check('#invert');
  await page.waitForFunction(() => new URL(location.href).searchParams.get('invert') === '1');
  const y1 = await page.evaluate(() => window.__strata.flame.rectOf(0).y);
  assert(y0 === 0 && y1 > 0, `root row moves to the bottom: ${y0} -> ${y1}`);
  await page.selectOption('#colorby', 'binary');
  await page.waitForFunction(() => new URL(location.href).searchParams.get('color') === 'binary');
  await shot('flame-inverted-by-binary');
  await page.uncheck('#invert');
  await page.selectOption('#colorby', 'package');
});

await check('top table sorts; sandwich view', async () => {
  await page.click('#views button[data-view="table"]');
  await page.waitForSelector('table.top tbody tr');
  assert((await page.textContent('table.top')).includes('crypto/sha256.block'), 'table has sha256.block');
  await page.click('table.top th[data-key="cumulative"]');
  const first = await page.textContent('table.top tbody tr:first-child td.name');
  const sorted = await page.evaluate((first) => {
    const d = window.__strata.table.data;
    const max = Math.max(...d.rows.map((r) => r.cumulative));
    return d.rows.some((r) => d.frames[r.frame].name === first && r.cumulative === max);
  }, first);
  assert(sorted, `sorted by cumulative, first: ${first}`);
  await shot('top-table');
  await page.click('table.top tbody tr[data-name="crypto/sha256.Sum256"]');
  await page.waitForSelector('#sandwich:not([hidden])');
  await page.waitForFunction(() => Number(document.querySelector('#sandwich').dataset.occurrences) >= 1);
  assert(new URL(page.url()).searchParams.get('fn') === 'crypto/sha256.Sum256', 'fn in URL');
  await shot('sandwich');
  await page.click('#views button[data-view="icicle"]');
});

await check('graph: right-click adds a matcher, shift-click on the tooltip label too', async () => {
  const pt = await pointAt(0, -3);
  await page.mouse.click(pt.x, pt.y, { button: 'right' });
  await page.locator('#pane-a .menu-item', { hasText: 'instance=' }).click();
  await page.waitForFunction(() => /instance=/.test(new URL(location.href).searchParams.get('q') || ''));
  await page.waitForFunction(() => Number(document.querySelector('#pane-a').dataset.points) >= 3);
  const pt2 = await pointAt(0, -3);
  await page.mouse.move(pt2.x, pt2.y);
  await page.waitForSelector('#pane-a .graph-tooltip:not([hidden])');
  await page.keyboard.down('Shift');
  await page.click('#pane-a .graph-tooltip .tt-label[data-label="env"]', { modifiers: ['Shift'] });
  await page.keyboard.up('Shift');
  await page.waitForFunction(() => /env="/.test(new URL(location.href).searchParams.get('q') || ''));
  await page.waitForSelector('#pane-a path.series');
});

await check('click a point: single profile', async () => {
  await page.waitForFunction(() => Number(document.querySelector('#pane-a').dataset.points) >= 3);
  const pt = await pointAt(0, -2);
  await page.mouse.click(pt.x, pt.y);
  await profileLoaded(/Profile at/);
  assert(new URL(page.url()).searchParams.get('sel').startsWith('t:'), 'single selection in URL');
  const names = await treeNames();
  assert(names.includes('main.burnCPU'), 'single profile has main.burnCPU');
  await shot('single-profile');
  await page.click('#pane-a .merge');
  await profileLoaded(/Merged/);
});

await check('drag on the graph zooms the range', async () => {
  // The data covers the last seconds of the range: narrow it to five minutes, then brush from
  // just before the first point to just after the second-to-last one (not fixed fractions of
  // the width, which may hold no point at all on a fast run).
  await page.selectOption('#pane-a select.range', 'now-5m');
  await page.waitForFunction(() => new URL(location.href).searchParams.get('from') === 'now-5m');
  await page.waitForFunction(() => Number(document.querySelector('#pane-a').dataset.points) >= 8);
  const first = await pointAt(0, 0);
  const last = await pointAt(0, -2);
  const y = first.y - 5;
  await page.mouse.move(first.x - 4, y);
  await page.mouse.down();
  await page.mouse.move((first.x + last.x) / 2, y, { steps: 5 });
  await page.mouse.move(last.x + 4, y, { steps: 5 });
  await page.mouse.up();
  await page.waitForFunction(() => /^\d+$/.test(new URL(location.href).searchParams.get('from') || ''));
  await profileLoaded(/Merged/);
  assert(await page.isVisible('#pane-a .abs'), 'absolute range inputs shown');
  await page.waitForFunction(() => Number(document.querySelector('#pane-a').dataset.points) >= 3);
});

await check('compare two ranges: diff icicle graph', async () => {
  await page.click('#compare');
  await page.waitForSelector('#pane-b:not([hidden]) path.series');
  await page.waitForFunction(() => Number(document.querySelector('#pane-b').dataset.points) >= 3);
  // B: one profile; A: the zoomed range.
  const pt = await pointAt(1, -1);
  await page.mouse.click(pt.x, pt.y);
  await profileLoaded(/^Diff/);
  const meta = await page.evaluate(() => window.__strata.tree.meta);
  assert(meta.diff === true && meta.base_total > 0 && meta.total > 0, `diff meta ${JSON.stringify(meta)}`);
  const hasBase = await page.evaluate(() => Array.from(window.__strata.tree.base).some((b) => b > 0));
  assert(hasBase, 'nodes carry base values');
  const c = await nodeCenter('main.burnCPU');
  await page.mouse.move(c.x, c.y);
  await page.waitForSelector('.flame-tooltip:not([hidden])');
  const tip = await page.textContent('.flame-tooltip');
  assert(tip.includes('Diff') && tip.includes('Base'), `diff tooltip: ${tip}`);
  await shot('compare-diff-absolute');
  await page.selectOption('#diffmode', 'relative');
  await page.waitForFunction(() => new URL(location.href).searchParams.get('diff') === 'relative');
  await profileLoaded(/^Diff/);
  await shot('compare-diff-relative');
});

await check('dark mode toggle, remembered', async () => {
  assert((await page.getAttribute('html', 'data-theme')) === 'light', 'follows the OS (light)');
  await page.click('#theme');
  assert((await page.getAttribute('html', 'data-theme')) === 'dark', 'dark after toggle');
  assert((await page.evaluate(() => localStorage.getItem('strata-theme'))) === 'dark', 'choice remembered');
  await page.mouse.move(5, 5);
  await shot('dark-mode');
});

await check('reload from the URL reproduces the view', async () => {
  await page.fill('#search', 'burn');
  await page.waitForFunction(() => new URL(location.href).searchParams.get('search') === 'burn');
  const url = page.url();
  const state = await page.evaluate(() => ({ ...window.__strata.state }));
  const p2 = await context.newPage();
  p2.on('pageerror', (e) => errors.push(e.message));
  await p2.setViewportSize({ width: 1400, height: 1000 });
  await p2.goto(url);
  await p2.waitForFunction(() => window.__strata.tree && window.__strata.tree.meta.diff && !document.querySelector('#profile').classList.contains('loading'));
  const state2 = await p2.evaluate(() => ({ ...window.__strata.state }));
  assert(JSON.stringify(state2) === JSON.stringify(state), `state ${JSON.stringify(state2)} vs ${JSON.stringify(state)}`);
  assert(await p2.isVisible('#pane-b'), 'compare pane restored');
  assert((await p2.inputValue('#search')) === 'burn', 'search restored');
  assert((await p2.getAttribute('html', 'data-theme')) === 'dark', 'theme remembered');
  assert(/% of total matches/.test(await p2.textContent('#match')), 'search applied');
  await shot('reloaded', p2);
  await p2.close();
});

await check('download pprof link', async () => {
  const href = await page.getAttribute('#download', 'href');
  const res = await page.request.get(new URL(href, base).toString());
  assert(res.ok(), `pprof download status ${res.status()}`);
  const body = await res.body();
  assert(body[0] === 0x1f && body[1] === 0x8b, 'gzip pprof');
});

await check('no page errors', async () => {
  assert(errors.length === 0, errors.join('\n'));
});

await browser.close();
console.log('all UI checks passed');
