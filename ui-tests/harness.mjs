// What the browser tests share: headless Debian chromium (playwright-core), one page that
// records page errors, failed requests and console errors, numbered screenshots, and named
// checks that screenshot and exit on the first failure.

import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';

export function assert(cond, msg) {
  if (!cond) throw new Error(`assertion failed: ${msg}`);
}

/**
 * Starts chromium with one page in `shots` mode. `allowStatus(status, url)` says which HTTP
 * errors are expected (by default none is).
 */
export async function openBrowser(shots, { allowStatus = () => false } = {}) {
  fs.mkdirSync(shots, { recursive: true });
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu'],
  });
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 }, colorScheme: 'light', acceptDownloads: true });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => m.type() === 'error' && !m.text().startsWith('Failed to load resource') && errors.push(m.text()));
  page.on('response', (r) => r.status() >= 400 && !allowStatus(r.status(), r.url()) && errors.push(`${r.status()} ${r.url()}`));
  let step = 0;
  const shot = async (name, on = page) => {
    const file = path.join(shots, `${String(++step).padStart(2, '0')}-${name}.png`);
    await on.screenshot({ path: file, fullPage: true });
    console.log(`screenshot ${file}`);
  };
  const check = async (name, fn) => {
    const t0 = Date.now();
    try {
      await fn();
      console.log(`ok   ${name} (${Date.now() - t0} ms)`);
    } catch (e) {
      console.log(`FAIL ${name}: ${e.message}`);
      await shot(`FAILED-${name.replace(/\W+/g, '-')}`).catch(() => {});
      await browser.close();
      process.exit(1);
    }
  };
  return { browser, context, page, errors, shot, check };
}

/** The frame names of the loaded profile's tree (`window.__strata.tree`). */
export function treeNames(page) {
  return page.evaluate(() => {
    const t = window.__strata.tree;
    if (!t) return [];
    const out = [];
    for (let i = 1; i < t.n; i++) out.push(t.frames[t.frame[i]].name);
    return out;
  });
}

/** Waits for a profile whose title matches `re` to be loaded and drawn. */
export async function profileLoaded(page, re) {
  await page.waitForFunction((src) => {
    const t = window.__strata.tree;
    return t && new RegExp(src).test(document.querySelector('#profile-title').textContent)
      && !document.querySelector('#profile').classList.contains('loading');
  }, re.source, { timeout: 20000 });
}
