// The account view's Phones panel past "Add a phone": it lists the attendee's phones (added,
// last seen, app, battery; never a secret) and revokes one after a confirmation, after which
// the phone's credentials are refused. The browser's own device ("Share my location") is listed
// too, and revoking it says what it does: a page still sharing registers it again.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openPage, screenshot, seriousViolations, startedServerAndBrowser } from './harness.mjs';

const started = startedServerAndBrowser({ auth: 'on' });

/** What `/pub` answers to an OwnTracks location posted with a phone's password. */
async function owntracksPing(user, password, extra = {}) {
  const r = await fetch(`${started.server.url}/pub`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Basic ${btoa(`${user}:${password}`)}` },
    body: JSON.stringify({ _type: 'location', lat: 37.55, lon: -122.29, tst: Math.floor(Date.now() / 1000), ...extra }),
  });
  return r.status;
}

/** Adds a phone through the page; answers its OwnTracks user and password as shown this once. */
async function addPhone(page, name) {
  await page.getByLabel('Phone name').fill(name);
  await page.getByRole('button', { name: 'Add phone' }).click();
  await page.locator('#phones-status', { hasText: `Added ${name}.` }).waitFor({ timeout: 5000 });
  const values = await page.locator('#phone-owntracks dd').allTextContents();
  return { user: values[1], password: values[3] };
}

const row = (page, name) => page.locator('#phones-body tr', { has: page.getByRole('rowheader', { name, exact: true }) });
const cells = async (page, name) => row(page, name).locator('td').allTextContents();

/** Leaves the account view and comes back: the list is asked for again. */
async function reopen(page) {
  await page.goto(`${started.server.url}/#/attendees`);
  await page.goto(`${started.server.url}/#/account`);
  await page.locator('#phones-panel').waitFor({ timeout: 5000 });
}

test('the Phones panel lists the phones with last seen, app and battery, and revokes one after asking', async () => {
  const token = await started.server.createToken(['--role', 'attendee', '--person', '8']);
  const { page, errors } = await openPage(started.browser.context);
  await page.setExtraHTTPHeaders({ authorization: `Bearer ${token}` });
  const devicesAnswers = [];
  page.on('response', async (r) => {
    if (new URL(r.url()).pathname === '/api/me/devices' && r.request().method() === 'GET') devicesAnswers.push(await r.text());
  });
  await page.goto(`${started.server.url}/#/account`);

  // No phone yet: said so, and no empty table.
  await page.locator('#phones-empty').waitFor({ timeout: 5000 });
  assert.match(await page.locator('#phones-empty').textContent(), /^No phones yet\./);
  assert.equal(await page.locator('#phones-table').isVisible(), false);

  const pixel = await addPhone(page, 'Ana Pixel');
  const tablet = await addPhone(page, 'Ana Tablet');
  await page.locator('#phones-body tr').nth(1).waitFor({ timeout: 5000 });
  // Each phone's token is one of the account's tokens: that list follows.
  await page.locator('#tokens-body tr', { hasText: 'device: Ana Tablet' }).waitFor({ timeout: 5000 });
  assert.equal(await page.locator('#phones-empty').isVisible(), false);
  assert.deepEqual((await cells(page, 'Ana Pixel')).slice(1, 4), ['never', 'none yet', 'unknown']);

  // A ping from the Pixel, as OwnTracks sends it, with its battery level.
  assert.equal(await owntracksPing(pixel.user, pixel.password, { batt: 77 }), 200);
  await reopen(page);
  await row(page, 'Ana Pixel').waitFor({ timeout: 5000 });
  const [added, seen, app, battery] = await cells(page, 'Ana Pixel');
  assert.match(added, /\d{4}.*UTC$/);
  assert.match(seen, /\d{4}.*UTC$/);
  assert.deepEqual([app, battery], ['OwnTracks', '77 %']);
  assert.deepEqual((await cells(page, 'Ana Tablet')).slice(1, 4), ['never', 'none yet', 'unknown']);

  // The secrets were shown once: nothing the page shows or asked for holds them any more.
  assert.equal(await page.locator('#phone-added').isVisible(), false);
  const shown = await page.locator('body').innerText();
  for (const secret of [pixel.password, tablet.password]) {
    assert.ok(!shown.includes(secret), 'the page shows no password');
    assert.ok(devicesAnswers.every((answer) => !answer.includes(secret)), 'the list holds no password');
  }

  // Revoke asks first; keeping it changes nothing and gives the focus back.
  await page.getByRole('button', { name: 'Revoke Ana Pixel' }).click();
  const confirm = page.getByRole('group', { name: 'Revoke Ana Pixel?' });
  await confirm.waitFor({ timeout: 5000 });
  assert.match(await confirm.textContent(), /refused from now on/);
  assert.ok(await page.getByRole('button', { name: 'Keep it' }).evaluate((b) => b === document.activeElement));
  assert.deepEqual(await seriousViolations(page), []);
  await screenshot(page, 'account-phones-confirm');
  await page.getByRole('button', { name: 'Keep it' }).click();
  assert.equal(await confirm.isVisible(), false);
  assert.ok(await page.getByRole('button', { name: 'Revoke Ana Pixel' }).evaluate((b) => b === document.activeElement));
  assert.equal(await owntracksPing(pixel.user, pixel.password), 200);

  await page.getByRole('button', { name: 'Revoke Ana Pixel' }).click();
  await page.getByRole('button', { name: 'Yes, revoke Ana Pixel' }).click();
  await page.locator('#phones-status', { hasText: 'Revoked Ana Pixel.' }).waitFor({ timeout: 5000 });
  await row(page, 'Ana Pixel').waitFor({ state: 'detached', timeout: 5000 });
  assert.deepEqual(await page.locator('#phones-body th').allTextContents(), ['Ana Tablet']);
  await page.locator('#tokens-body tr', { hasText: 'device: Ana Pixel' }).waitFor({ state: 'detached', timeout: 5000 });
  assert.equal(await page.locator('#phones-status').getAttribute('role'), 'status');
  // Its password is refused, on /pub and as a bearer token; the other phone still posts.
  assert.equal(await owntracksPing(pixel.user, pixel.password), 401);
  const bearer = await fetch(`${started.server.url}/api/locations`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${pixel.password}` },
    body: JSON.stringify({ person_id: 8, latitude: 37.55, longitude: -122.29 }),
  });
  assert.equal(bearer.status, 401);
  assert.equal(await owntracksPing(tablet.user, tablet.password), 200);
  assert.deepEqual(await seriousViolations(page), []);
  await screenshot(page, 'account-phones');

  // Revoking a phone's token in the tokens list ends the phone: the Phones list follows, empty now.
  await page.getByRole('button', { name: 'Revoke device: Ana Tablet' }).click();
  await page.locator('#phones-empty').waitFor({ timeout: 5000 });
  assert.equal(await page.locator('#phones-table').isVisible(), false);
  assert.equal(await owntracksPing(tablet.user, tablet.password), 401);
  assert.deepEqual(errors, []);
  await page.close();
});

test('the browser\'s own device is listed, and revoking it says that a page still sharing registers it again', async () => {
  const token = await started.server.createToken(['--role', 'attendee', '--person', '9']);
  const share = () => fetch(`${started.server.url}/api/me/locations`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify([{ latitude: 37.55, longitude: -122.29, creation_time: new Date().toISOString() }]),
  });
  assert.equal((await share()).status, 202);

  // The phone refused below is a failed load Chromium reports.
  const { page, errors } = await openPage(started.browser.context, { expected: [/\/api\/me\/devices$/] });
  await page.setExtraHTTPHeaders({ authorization: `Bearer ${token}` });
  await page.goto(`${started.server.url}/#/account`);
  const name = 'Browser (Share my location)';
  await row(page, name).waitFor({ timeout: 5000 });
  const [, seen, app, battery] = await cells(page, name);
  assert.match(seen, /\d{4}.*UTC$/);
  assert.deepEqual([app, battery], ['Browser', 'unknown']);

  await page.getByRole('button', { name: `Revoke ${name}` }).click();
  const confirm = page.getByRole('group', { name: `Revoke ${name}?` });
  await confirm.waitFor({ timeout: 5000 });
  assert.match(await confirm.textContent(), /registers it again with its next ping/);
  assert.match(await confirm.textContent(), /turn Share my location off/);
  assert.deepEqual(await seriousViolations(page), []);
  await page.getByRole('button', { name: `Yes, revoke ${name}` }).click();
  await page.locator('#phones-empty').waitFor({ timeout: 5000 });

  // No phone may take its name.
  await page.getByLabel('Phone name').fill(name);
  await page.getByRole('button', { name: 'Add phone' }).click();
  await page.locator('#phone-error', { hasText: "browser's own device" }).waitFor({ timeout: 5000 });
  assert.equal(await page.locator('#phones-body tr').count(), 0);

  // As said: the next shared ping registers it again.
  assert.equal((await share()).status, 202);
  await reopen(page);
  await row(page, name).waitFor({ timeout: 5000 });
  assert.equal(await page.locator('#phones-body tr').count(), 1);
  assert.deepEqual(errors, []);
  await page.close();
});
