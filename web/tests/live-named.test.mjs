// The live map's one exception to anonymity, in a real Chromium against `serve --demo` with
// auth on: an attendee who chooses it on the account page is named on the organizers' map, and
// anonymous again once they take it back.

import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { openPage, screenshot, seriousViolations, startedServerAndBrowser, waitFor } from './harness.mjs';

const EARTH_RADIUS_M = 6371008.8;
const started = startedServerAndBrowser({ auth: 'on' });
let pam;
let organizer;
let venue;

before(async () => {
  await started.ready;
  pam = await started.server.createToken(['--role', 'attendee', '--person', '1']);
  organizer = await started.server.createToken(['--role', 'organizer']);
  const response = await fetch(`${started.server.url}/api/venue`, { headers: { authorization: `Bearer ${organizer}` } });
  assert.equal(response.status, 200);
  venue = await response.json();
});

async function signedInPage(token) {
  const opened = await openPage(started.browser.context);
  await opened.page.setExtraHTTPHeaders({ authorization: `Bearer ${token}` });
  return opened;
}

/** Pam's ping at the middle of the plan, now, sent with her own token. */
async function pamWalksIn() {
  const lat0 = venue.origin.latitude * Math.PI / 180;
  const ping = {
    person_id: 1,
    latitude: venue.origin.latitude + (venue.depth_m / 2 / EARTH_RADIUS_M) * 180 / Math.PI,
    longitude: venue.origin.longitude + (venue.width_m / 2 / (EARTH_RADIUS_M * Math.cos(lat0))) * 180 / Math.PI,
  };
  const r = await fetch(`${started.server.url}/api/locations`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${pam}` },
    body: JSON.stringify(ping),
  });
  assert.equal(r.status, 202);
}

test('an attendee who chooses it is named on the organizers’ live map, and only while they do', async () => {
  // Pam chooses, on her account page, to be named on the live map.
  const attendee = await signedInPage(pam);
  await attendee.page.goto(`${started.server.url}/#/account`);
  const toggle = attendee.page.getByLabel('Organizers may see my name on the live map');
  await waitFor(async () => !(await toggle.isDisabled()), 5000, 'the choice loaded');
  assert.equal(await toggle.isChecked(), false, 'anonymous until chosen');
  await toggle.check();
  await attendee.page.locator('#visibility-status', { hasText: 'Organizers now see your name on the live map.' }).waitFor({ timeout: 5000 });
  assert.equal(await attendee.page.getByLabel('People I met may see my name').isChecked(), false, 'a choice apart');
  assert.deepEqual(await seriousViolations(attendee.page), []);
  await pamWalksIn();

  // The organizer's map names her, and no one else.
  const { page, errors } = await signedInPage(organizer);
  await page.goto(`${started.server.url}/#/live`);
  const marker = page.locator('#live-figure .marker.named[data-person="1"]');
  await marker.waitFor({ timeout: 10000 });
  assert.match(await marker.locator('title').textContent(), /^Pam Trexler, /);
  assert.equal(await marker.locator('text').textContent(), 'Pam Trexler');
  assert.equal(await page.locator('#live-figure .marker[data-person]').count(), 1);
  await page.locator('#positions-details summary').click();
  await page.locator('#positions-body tr[data-person="1"] th', { hasText: 'Pam Trexler' }).waitFor({ timeout: 3000 });
  assert.deepEqual(await seriousViolations(page), []);
  await screenshot(page, 'live-named');

  // She takes it back: within seconds the map (pushed as the conference pings) has no name.
  await toggle.uncheck();
  await attendee.page.locator('#visibility-status', { hasText: 'anonymous dot' }).waitFor({ timeout: 5000 });
  await page.locator('#live-figure .marker[data-person]').first().waitFor({ state: 'detached', timeout: 15000 });
  assert.equal(await page.locator('#live-figure .marker.named').count(), 0);
  assert.deepEqual(errors, []);
  assert.deepEqual(attendee.errors, []);
  await page.close();
  await attendee.page.close();
});
