// The attendees view in a real Chromium against a real `udaconnect serve --demo`.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openPage, postPing, screenshot, seriousViolations, startedServerAndBrowser, waitFor } from './harness.mjs';

// Person 1's meetings in the seed data (data/seed/locations.csv) over tracks, whole span, 5 m,
// 0 s: at 2020-07-07T10:37:06Z at (37.55363, -122.290883) persons 5 (locations 57 and 66), 6
// (34), 8 (67) and 9 (65) stood where Pam stood (36-41); at 2020-08-15T10:37:06Z person 5 (31)
// stood 0.26 m from her (32). The seed's pings come in bursts at one instant, so each of these
// meetings lasts an instant. Her other pings (29, 33) met nobody.
const PAM_MET = [
  { id: '5', name: 'Taco Fargo', encounters: '2', first: '2020-07-07T10:37:06Z', last: '2020-08-15T10:37:06Z' },
  { id: '6', name: 'Frank Shader', encounters: '1', first: '2020-07-07T10:37:06Z', last: '2020-07-07T10:37:06Z' },
  { id: '8', name: 'Paul Badman', encounters: '1', first: '2020-07-07T10:37:06Z', last: '2020-07-07T10:37:06Z' },
  { id: '9', name: 'Otto Spring', encounters: '1', first: '2020-07-07T10:37:06Z', last: '2020-07-07T10:37:06Z' },
];
const SEED = { 1: 'Pam Trexler', 5: 'Taco Fargo', 6: 'Frank Shader', 8: 'Paul Badman', 9: 'Otto Spring' };

const started = startedServerAndBrowser();

async function allPersons() {
  const persons = [];
  let cursor = null;
  do {
    const response = await fetch(`${started.server.url}/api/persons?limit=100${cursor ? `&cursor=${cursor}` : ''}`);
    persons.push(...await response.json());
    cursor = response.headers.get('x-next-cursor');
  } while (cursor);
  return persons;
}

const visibleNames = (page) => page.locator('#people li:not([hidden]) .name').allTextContents();

async function openPam(page) {
  await page.goto(`${started.server.url}/`);
  await page.locator('#people a[data-id="1"]').click();
  await page.locator('#meetings-status', { hasText: 'met 4 people' }).waitFor({ timeout: 5000 });
}

test('the list loads every attendee, the seed ones by name', async () => {
  const { page, errors } = await openPage(started.browser.context);
  await page.goto(`${started.server.url}/`);
  const persons = await allPersons();
  await page.locator('#list-status', { hasText: `${persons.length} attendees.` }).waitFor({ timeout: 5000 });
  assert.equal(await page.locator('#people a').count(), persons.length);
  for (const [id, name] of Object.entries(SEED)) {
    assert.equal(await page.locator(`#people a[data-id="${id}"] .name`).textContent(), name);
  }
  assert.equal(await page.locator('#detail-empty').isVisible(), true);
  await screenshot(page, 'attendees-list');
  assert.deepEqual(errors, []);
  await page.close();
});

