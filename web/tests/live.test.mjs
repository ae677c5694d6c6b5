// The venue live in a real Chromium against `udaconnect serve --demo`, whose simulated conference
// keeps pinging while the tests run. Under the open contract (`--auth off`) no attendee can
// choose to be named: every dot is anonymous, and shown only among five people at least.

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
  await opened.page.locator('#live-figure .marker').first().waitFor({ timeout: 10000 });
  return opened;
}

/** The dots the page draws within `px` pixels of the plan's centre. */
async function dotsAtCentre(page, px = 3) {
  return page.evaluate((px) => {
    const plan = document.querySelector('#live-figure .venue-outline').getBoundingClientRect();
    const [cx, cy] = [plan.x + plan.width / 2, plan.y + plan.height / 2];
    return [...document.querySelectorAll('#live-figure .marker circle')].filter((c) => {
      const r = c.getBoundingClientRect();
      return Math.abs(r.x + r.width / 2 - cx) < px && Math.abs(r.y + r.height / 2 - cy) < px;
    }).length;
  }, px);
}

test('the live map draws the venue plan and anonymous dots, never a name or an id', async () => {
  const { page, errors } = await openLive();
  assert.equal(await page.locator('#live-figure .venue-outline').count(), 1);
  assert.equal(await page.locator('#live-figure .area').count(), venue.areas.length);
  assert.match(await page.locator('#live-frame').textContent(), new RegExp(`^Plan of ${venue.name.replace(/[()]/g, '\\$&')}, north up\\.`));
  assert.match(await page.locator('#live-figure svg[role="img"]').getAttribute('aria-label'), /^Live map of .+ attendees shown\./);

  // The server's dots carry no id nor name, and neither do the page's markers.
  const dots = await (await fetch(`${started.server.url}/api/live/positions`)).json();
  assert.ok(dots.every((d) => Object.keys(d).join() === 'latitude,longitude,time'), JSON.stringify(dots[0]));
  const markers = page.locator('#live-figure .marker');
  assert.equal(await page.locator('#live-figure .marker[data-person]').count(), 0);
  assert.ok((await markers.evaluateAll((gs) => gs.map((g) => g.querySelector('title').textContent)))
    .every((t) => /^Someone, /.test(t)));
  assert.equal(await page.locator('#live-figure .marker text').count(), 0, 'no name labels');

  // The text alternative lists the same dots, as someone.
  await page.locator('#positions-details summary').click();
  const rows = page.locator('#positions-body tr');
  await waitFor(async () => await rows.count() > 0, 2000, 'rows');
  assert.ok((await rows.locator('th').allTextContents()).every((t) => t === 'Someone'));
  assert.equal(await page.locator('#positions-body tr[data-person]').count(), 0);
  // People per room: the plan's areas with five people at least, the rule said.
  await page.locator('#zones-list li').first().waitFor({ timeout: 5000 });
  assert.match(await page.locator('#zones-note').textContent(), /fewer than 5 are left out\.$/);
  const zones = await (await fetch(`${started.server.url}/api/live/zones?minutes=10`)).json();
  assert.ok(zones.zones.every((z) => z.count >= 5), JSON.stringify(zones));
  assert.deepEqual(await seriousViolations(page), []);
  assert.deepEqual(errors, []);
  await page.close();
});

test('five pings posted through the API appear on the live map within a second, pushed by the server', async () => {
  const { page, errors } = await openLive();
  const positionReads = [];
  page.on('request', (r) => { if (r.url().includes('/api/live/positions')) positionReads.push(r.url()); });
  const before = await dotsAtCentre(page);

  // Five seed attendees walk in together: pings at the middle of the plan, stamped now.
  const centre = onPlan(venue.width_m / 2, venue.depth_m / 2);
  for (const person of [1, 5, 6, 8, 9]) await postPing(started.server.url, { person_id: person, ...centre });
  const posted = Date.now();
  await page.waitForFunction((want) => {
    const plan = document.querySelector('#live-figure .venue-outline').getBoundingClientRect();
    const [cx, cy] = [plan.x + plan.width / 2, plan.y + plan.height / 2];
    return [...document.querySelectorAll('#live-figure .marker circle')].filter((c) => {
      const r = c.getBoundingClientRect();
      return Math.abs(r.x + r.width / 2 - cx) < 3 && Math.abs(r.y + r.height / 2 - cy) < 3;
    }).length >= want;
  }, before + 5, { timeout: 1000, polling: 'raf' });
  const elapsed = Date.now() - posted;
  assert.ok(elapsed < 1000, `${elapsed} ms`);
  assert.deepEqual(positionReads, [], 'the page did not ask for positions: the stream brought the map');

  // Drawn as recent pings, anonymous.
  const fresh = await page.locator('#live-figure .marker.anonymous circle.fresh').count();
  assert.ok(fresh >= 5, `${fresh} fresh dots`);
  assert.equal(await page.locator('#live-figure .marker[data-person]').count(), 0);
  assert.deepEqual(errors, []);
  await page.close();
});

test('meetings at the venue are drawn on its plan, with the room they were in', async () => {
  // Pam and Otto stand together in Room 1 now; their 2020 meeting lies far off the plan.
  const room = venue.areas.find((a) => a.name === 'Room 1');
  assert.ok(room, 'the demo venue has a Room 1');
  const at = onPlan(room.x + room.width / 2, room.y + room.depth / 2);
  // Twenty minutes ago, in whole seconds: the pings the live test posts now at the centre of
  // the plan (Pam and Otto among five) are then a meeting of their own, not part of this one.
  const when = new Date(Math.floor(Date.now() / 1000 - 20 * 60) * 1000).toISOString();
  const isThisOne = (e) => Date.parse(e.start) <= Date.parse(when) && Date.parse(when) <= Date.parse(e.end);
  for (const person of [1, 9]) await postPing(started.server.url, { person_id: person, ...at, creation_time: when });
  let met;
  await waitFor(async () => {
    const contacts = await (await fetch(`${started.server.url}/api/persons/1/contacts?min_duration=0`)).json();
    met = contacts.find((c) => c.person.id === 9);
    return met?.encounters.some(isThisOne);
  }, 2000, 'the new meeting to be stored');

  const { page, errors } = await openPage(started.browser.context);
  await page.goto(`${started.server.url}/#/attendees/1`);
  const otto = page.locator('#contacts > li[data-person="9"]');
  await otto.waitFor({ timeout: 5000 });
  assert.equal(await otto.locator('.encounter-count').textContent(), String(met.encounter_count));
  // The window ends on the day of Pam's last ping (this one, or the live test's of now), as
  // the server has it: not today's date, which a run across midnight UTC would change.
  const summary = await (await fetch(`${started.server.url}/api/persons/1/summary`)).json();
  assert.ok(Date.parse(summary.last_seen) >= Date.parse(when), JSON.stringify(summary));
  assert.equal(await page.getByLabel('To (included)').inputValue(), summary.last_seen.slice(0, 10));
  assert.equal(await page.locator('#meetings-figure .area').count(), venue.areas.length);
  assert.match(await page.locator('#meetings-frame').textContent(),
    /^Part of the plan of .+ around the meetings, north up\. 2 meeting places lie off the plan \(see the list\)\.$/);

  const today = otto.locator('tbody tr').nth(met.encounters.findIndex(isThisOne));
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
