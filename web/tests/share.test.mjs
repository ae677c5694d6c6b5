// "Share my location" (`serve --demo`, auth on): the demo attendee, signed in, shares the
// position Chromium is told to have (CDP Emulation.setGeolocationOverride); offline (CDP
// Network.emulateNetworkConditions) the pings made as she moves wait in the page's queue, and
// once online every one of them is stored exactly once, read back through the API. The page's
// manifest and icons are served for a phone's home screen.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openPage, screenshot, seriousViolations, startedServerAndBrowser, waitFor } from './harness.mjs';

const started = startedServerAndBrowser({ auth: 'on' });

// Far from the demo venue, so no simulated ping is mistaken for one of these.
const PLACES = [
  { latitude: 64.14660, longitude: -21.94260 },
  { latitude: 64.14750, longitude: -21.94100 },
  { latitude: 64.14840, longitude: -21.93940 },
  { latitude: 64.14930, longitude: -21.93780 },
];

/**
 * The demo attendee's stored pings at one of PLACES, read with the page's session: those of the
 * last day up to an hour ahead, not of a calendar day, so a run across midnight UTC finds them.
 */
async function storedAtPlaces(page) {
  const now = Date.now();
  const start = new Date(now - 24 * 3600 * 1000).toISOString();
  const end = new Date(now + 3600 * 1000).toISOString();
  const r = await page.request.get(`${started.server.url}/api/me/locations?start=${start}&end=${end}`);
  assert.equal(r.status(), 200);
  const near = (l, p) => Math.abs(l.latitude - p.latitude) < 1e-6 && Math.abs(l.longitude - p.longitude) < 1e-6;
  return (await r.json()).filter((l) => PLACES.some((p) => near(l, p)))
    .map((l) => ({ place: PLACES.findIndex((p) => near(l, p)), id: l.id, time: l.creation_time }));
}

const text = (page, id) => page.locator(`#${id}`).textContent();

async function signInAsDemoAttendee(page) {
  await page.goto(`${started.server.url}/`);
  await page.getByRole('link', { name: 'Sign in as the demo attendee' }).click();
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#who-text', { hasText: / · attendee$/ }).waitFor({ timeout: 10000 });
}

test('the manifest and its icons are served for a home screen', async () => {
  const base = started.server.url;
  const page = await (await fetch(`${base}/`)).text();
  const href = page.match(/<link rel="manifest" href="([^"]+)">/)?.[1];
  assert.equal(href, '/assets/manifest.webmanifest');
  const r = await fetch(`${base}${href}`);
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-type'), 'application/manifest+json');
  const manifest = await r.json();
  assert.equal(manifest.display, 'standalone');
  assert.equal(manifest.start_url, '/#/attendees');
  assert.match(manifest.theme_color, /^#[0-9a-f]{6}$/);
  const sizes = [];
  for (const icon of manifest.icons) {
    const answer = await fetch(new URL(icon.src, `${base}${href}`));
    assert.equal(answer.status, 200, icon.src);
    assert.equal(answer.headers.get('content-type'), icon.type, icon.src);
    const bytes = Buffer.from(await answer.arrayBuffer());
    if (icon.type === 'image/png') {
      // The PNG header's own width and height, as the manifest says.
      assert.equal(bytes.subarray(1, 4).toString(), 'PNG');
      assert.equal(`${bytes.readUInt32BE(16)}x${bytes.readUInt32BE(20)}`, icon.sizes);
      sizes.push(icon.sizes);
    }
  }
  assert.deepEqual(sizes.sort(), ['192x192', '512x512']);
});

test('a position the browser may not give is said plainly, and sharing stays off', async () => {
  const { page, errors } = await openPage(started.browser.context, { expected: [/\/api\/venue$/, /\/favicon\.ico$/] });
  await started.browser.context.clearPermissions();
  await signInAsDemoAttendee(page);
  const cdp = await page.context().newCDPSession(page);
  // Refused outright; without it, headless Chromium (no prompt to show) refuses as well.
  await cdp.send('Browser.setPermission', {
    permission: { name: 'geolocation' }, setting: 'denied', origin: started.server.url,
  }).catch(() => {});
  const toggle = page.getByRole('switch', { name: 'Share my location' });
  await toggle.click(); // not check(): the refusal may turn it off before check() looks
  await page.locator('#share-error', { hasText: 'Location is blocked for this page' }).waitFor({ timeout: 5000 });
  assert.equal(await toggle.isChecked(), false);
  assert.equal(await text(page, 'share-since'), 'not sharing');
  assert.equal(await page.locator('#share-error').getAttribute('role'), 'alert');
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.locator('#signin-view').waitFor({ timeout: 5000 });
  assert.deepEqual(errors, []);
  await page.close();
});