test('search filters the list, and the keyboard picks from it', async () => {
  const { page, errors } = await openPage(started.browser.context);
  await page.goto(`${started.server.url}/`);
  await page.locator('#list-status', { hasText: 'attendees.' }).waitFor();
  const total = await page.locator('#people a').count();

  await page.getByLabel('Search by name or company').fill('trexler');
  const names = await visibleNames(page);
  assert.ok(names.includes('Pam Trexler'), names.join());
  const shown = await page.locator('#people li:not([hidden])').evaluateAll((items) => items.map((li) => li.textContent));
  assert.ok(shown.length < total && shown.every((text) => /trexler/i.test(text)), shown.join());
  assert.equal(await page.locator('#people a[data-id="5"]').isVisible(), false);
  assert.match(await page.locator('#list-status').textContent(), new RegExp(`^${names.length} of ${total} attendees match “trexler”\\.$`));

  // Words match anywhere, in any order, in the name or the company.
  await page.getByLabel('Search by name or company').fill('upholstery taco');
  assert.deepEqual(await visibleNames(page), ['Taco Fargo']);

  await page.getByLabel('Search by name or company').fill('zzz-nobody');
  assert.deepEqual(await visibleNames(page), []);
  assert.equal(await page.locator('#list-status').textContent(), 'No attendee matches “zzz-nobody”.');

  await page.getByLabel('Search by name or company').fill('');
  assert.equal((await visibleNames(page)).length, total);

  // Down arrow from the search box into the list, down again, Enter opens that attendee.
  await page.getByLabel('Search by name or company').fill('fargo');
  await page.keyboard.press('ArrowDown');
  assert.equal(await page.evaluate(() => document.activeElement.dataset.id), '5');
  await page.getByLabel('Search by name or company').fill('');
  await page.locator('#people a[data-id="5"]').focus();
  await page.keyboard.press('ArrowDown');
  assert.equal(await page.evaluate(() => document.activeElement.dataset.id), '6');
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => location.hash === '#/attendees/6');
  await page.locator('#person-name', { hasText: 'Frank Shader' }).waitFor();
  assert.equal(await page.evaluate(() => document.activeElement.id), 'person-name');
  assert.equal(await page.locator('#people a[data-id="6"]').getAttribute('aria-current'), 'true');
  assert.deepEqual(errors, []);
  await page.close();
});

test("choosing Pam shows her meetings from the seed data, and a meeting on the map", async () => {
  const { page, errors } = await openPage(started.browser.context);
  await openPam(page);

  // The default window is the whole span of her pings; min. duration 0, so meetings of an instant show.
  assert.equal(await page.getByLabel('From').inputValue(), '2020-07-07');
  assert.equal(await page.getByLabel('To (included)').inputValue(), '2020-08-19');
  assert.equal(await page.getByLabel('Within (metres)').inputValue(), '5');
  assert.equal(await page.getByLabel('Join pings up to (seconds apart)').inputValue(), '300');
  assert.equal(await page.getByLabel('Min. time together (seconds)').inputValue(), '0');
  assert.equal(await page.locator('#meetings-status').textContent(),
    'Pam Trexler met 4 people between 7 Jul 2020 and 19 Aug 2020: 5 encounters in all.');

  const contacts = await page.locator('#contacts > li').evaluateAll((items) => items.map((li) => ({
    id: li.dataset.person,
    name: li.querySelector('h4').textContent,
    encounters: li.querySelector('.encounter-count').textContent,
    first: li.querySelectorAll('.facts time')[0].dateTime,
    last: li.querySelectorAll('.facts time')[1].dateTime,
  })));
  assert.deepEqual(contacts, PAM_MET);

  // Two places: the 7 July spot holds four encounters, the 15 August one a single one.
  const map = page.locator('#meetings-figure svg[role="img"]');
  assert.match(await map.getAttribute('aria-label'), /5 encounters at 2 places/);
  assert.deepEqual(await page.locator('.spot text').allTextContents(), ['4']);
  assert.equal(await page.locator('.spot').count(), 2);
  await screenshot(page, 'attendee-meetings-plain');

  // A click on Taco's second meeting highlights its spot and tells its time.
  const second = page.locator('#contacts > li[data-person="5"] button.encounter').nth(1);
  assert.equal(await second.textContent(), '15 Aug 2020, 10:37:06');
  await second.click();
  assert.equal(await second.getAttribute('aria-pressed'), 'true');
  const highlight = page.locator('#meetings-figure .highlight');
  assert.equal(await highlight.getAttribute('data-key'), '0-1');
  assert.match(await highlight.textContent(), /Taco Fargo · 15 Aug 2020, 10:37:06 UTC/);
  // The place is the midpoint of the two pings that met (locations 31 and 32).
  const spot = page.locator('.spot[data-spot^="37.553441,-122.29052"]');
  assert.equal(await highlight.getAttribute('transform'), await spot.getAttribute('transform'));
  assert.equal(await page.locator('#meetings-selected').textContent(),
    'Highlighted: Taco Fargo, 15 Aug 2020, 10:37:06 UTC (an instant), at 37.55344, -122.29052.');
  await screenshot(page, 'attendee-meetings');

  // A second click clears it.
  await second.click();
  assert.equal(await highlight.count(), 0);
  assert.equal(await second.getAttribute('aria-pressed'), 'false');

  assert.deepEqual(await seriousViolations(page), []);
  assert.deepEqual(errors, []);
  await page.close();
});

