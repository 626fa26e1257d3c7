// Browser test of the UI against a server with read tokens and tenants (server/tests/ui.rs):
// the UI asks for a token, refuses a wrong one with the server's message, shows only the chosen
// tenant's data, and downloads pprof with the token.
// Usage: node access.mjs <base url> <read token> <screenshot dir>

import fs from 'node:fs';
import { assert, openBrowser, treeNames, profileLoaded } from './harness.mjs';

const [base, token, shots] = process.argv.slice(2);
if (!shots) {
  console.error('usage: node access.mjs <base url> <read token> <screenshot dir>');
  process.exit(2);
}
// The wrong token's answers are expected: 401 from the API.
const { browser, page, errors, shot, check } = await openBrowser(shots, {
  allowStatus: (status, url) => status === 401 && url.includes('/api/'),
});

async function signIn(tokenValue, tenant) {
  await page.waitForSelector('#signin[open]');
  await page.fill('#signin-token', tokenValue);
  await page.fill('#signin-tenant', tenant);
  await Promise.all([page.waitForEvent('load'), page.click('#signin button[value=ok]')]);
}

await check('asks for a read token before any query', async () => {
  await page.goto(base);
  await page.waitForSelector('#signin[open]');
  assert(/read token/.test(await page.textContent('#signin-why')), 'says why');
  assert(await page.isVisible('#signin-tenant'), 'tenant field (tenants are on)');
  await shot('access-sign-in');
});

await check('a wrong token is refused with the server\'s message', async () => {
  await signIn('not-the-token-0000', 'team-a');
  await page.waitForSelector('#signin[open]');
  const why = await page.textContent('#signin-why');
  assert(/token/.test(why), `the server's refusal: ${why}`);
  await shot('access-wrong-token');
});

await check('the right token shows the tenant\'s data only', async () => {
  await signIn(token, 'team-a');
  await profileLoaded(page, /Merged/);
  const names = await treeNames(page);
  assert(names.includes('only_in_team_a'), `team-a's frames: ${names}`);
  assert(!names.includes('only_in_default'), `no default tenant frames: ${names}`);
  assert((await page.textContent('#who')) === 'Tenant: team-a', 'tenant shown');
  await shot('access-tenant-a');
});

await check('pprof download sends the token', async () => {
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
  const body = fs.readFileSync(await download.path());
  assert(body[0] === 0x1f && body[1] === 0x8b && body.length > 50, `gzip pprof, ${body.length} bytes`);
  assert(download.suggestedFilename() === 'profile.pb.gz', download.suggestedFilename());
});

await check('switching to the default tenant', async () => {
  await page.click('#who');
  await signIn(token, '');
  await profileLoaded(page, /Merged/);
  const names = await treeNames(page);
  assert(names.includes('only_in_default') && !names.includes('only_in_team_a'), `default's frames: ${names}`);
  assert((await page.textContent('#who')) === 'Tenant: anonymous', 'default tenant shown');
});

await check('no page errors', async () => {
  assert(errors.length === 0, errors.join('\n'));
});

await browser.close();
console.log('all access checks passed');
