// The venue live in a real Chromium against `udaconnect serve --demo`, whose simulated conference
// keeps pinging while the tests run.

import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { openPage, postPing, screenshot, seriousViolations, startedServerAndBrowser, waitFor } from './harness.mjs';

const EARTH_RADIUS_M = 6371008.8;

const started = startedServerAndBrowser();
let venue;

before(async () => {
  await started.ready;
  const response = await fetch(`${started.server.url}/api/venue`);
  assert.equal(response.status, 200, 'serve --demo has a venue plan');
  venue = await response.json();
});

/** The latitude and longitude of a point x metres east, y north of the venue's corner. */
function onPlan(x, y) {
  const lat0 = venue.origin.latitude * Math.PI / 180;
  return {
    latitude: venue.origin.latitude + (y / EARTH_RADIUS_M) * 180 / Math.PI,
    longitude: venue.origin.longitude + (x / (EARTH_RADIUS_M * Math.cos(lat0))) * 180 / Math.PI,
  };
}

async function openLive(viewport) {
  const opened = await openPage(started.browser.context, { viewport });
  await opened.page.goto(`${started.server.url}/#/live`);
  await opened.page.locator('#live-status', { hasText: 'Live' }).waitFor({ timeout: 5000 });
  await opened.page.locator('#live-figure .marker').first().waitFor({ timeout: 5000 });
  return opened;
}

test('the live map draws the venue plan and everyone’s last ping', async () => {
  const { page, errors } = await openLive();
  assert.equal(await page.locator('#live-figure .venue-outline').count(), 1);
  assert.equal(await page.locator('#live-figure .area').count(), venue.areas.length);
  assert.match(await page.locator('#live-frame').textContent(), new RegExp(`^Plan of ${venue.name.replace(/[()]/g, '\\$&')}, north up\\.`));
  assert.match(await page.locator('#live-figure svg[role="img"]').getAttribute('aria-label'), /^Live map of /);

  // One marker per person with pings, for everyone the server lists (more may have come since).
  const positions = await (await fetch(`${started.server.url}/api/live/positions`)).json();
  await waitFor(async () => await page.locator('#live-figure .marker').count() >= positions.length, 2000, 'a marker per person');
  // The seed attendees' last pings (2020, far from the plan) are listed as off the plan.
  assert.equal(await page.locator('#live-figure .marker[data-person="1"]').getAttribute('data-location'), '33');
  assert.match(await page.locator('#live-frame').textContent(), /attendees are off the plan/);

  // The text alternative lists the same people (arrivals join both within a second).
  await page.locator('#positions-details summary').click();
  const rows = page.locator('#positions-body tr');
  await waitFor(async () => await rows.count() >= positions.length, 2000, 'a row per person');
  const listed = await rows.evaluateAll((trs) => trs.map((tr) => tr.dataset.person));
  const drawn = new Set(await page.locator('#live-figure .marker').evaluateAll((gs) => gs.map((g) => g.dataset.person)));
  assert.ok(listed.every((id) => drawn.has(id)), 'every listed person has a marker');
  assert.match(await page.locator('#positions-body tr[data-person="1"]').textContent(), /^Pam Trexler19 Aug 2020, 10:37:06 UTC37\.55345, -122\.29052 \(off the plan\)$/);
  assert.deepEqual(await seriousViolations(page), []);
  assert.deepEqual(errors, []);
  await page.close();
});

test('a ping posted through the API appears on the live map within a second, pushed by the server', async () => {
  const { page, errors } = await openLive();
  const positionReads = [];
  page.on('request', (r) => { if (r.url().includes('/api/live/positions')) positionReads.push(r.url()); });
  const marker = page.locator('#live-figure .marker[data-person="1"]');
  assert.equal(await marker.getAttribute('data-location'), '33');

  // Pam walks in: a ping at the middle of the plan, stamped now by the server.
  const id = await postPing(started.server.url, { person_id: 1, ...onPlan(venue.width_m / 2, venue.depth_m / 2) });
  const posted = Date.now();
  await page.waitForFunction((want) => document.querySelector('#live-figure .marker[data-person="1"]')?.dataset.location === want,
    String(id), { timeout: 1000, polling: 'raf' });
  const elapsed = Date.now() - posted;
  assert.ok(elapsed < 1000, `${elapsed} ms`);
  assert.deepEqual(positionReads, [], 'the page did not ask for positions: the stream brought the ping');

  // The marker now stands inside the plan, near its centre, drawn as a recent ping.
  const dot = await marker.locator('circle').boundingBox();
  const plan = await page.locator('#live-figure .venue-outline').boundingBox();
  const [cx, cy] = [dot.x + dot.width / 2, dot.y + dot.height / 2];
  assert.ok(Math.abs(cx - (plan.x + plan.width / 2)) < 3 && Math.abs(cy - (plan.y + plan.height / 2)) < 3,
    `marker at ${cx},${cy}, plan ${JSON.stringify(plan)}`);
  assert.equal(await marker.locator('circle').getAttribute('class'), 'marker-dot fresh');
  assert.match(await marker.locator('title').textContent(), /^Pam Trexler, /);
  assert.deepEqual(errors, []);
  await page.close();
});