test('a window with no meetings says so, and the form keeps it in the URL', async () => {
  const { page, errors } = await openPage(started.browser.context);
  await openPam(page);
  await page.getByLabel('From').fill('2020-08-16');
  await page.getByLabel('To (included)').fill('2020-08-19');
  await page.getByRole('button', { name: 'Show meetings' }).click();
  await page.locator('#meetings-status', { hasText: 'No meetings in range' }).waitFor({ timeout: 5000 });
  assert.equal(await page.locator('#meetings-status').textContent(),
    'No meetings in range: Pam Trexler met nobody between 16 Aug 2020 and 19 Aug 2020 within 5 m '
    + '(tracks joined across gaps up to 300 s, at least 0 s together). Try a wider window or a larger distance.');
  assert.equal(await page.locator('#results').isVisible(), false);
  assert.equal(new URL(page.url()).hash, '#/attendees/1?start=2020-08-16&end=2020-08-19&distance=5&interp=300&min=0');
  await screenshot(page, 'attendee-no-meetings');

  // The end date is included whole: ending on 15 August finds that day's meeting with Taco.
  await page.getByLabel('From').fill('2020-08-15');
  await page.getByLabel('To (included)').fill('2020-08-15');
  await page.getByRole('button', { name: 'Show meetings' }).click();
  await page.locator('#meetings-status', { hasText: 'Pam Trexler met 1 person on 15 Aug 2020' }).waitFor({ timeout: 5000 });
  assert.deepEqual(await page.locator('#contacts h4').allTextContents(), ['Taco Fargo']);

  // The browser's back button returns to the previous window.
  await page.goBack();
  await page.locator('#meetings-status', { hasText: 'No meetings in range' }).waitFor({ timeout: 5000 });

  // The form refuses an inverted window before asking the server.
  await page.getByLabel('From').fill('2020-08-19');
  await page.getByLabel('To (included)').fill('2020-08-01');
  await page.getByRole('button', { name: 'Show meetings' }).click();
  assert.equal(await page.locator('#form-error').textContent(), '“To” must not be before “From”.');
  assert.equal(await page.getByLabel('To (included)').getAttribute('aria-invalid'), 'true');

  // "Whole span, defaults" returns to the default window.
  await page.getByRole('button', { name: 'Whole span, defaults' }).click();
  await page.locator('#meetings-status', { hasText: 'met 4 people' }).waitFor({ timeout: 5000 });
  assert.equal(await page.locator('#form-error').isVisible(), false);
  assert.deepEqual(errors, []);
  await page.close();
});

