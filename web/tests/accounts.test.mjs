// The page with accounts (`serve --demo` with auth on, the default): signed out it shows only
// the sign-in view; an attendee sees their own meetings and nothing of the directory; an
// organizer keeps the directory and is told plainly what is private; the account view creates,
// lists and revokes tokens. A browser is signed in either by the link the server mails (the
// demo attendee's), or by a token an operator made with `udaconnect admin create-token`, sent as
// the page's Authorization header.

import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { openPage, screenshot, seriousViolations, startedServerAndBrowser, waitFor } from './harness.mjs';

const started = startedServerAndBrowser({ auth: 'on' });

/** A page whose every request carries `token`, recording the API paths it asks for. */
async function signedInPage(token, options) {
  const opened = await openPage(started.browser.context, options);
  if (token) await opened.page.setExtraHTTPHeaders({ authorization: `Bearer ${token}` });
  opened.asked = [];
  opened.page.on('request', (r) => {
    const url = new URL(r.url());
    if (url.pathname.startsWith('/api/')) opened.asked.push(`${r.method()} ${url.pathname}`);
  });
  return opened;
}

/** `PUT /api/me/visibility` as the holder of `token`. */
async function chooseVisibility(token, visible) {
  const r = await fetch(`${started.server.url}/api/me/visibility`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ visible }),
  });
  assert.equal(r.status, 200);
}

test('signed out, the page shows the sign-in view and nothing else', async () => {
  const { page, errors, asked } = await signedInPage(null, { expected: [/\/api\/venue$/] });
  await page.goto(`${started.server.url}/#/attendees/1`);
  await page.locator('#signin-view').waitFor({ timeout: 5000 });
  assert.equal(await page.title(), 'Sign in · UdaConnect');
  for (const id of ['#attendees-view', '#live-view', '#account-view', '#who']) assert.equal(await page.locator(id).isVisible(), false, id);
  assert.equal(await page.locator('nav a[data-view="live"]').isVisible(), false);
  // Nothing but who is asking (and, on a demo, its ways in) was requested.
  assert.deepEqual(asked.filter((a) => !/ \/api\/(me|venue|auth\/demo)$/.test(a)), []);

  // An address the form refuses is said next to the field, for a screen reader too.
  await page.getByRole('button', { name: 'Send me a link' }).click();
  const error = page.locator('#signin-error');
  await error.waitFor({ timeout: 5000 });
  assert.equal(await error.getAttribute('role'), 'alert');
  assert.equal(await page.locator('#signin-email').getAttribute('aria-invalid'), 'true');
  assert.equal(await page.locator('#signin-email').getAttribute('aria-describedby'), 'signin-error');
  assert.deepEqual(await seriousViolations(page), []);
  await screenshot(page, 'signin');
  assert.deepEqual(errors, []);
  await page.close();
});