test('meetings at the venue are drawn on its plan, with the room they were in', async () => {
  // Pam and Otto stand together in Room 1 now; their 2020 meeting lies far off the plan.
  const room = venue.areas.find((a) => a.name === 'Room 1');
  assert.ok(room, 'the demo venue has a Room 1');
  const at = onPlan(room.x + room.width / 2, room.y + room.depth / 2);
  const now = new Date().toISOString();
  for (const person of [1, 9]) await postPing(started.server.url, { person_id: person, ...at, creation_time: now });
  await waitFor(async () => {
    const contacts = await (await fetch(`${started.server.url}/api/persons/1/contacts?min_duration=0`)).json();
    return contacts.find((c) => c.person.id === 9)?.encounter_count === 2;
  }, 2000, 'the new meeting to be stored');

  const { page, errors } = await openPage(started.browser.context);
  await page.goto(`${started.server.url}/#/attendees/1`);
  const otto = page.locator('#contacts > li[data-person="9"]');
  await otto.waitFor({ timeout: 5000 });
  assert.equal(await otto.locator('.encounter-count').textContent(), '2');
  assert.equal(await page.getByLabel('To (included)').inputValue(), now.slice(0, 10));
  assert.equal(await page.locator('#meetings-figure .area').count(), venue.areas.length);
  assert.match(await page.locator('#meetings-frame').textContent(),
    /^Part of the plan of .+ around the meetings, north up\. 2 meeting places lie off the plan \(see the list\)\.$/);

  const today = otto.locator('tbody tr').nth(1);
  assert.match(await today.textContent(), /Room 1 \(/);
  await today.locator('button.encounter').click();
  const ring = await page.locator('#meetings-figure .highlight-ring').boundingBox();
  const labels = await page.locator('#meetings-figure .area-label', { hasText: 'Room 1' }).boundingBox();
  assert.ok(ring && labels, 'the highlight and Room 1 are both in view');
  assert.match(await page.locator('#meetings-selected').textContent(), /^Highlighted: Otto Spring, .+ at Room 1 \(/);
  await screenshot(page, 'attendee-meetings-venue');
  assert.deepEqual(errors, []);
  await page.close();
});

test('the ingest rate chart and the heat layer follow the simulated conference', async () => {
  const { page, errors } = await openLive();
  // The server sends the rate once a second: wait for three samples.
  await waitFor(async () => await page.locator('#rate-chart .rate-bar').count() >= 3, 5000, 'three rate samples');
  assert.match(await page.locator('#rate-value').textContent(), /^\d[\d,]*$/);
  assert.match(await page.locator('#rate-total').textContent(), /^\([\d,]+ since start\)$/);
  assert.match(await page.locator('#rate-chart').getAttribute('aria-label'), /^Ingest rate over the last \d+ seconds: now \d+ pings per second, peak \d+\.$/);

  // The simulated attendees pinged in the last 10 minutes: heat cells lie on the plan.
  await page.locator('#live-figure .heat-cell').first().waitFor({ timeout: 5000 });
  const heat = await (await fetch(`${started.server.url}/api/live/heat?minutes=10`)).json();
  assert.ok(heat.cells.length > 0);
  await page.getByLabel('Heat of recent pings').uncheck();
  assert.equal(await page.locator('#live-figure .heat-cell').count(), 0);
  await page.getByLabel('Heat of recent pings').check();
  await page.locator('#live-figure .heat-cell').first().waitFor({ timeout: 5000 });
  await page.getByLabel('Recent means the last').selectOption('1');
  await page.locator('#live-figure .heat-cell').first().waitFor({ timeout: 5000 });
  await page.getByLabel('Recent means the last').selectOption('10');
  await screenshot(page, 'live');
  assert.deepEqual(errors, []);
  await page.close();
});

test('on a phone-sized screen the live map fits the width', async () => {
  const { page, errors } = await openLive({ width: 390, height: 844 });
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= 390), 'no sideways scrolling');
  const map = await page.locator('#live-figure svg').boundingBox();
  assert.ok(map.width > 300 && map.x + map.width <= 390, JSON.stringify(map));
  await screenshot(page, 'phone-live');
  assert.deepEqual(await seriousViolations(page), []);
  assert.deepEqual(errors, []);
  await page.close();
});