test('pings made offline are sent once back online, each stored exactly once', async () => {
  const { page, errors } = await openPage(started.browser.context, {
    // Offline, the queue's sends fail (Chromium says so for each).
    expected: [/\/api\/venue$/, /\/favicon\.ico$/, /\/api\/me\/locations$/],
  });
  const { context } = started.browser;
  await context.clearPermissions();
  await context.grantPermissions(['geolocation'], { origin: started.server.url });
  const cdp = await page.context().newCDPSession(page);
  const moveTo = (p) => cdp.send('Emulation.setGeolocationOverride', { ...p, accuracy: 5 });
  const offline = (on) => cdp.send('Network.emulateNetworkConditions', {
    offline: on, latency: 0, downloadThroughput: -1, uploadThroughput: -1,
  });
  await cdp.send('Network.enable');
  await moveTo(PLACES[0]);
  await signInAsDemoAttendee(page);
  assert.equal(await page.locator('#share-panel').isVisible(), true);
  assert.equal(await text(page, 'share-since'), 'not sharing');
  assert.equal(await text(page, 'share-sent'), 'nothing yet');

  // On: the first position is sent at once.
  const toggle = page.getByRole('switch', { name: 'Share my location' });
  await toggle.check();
  await waitFor(async () => (await storedAtPlaces(page)).length === 1, 10000, 'the first ping stored');
  await waitFor(async () => (await text(page, 'share-sent')) !== 'nothing yet', 5000, '"last sent"');
  assert.match(await text(page, 'share-since'), /\d{2}:\d{2}:\d{2}/);
  assert.equal(await text(page, 'share-queued'), '0');
  const firstSent = await text(page, 'share-sent');

  // Offline, she walks on: each place is a ping in the queue (a second apart: one per fix second).
  await offline(true);
  for (const [i, place] of PLACES.slice(1).entries()) {
    await page.waitForTimeout(1100);
    await moveTo(place);
    await page.locator('#share-queued', { hasText: String(i + 1) }).waitFor({ timeout: 5000 });
  }
  // A send that fails leaves every ping queued, and the page says why.
  await page.locator('#share-status', { hasText: 'Offline: pings wait here' }).waitFor({ timeout: 10000 });
  assert.equal(await text(page, 'share-queued'), '3');
  assert.equal(await text(page, 'share-sent'), firstSent);
  assert.equal((await storedAtPlaces(page)).length, 1, 'nothing arrives while offline');
  assert.deepEqual(await seriousViolations(page), []);
  await screenshot(page, 'share-offline');

  // Back online, the queue empties and every ping arrives, once.
  await offline(false);
  await page.locator('#share-queued', { hasText: /^0$/ }).waitFor({ timeout: 15000 });
  await waitFor(async () => (await storedAtPlaces(page)).length >= PLACES.length, 10000, 'every ping stored');
  const stored = await storedAtPlaces(page);
  assert.deepEqual(stored.map((s) => s.place).sort(), [0, 1, 2, 3], JSON.stringify(stored));
  assert.equal(new Set(stored.map((s) => s.id)).size, PLACES.length);
  assert.notEqual(await text(page, 'share-sent'), firstSent);
  assert.equal(await text(page, 'share-status'), '');

  // A ping sent again (its answer lost, say) is the same ping: put back in the queue, sent, and
  // still stored once.
  await page.evaluate(async (pings) => {
    const db = await new Promise((resolve, reject) => {
      const open = indexedDB.open('udaconnect-share', 1);
      open.onsuccess = () => resolve(open.result);
      open.onerror = () => reject(open.error);
    });
    const me = await (await fetch('/api/me')).json();
    const tx = db.transaction('pings', 'readwrite');
    for (const p of pings) tx.objectStore('pings').add({ person: me.person.id, ...p });
    await new Promise((resolve) => { tx.oncomplete = resolve; });
  }, stored.map((s) => ({ ...PLACES[s.place], creation_time: s.time })));
  // A second after the last fix: two fixes within one second are one ping (docs/trackers.md).
  await page.waitForTimeout(1100);
  await moveTo(PLACES[0]); // a move sends the queue at once
  await page.locator('#share-queued', { hasText: /^0$/ }).waitFor({ timeout: 15000 });
  // The copies went in the same request as the move, before it.
  const moved = await waitFor(async () => {
    const now = await storedAtPlaces(page);
    return now.filter((s) => s.place === 0).length >= 2 && now;
  }, 10000, 'the move stored');
  assert.equal(moved.filter((s) => s.place === 0).length, 2, JSON.stringify(moved));
  assert.equal(moved.length, PLACES.length + 1, JSON.stringify(moved));
  for (const s of stored) assert.equal(moved.filter((a) => a.id === s.id).length, 1, `ping ${s.id} once`);

  // No fix to be had (CDP's override without a position): said, and sharing stays on.
  await cdp.send('Emulation.setGeolocationOverride', {});
  await page.locator('#share-error', { hasText: 'Your position is unavailable right now' }).waitFor({ timeout: 10000 });
  assert.equal(await toggle.isChecked(), true);

  // Off: nothing more is sent; signing out forgets the switch.
  await toggle.uncheck();
  assert.equal(await text(page, 'share-since'), 'not sharing');
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.locator('#signin-view').waitFor({ timeout: 5000 });
  assert.equal(await page.locator('#share-panel').isVisible(), false);
  assert.equal(await page.evaluate(() => localStorage.getItem('udaconnect-share-on')), null);
  assert.deepEqual(errors, []);
  await page.close();
});