test('the sign-in form asks for a link and answers the same for any address', async (t) => {
  const probe = await fetch(`${started.server.url}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
  if (probe.status === 404) {
    t.skip('this server has no POST /api/auth/login');
    return;
  }
  const { page, errors, asked } = await signedInPage(null, { expected: [/\/api\/venue$/] });
  await page.goto(`${started.server.url}/`);
  await page.getByLabel('E-mail address').fill('nobody@example.org');
  await page.getByRole('button', { name: 'Send me a link' }).click();
  await page.locator('#signin-status', { hasText: 'If the address has an account, a link to sign in is on its way' }).waitFor({ timeout: 5000 });
  assert.ok(asked.includes('POST /api/auth/login'), asked.join(', '));
  assert.equal(await page.locator('#signin-error').isVisible(), false);
  assert.deepEqual(errors, []);
  await page.close();
});

test('an attendee sees their own meetings, with no directory and no one else asked for', async () => {
  const token = await started.server.createToken(['--role', 'attendee', '--person', '1']);
  const { page, errors, asked } = await signedInPage(token);
  await page.goto(`${started.server.url}/`);
  await page.locator('#meetings-status', { hasText: 'Pam Trexler met 4 people' }).waitFor({ timeout: 5000 });
  assert.equal(await page.locator('#who-text').textContent(), 'Pam Trexler · attendee');
  assert.equal(await page.locator('#attendees-title').textContent(), 'My meetings');
  assert.equal(await page.locator('#people, #search').count(), 0, 'no person picker');
  assert.equal(await page.locator('nav a[data-view="live"]').isVisible(), false);
  // No one she met has let the people they met see them: each is someone, the meeting kept.
  const names = () => page.locator('#contacts .contact h4').allTextContents();
  assert.deepEqual(await names(), ['Someone', 'Someone', 'Someone', 'Someone']);
  assert.equal(await page.locator('#contacts .contact.anonymous .encounter-count').count(), 4);
  // Two of them allow it: she sees their names, the others stay someone.
  for (const person of ['8', '9']) await chooseVisibility(await started.server.createToken(['--role', 'attendee', '--person', person]), true);
  await page.reload();
  await page.locator('#contacts .contact h4', { hasText: 'Paul Badman' }).waitFor({ timeout: 5000 });
  assert.deepEqual(await names(), ['Someone', 'Someone', 'Paul Badman', 'Otto Spring']);
  assert.deepEqual(await seriousViolations(page), []);
  await screenshot(page, 'my-meetings');

  // Another attendee's address, or the live view, still shows only her own meetings.
  await page.goto(`${started.server.url}/#/attendees/5`);
  await page.locator('#meetings-status', { hasText: 'Pam Trexler met 4 people' }).waitFor({ timeout: 5000 });
  await page.goto(`${started.server.url}/#/live`);
  await page.locator('#meetings-status', { hasText: 'Pam Trexler met 4 people' }).waitFor({ timeout: 5000 });
  assert.equal(await page.locator('#live-view').isVisible(), false);
  const others = asked.filter((a) => !/^GET \/api\/(me|me\/summary|me\/contacts|me\/reveals|venue)$/.test(a));
  assert.deepEqual(others, [], 'only her own data was asked for');
  assert.deepEqual(errors, []);
  await page.close();
});

test('an organizer keeps the directory and is told plainly that meetings are private', async () => {
  const token = await started.server.createToken(['--role', 'organizer']);
  const { page, errors } = await signedInPage(token, { expected: [/\/api\/persons\/1\/contacts/] });
  await page.goto(`${started.server.url}/`);
  await page.locator('#people a[data-id="1"]').click();
  const box = page.locator('#detail-error');
  await box.locator('.error-title', { hasText: 'Their meetings are private.' }).waitFor({ timeout: 5000 });
  assert.match(await box.locator('.error-text').textContent(), /to that attendee and to administrators only/);
  assert.equal(await box.locator('.retry').isVisible(), false, 'a refusal offers no retry');
  // Her summary (the directory's view of her) is the organizer's to see.
  assert.match(await page.locator('#person-seen').textContent(), /pings, from/);
  assert.match(await page.locator('#who-text').textContent(), / · organizer$/);
  assert.deepEqual(await seriousViolations(page), []);

  await page.locator('nav a[data-view="live"]').click();
  await page.locator('#live-status', { hasText: 'Live' }).waitFor({ timeout: 5000 });
  assert.deepEqual(errors, []);
  await page.close();
});

test('the account view creates a token, shows its secret once, and revokes it', async () => {
  const token = await started.server.createToken(['--role', 'attendee', '--person', '6', '--name', 'laptop']);
  const { page, errors } = await signedInPage(token);
  await page.goto(`${started.server.url}/#/account`);
  await page.locator('#tokens-body tr', { hasText: 'laptop' }).waitFor({ timeout: 5000 });
  assert.deepEqual(await page.locator('#token-role option').allTextContents(), ['device', 'attendee']);

  await page.getByLabel('Name', { exact: true }).fill('badge');
  await page.getByRole('button', { name: 'Create token' }).click();
  const secret = page.locator('#token-secret-value');
  await secret.waitFor({ timeout: 5000 });
  const badge = await secret.textContent();
  assert.match(badge, /^uc_/);
  await page.locator('#tokens-body tr', { hasText: 'badge' }).waitFor({ timeout: 5000 });
  // The new device token posts pings for her person: it is real.
  const ping = (t) => fetch(`${started.server.url}/api/locations`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${t}` },
    body: JSON.stringify({ person_id: 6, latitude: 37.55, longitude: -122.29, creation_time: new Date().toISOString() }),
  });
  assert.equal((await ping(badge)).status, 202);
  assert.deepEqual(await seriousViolations(page), []);
  await screenshot(page, 'account-tokens');

  // Leaving the view forgets the secret.
  await page.goto(`${started.server.url}/#/attendees`);
  await page.goto(`${started.server.url}/#/account`);
  assert.equal(await page.locator('#token-secret').isVisible(), false);

  await page.getByRole('button', { name: 'Revoke badge' }).click();
  await page.locator('#tokens-status', { hasText: 'Revoked badge.' }).waitFor({ timeout: 5000 });
  assert.equal(await page.locator('#tokens-body tr', { hasText: 'badge' }).count(), 0);
  assert.equal((await ping(badge)).status, 401, 'the revoked token signs no one in');
  const listed = await (await fetch(`${started.server.url}/api/me/tokens`, { headers: { authorization: `Bearer ${token}` } })).json();
  assert.ok(listed.find((t) => t.name === 'badge').revoked, 'the server holds it revoked');
  // A reload lists what the server holds: the laptop token, not the revoked one.
  await page.reload();
  await page.locator('#tokens-body tr', { hasText: 'laptop' }).waitFor({ timeout: 5000 });
  assert.equal(await page.locator('#tokens-body tr', { hasText: 'badge' }).count(), 0);
  assert.deepEqual(errors, []);
  await page.close();
});

test('the account view adds a phone and shows its OwnTracks QR code and configuration file once', async () => {
  const token = await started.server.createToken(['--role', 'attendee', '--person', '8']);
  const { page, errors } = await signedInPage(token);
  await page.goto(`${started.server.url}/#/account`);
  await page.getByLabel('Phone name').fill('Ana Pixel');
  await page.getByRole('button', { name: 'Add phone' }).click();
  await page.locator('#phone-added').waitFor({ timeout: 5000 });

  // The QR code is the server's SVG, shown as an image that loaded.
  const qr = page.getByRole('img', { name: 'QR code that configures OwnTracks' });
  assert.match(await qr.getAttribute('src'), /^data:image\/svg\+xml;base64,/);
  const svg = Buffer.from((await qr.getAttribute('src')).split(',')[1], 'base64').toString();
  assert.match(svg, /^<\?xml[^>]*\?><svg [^>]*viewBox="0 0 (\d+) \1"/);
  assert.ok(await qr.evaluate((img) => img.complete && img.naturalWidth > 20), 'the QR image is drawn');

  // The download is OwnTracks' configuration, and its password posts for this phone.
  const link = page.getByRole('link', { name: /^Download .*\.otrc$/ });
  const [download] = await Promise.all([page.waitForEvent('download'), link.click()]);
  assert.match(download.suggestedFilename(), /^ana-pixel-\d+\.otrc$/);
  const otrc = JSON.parse(readFileSync(await download.path(), 'utf8'));
  assert.equal(otrc._type, 'configuration');
  assert.equal(otrc.mode, 3);
  assert.equal(otrc.url, `${started.server.url}/pub`);
  assert.equal(otrc.username, 'p8');
  assert.equal(otrc.tid, 'AN');
  assert.equal(`${otrc.deviceId}.otrc`, download.suggestedFilename());
  assert.equal(await page.locator('#phone-owntracks dd').nth(3).textContent(), otrc.password);
  const post = (password) => fetch(otrc.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Basic ${btoa(`${otrc.username}:${password}`)}` },
    body: JSON.stringify({ _type: 'location', lat: 37.55, lon: -122.29, tst: Math.floor(Date.now() / 1000), tid: 'AN' }),
  });
  assert.equal((await post(otrc.password)).status, 200);
  assert.equal((await post('uc_not-a-token')).status, 401);
  assert.deepEqual(await seriousViolations(page), []);
  await screenshot(page, 'account-phone');

  // Leaving the view forgets it all.
  await page.goto(`${started.server.url}/#/attendees`);
  await page.goto(`${started.server.url}/#/account`);
  assert.equal(await page.locator('#phone-added').isVisible(), false);
  assert.equal(await page.locator('#phone-owntracks dd').count(), 0);
  assert.deepEqual(errors, []);
  await page.close();
});

test('the account view lets an attendee choose whether the people she met see her name', async () => {
  const pam = await started.server.createToken(['--role', 'attendee', '--person', '1']);
  const taco = await started.server.createToken(['--role', 'attendee', '--person', '5']);
  const { page, errors } = await signedInPage(pam);
  await page.goto(`${started.server.url}/#/account`);
  const toggle = page.getByLabel('People I met may see my name');
  await toggle.waitFor({ timeout: 5000 });
  await waitFor(async () => !(await toggle.isDisabled()), 5000, 'the choice loaded');
  assert.equal(await toggle.isChecked(), false, 'no by default');

  // Taco met her: she is someone in his list until she allows it.
  const tacosNames = async () => {
    const r = await fetch(`${started.server.url}/api/me/contacts?min_duration=0`, { headers: { authorization: `Bearer ${taco}` } });
    assert.equal(r.status, 200);
    return (await r.json()).map((c) => (c.person ? `${c.person.first_name} ${c.person.last_name}` : 'Someone'));
  };
  const before = await tacosNames();
  assert.ok(before.includes('Someone') && !before.includes('Pam Trexler'), before.join(', '));
  await toggle.check();
  await page.locator('#visibility-status', { hasText: 'People you met now see your name and company.' }).waitFor({ timeout: 5000 });
  assert.ok((await tacosNames()).includes('Pam Trexler'));
  assert.deepEqual(await seriousViolations(page), []);
  await screenshot(page, 'account-visibility');

  // The choice is the server's: a reload shows it; taking it back hides her again.
  await page.reload();
  await waitFor(async () => !(await toggle.isDisabled()) && (await toggle.isChecked()), 5000, 'the stored choice shown');
  await toggle.uncheck();
  await page.locator('#visibility-status', { hasText: 'People you met now see you as "Someone".' }).waitFor({ timeout: 5000 });
  assert.ok(!(await tacosNames()).includes('Pam Trexler'));
  assert.deepEqual(errors, []);
  await page.close();
});

test('a staff account without a person has no visibility to choose', async () => {
  const token = await started.server.createToken(['--role', 'organizer']);
  const { page, errors } = await signedInPage(token);
  await page.goto(`${started.server.url}/#/account`);
  await page.locator('#tokens-status').waitFor({ timeout: 5000 });
  await page.locator('#account-who', { hasText: 'organizer' }).waitFor({ timeout: 5000 });
  assert.equal(await page.locator('#visibility-panel').isVisible(), false);
  assert.deepEqual(errors, []);
  await page.close();
});

/** The sign-in link in the newest mail to `to` the server wrote into its data directory's mail/. */
async function linkMailedTo(to) {
  const dir = join(started.server.dataDir, 'mail');
  return waitFor(() => {
    const mails = (existsSync(dir) ? readdirSync(dir) : []).filter((f) => f.endsWith('.eml'))
      .map((f) => join(dir, f)).sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
    for (const file of mails) {
      // Quoted-printable or not: join soft line breaks and decode escapes before looking.
      const text = readFileSync(file, 'utf8').replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/g, (_, x) => String.fromCharCode(parseInt(x, 16)));
      if (!text.toLowerCase().includes(to)) continue;
      const link = text.match(/\/auth\/confirm\?token=[A-Za-z0-9_-]+/);
      if (link) return link[0];
    }
    return null;
  }, 10000, `a sign-in mail to ${to}`);
}

test('the demo attendee signs in by the mailed link, sees her meetings, and signs out', async (t) => {
  const probe = await fetch(`${started.server.url}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
  if (probe.status === 404) {
    t.skip('this server has no POST /api/auth/login');
    return;
  }
  // The link's page names no icon: Chromium asks for /favicon.ico, which is 404.
  const { page, errors } = await signedInPage(null, { expected: [/\/api\/venue$/, /\/favicon\.ico$/] });
  await page.goto(`${started.server.url}/`);
  await page.getByLabel('E-mail address').fill('attendee@demo.udaconnect.test');
  await page.getByRole('button', { name: 'Send me a link' }).click();
  await page.locator('#signin-status', { hasText: 'If the address has an account' }).waitFor({ timeout: 5000 });
  const link = await linkMailedTo('attendee@demo.udaconnect.test');

  // The link opens a page with a button; pressing it sets the session cookie and comes back.
  await page.goto(`${started.server.url}${link}`);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#meetings-status', { hasText: 'met 4 people' }).waitFor({ timeout: 10000 });
  assert.match(await page.locator('#who-text').textContent(), / · attendee$/);
  assert.equal(await page.locator('#people').count(), 0, 'no person picker');
  const cookies = await started.browser.context.cookies(started.server.url);
  assert.equal(cookies.find((c) => c.name === 'uc_session')?.httpOnly, true);

  // Writes signed in by the cookie come from this page (its Origin): creating and revoking work.
  await page.locator('nav a[data-view="account"]').click();
  await page.getByLabel('Name', { exact: true }).fill('phone');
  await page.getByRole('button', { name: 'Create token' }).click();
  await page.locator('#token-secret-value', { hasText: /^uc_/ }).waitFor({ timeout: 5000 });
  await page.getByRole('button', { name: 'Revoke phone' }).click();
  await page.locator('#tokens-status', { hasText: 'Revoked phone.' }).waitFor({ timeout: 5000 });
  await page.locator('nav a[data-view="attendees"]').click();
  await page.locator('#meetings-status', { hasText: 'met 4 people' }).waitFor({ timeout: 5000 });

  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.locator('#signin-view').waitFor({ timeout: 5000 });
  assert.equal(await page.locator('#who').isVisible(), false);
  assert.deepEqual(errors, []);
  await page.close();
});

test('on the demo\'s own machine the sign-in view offers its accounts, and one click signs in', async () => {
  // The link's page names no icon: Chromium asks for /favicon.ico, which is 404.
  const { page, errors } = await signedInPage(null, { expected: [/\/api\/venue$/, /\/favicon\.ico$/] });
  await page.goto(`${started.server.url}/`);
  const organizer = page.getByRole('link', { name: 'Sign in as the demo organizer' });
  await organizer.waitFor({ timeout: 5000 });
  assert.equal(await page.getByRole('link', { name: 'Sign in as the demo attendee' }).count(), 1);
  assert.deepEqual(await seriousViolations(page), []);
  await screenshot(page, 'signin-demo');
  await organizer.click();
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#who-text', { hasText: / · organizer$/ }).waitFor({ timeout: 10000 });
  assert.equal(await page.locator('nav a[data-view="live"]').isVisible(), true);
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.locator('#signin-view').waitFor({ timeout: 5000 });
  assert.deepEqual(errors, []);
  await page.close();
});