test('a meeting over tracks shows its period, how long it lasted, and where', async () => {
  // Two new attendees stand 1 m apart from 10:00 to 10:20, phones pinging every 60 s and every
  // 300 s: their tracks meet for the whole 20 minutes, whichever phone pinged when.
  const person = async (first) => (await (await fetch(`${started.server.url}/api/persons`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ first_name: first, last_name: 'Booth', company_name: 'Tracks Ltd' }),
  })).json()).id;
  const [a, b] = [await person('Ann'), await person('Ben')];
  const at = (minute) => new Date(Date.UTC(2021, 2, 1, 10, minute)).toISOString();
  const ids = [];
  for (let m = 0; m <= 20; m += 1) ids.push(await postPing(started.server.url, { person_id: a, latitude: 10.5, longitude: 20.5, creation_time: at(m) }));
  for (let m = 0; m <= 20; m += 5) ids.push(await postPing(started.server.url, { person_id: b, latitude: 10.500009, longitude: 20.5, creation_time: at(m) }));
  for (const id of ids) {
    await waitFor(async () => (await fetch(`${started.server.url}/api/locations/${id}`)).status === 200, 10000, `location ${id}`);
  }

  const { page, errors } = await openPage(started.browser.context);
  await page.goto(`${started.server.url}/#/attendees/${a}`);
  await page.locator('#meetings-status', { hasText: 'met 1 person' }).waitFor({ timeout: 5000 });
  assert.equal(await page.locator('#meetings-status').textContent(),
    'Ann Booth met 1 person on 1 Mar 2021: 1 encounter in all.');
  const meeting = page.locator(`#contacts > li[data-person="${b}"] button.encounter`);
  assert.equal(await meeting.textContent(), '1 Mar 2021, 10:00:00 – 10:20:00');
  assert.deepEqual(await meeting.locator('time').evaluateAll((ts) => ts.map((t) => t.dateTime)),
    ['2021-03-01T10:00:00Z', '2021-03-01T10:20:00Z']);
  const row = page.locator(`#contacts > li[data-person="${b}"] table.encounters tbody tr`);
  assert.equal(await row.locator('td').nth(1).textContent(), '20 min');
  assert.equal(await page.locator('.spot').count(), 1);
  await meeting.click();
  assert.match(await page.locator('#meetings-selected').textContent(),
    /^Highlighted: Ben Booth, 1 Mar 2021, 10:00:00 UTC to 1 Mar 2021, 10:20:00 UTC \(20 min\), at 10\.5000\d, 20\.50000\.$/);
  await screenshot(page, 'attendee-meeting-over-tracks');
  assert.deepEqual(await seriousViolations(page), []);
  assert.deepEqual(errors, []);
  await page.close();
});

test("an unknown attendee and a refused request show the server's explanation", async () => {
  const { page, errors } = await openPage(started.browser.context, { expected: [/\/api\/persons\/999999\/summary$/, /\/api\/persons\/1\/contacts\?/] });
  await page.goto(`${started.server.url}/#/attendees/999999`);
  const alert = page.locator('#detail-error');
  await alert.waitFor({ timeout: 5000 });
  assert.equal(await alert.getAttribute('role'), 'alert');
  assert.equal(await alert.locator('.error-title').textContent(), 'Could not load this attendee.');
  assert.equal(await alert.locator('.error-text').textContent(), 'person 999999 not found');
  assert.equal(await page.locator('#person').isVisible(), false);
  await screenshot(page, 'attendee-unknown');
  assert.deepEqual(await seriousViolations(page), []);

  // A distance the server refuses (typed into the URL, past the form's checks): its detail shows,
  // above the form so the value can be changed.
  await page.goto(`${started.server.url}/#/attendees/1?distance=5000`);
  await alert.locator('.error-text', { hasText: 'distance' }).waitFor({ timeout: 5000 });
  assert.equal(await alert.locator('.error-title').textContent(), 'Could not load the meetings.');
  assert.match(await alert.locator('.error-text').textContent(), /distance: 5000 is outside \(0, 1000\] metres/);
  assert.equal(await page.locator('#window-form').isVisible(), true);
  assert.equal(await page.getByLabel('Within (metres)').inputValue(), '5000');
  assert.deepEqual(errors, []);
  await page.close();
});

test('on a phone-sized screen the attendee view fits the width', async () => {
  const { page, errors } = await openPage(started.browser.context, { viewport: { width: 390, height: 844 } });
  await openPam(page);
  await page.locator('#contacts > li[data-person="5"] button.encounter').first().click();
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= 390), 'no sideways scrolling');
  const map = await page.locator('#meetings-figure svg').boundingBox();
  assert.ok(map.width > 300 && map.x >= 0 && map.x + map.width <= 390, JSON.stringify(map));
  // Controls stay large enough to touch.
  const button = await page.getByRole('button', { name: 'Show meetings' }).boundingBox();
  assert.ok(button.height >= 36, JSON.stringify(button));
  await screenshot(page, 'phone-attendee');
  assert.deepEqual(await seriousViolations(page), []);
  assert.deepEqual(errors, []);
  await page.close();
});
