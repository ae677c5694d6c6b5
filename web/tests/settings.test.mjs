// The account view's settings (`serve --demo` with auth on): an attendee signed in by the
// mailed link sees their addresses and sessions, changes their address by the link mailed to
// the new one, and ends another browser's session; an admin sees every account and changes a
// role. Mails are read from the `.eml` files the server writes without SMTP.

import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { openPage, screenshot, seriousViolations, startedServerAndBrowser, waitFor } from './harness.mjs';

const started = startedServerAndBrowser({ auth: 'on' });
const ATTENDEE = 'attendee@demo.udaconnect.test';

/** Every link to `path` in the mails to `to` the server wrote. */
function linksMailedTo(to, path) {
  const dir = join(started.server.dataDir, 'mail');
  const links = [];
  for (const f of (existsSync(dir) ? readdirSync(dir) : []).filter((n) => n.endsWith('.eml'))) {
    // Quoted-printable or not: join soft line breaks and decode escapes before looking.
    const text = readFileSync(join(dir, f), 'utf8').replace(/=\r?\n/g, '')
      .replace(/=([0-9A-F]{2})/g, (_, x) => String.fromCharCode(parseInt(x, 16)));
    const recipient = text.match(/^To: (.*)$/mi)?.[1] ?? '';
    if (!recipient.toLowerCase().includes(to)) continue;
    const link = text.match(new RegExp(`${path}\\?token=[A-Za-z0-9_-]+`));
    if (link) links.push(link[0]);
  }
  return links;
}

/** A link to `path` mailed to `to` that was not among `before`. */
const newLink = (to, path, before) => waitFor(() => linksMailedTo(to, path).find((l) => !before.includes(l)),
  10000, `a mail to ${to} with a link to ${path}`);

/** Asks for a sign-in link for `email` and follows it outside the page: a second browser's session cookie. */
async function otherBrowserSession(email) {
  const before = linksMailedTo(email, '/auth/confirm');
  await fetch(`${started.server.url}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email }) });
  const link = await newLink(email, '/auth/confirm', before);
  const token = new URL(link, started.server.url).searchParams.get('token');
  const r = await fetch(`${started.server.url}/auth/confirm`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', 'user-agent': 'OtherBrowser/2.0' },
    body: `token=${token}`,
  });
  assert.equal(r.status, 303);
  return r.headers.get('set-cookie').split(';')[0];
}

test('an attendee changes their address by its link and ends another browser\'s session', async () => {
  const { page, errors } = await openPage(started.browser.context, { expected: [/\/api\/venue$/, /\/favicon\.ico$/] });
  const before = linksMailedTo(ATTENDEE, '/auth/confirm');
  await page.goto(`${started.server.url}/`);
  await page.getByLabel('E-mail address').fill(ATTENDEE);
  await page.getByRole('button', { name: 'Send me a link' }).click();
  const link = await newLink(ATTENDEE, '/auth/confirm', before);
  await page.goto(`${started.server.url}${link}`);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#meetings-status', { hasText: 'met 4 people' }).waitFor({ timeout: 10000 });
  const other = await otherBrowserSession(ATTENDEE);
  const otherMe = () => fetch(`${started.server.url}/api/me`, { headers: { cookie: other } });
  assert.equal((await otherMe()).status, 200);

  await page.locator('nav a[data-view="account"]').click();
  assert.equal(await page.locator('#email-primary').textContent(), ATTENDEE);
  assert.equal(await page.locator('#email-secondary').textContent(), 'none');
  await page.locator('#sessions-body tr', { hasText: 'OtherBrowser/2.0' }).waitFor({ timeout: 5000 });
  assert.equal(await page.locator('#sessions-body tr').count(), 2);
  assert.equal(await page.locator('#sessions-body tr', { hasText: '(this browser)' }).count(), 1);
  assert.equal(await page.locator('#accounts-panel').isVisible(), false, 'accounts are the admins\'');
  assert.deepEqual(await seriousViolations(page), []);
  await screenshot(page, 'account-settings');

  // Ending the other browser's session signs it out at once.
  await page.getByRole('button', { name: 'End session of OtherBrowser/2.0' }).click();
  await page.locator('#sessions-status', { hasText: 'Session ended' }).waitFor({ timeout: 5000 });
  assert.equal(await page.locator('#sessions-body tr').count(), 1);
  assert.equal((await otherMe()).status, 401);

  // An address the form refuses is said next to the field.
  await page.getByLabel('New address').fill('not an address');
  await page.getByRole('button', { name: 'Change address' }).click();
  await page.locator('#emails-error').waitFor({ timeout: 5000 });
  assert.equal(await page.locator('#email-new').getAttribute('aria-invalid'), 'true');

  // A new address: a link mailed to it; the address is hers once it is followed.
  const moved = 'pam.moved@example.org';
  await page.getByLabel('New address').fill(moved);
  await page.getByRole('button', { name: 'Change address' }).click();
  await page.locator('#emails-status', { hasText: `A link is on its way to ${moved}` }).waitFor({ timeout: 5000 });
  assert.equal(await page.locator('#email-primary').textContent(), ATTENDEE, 'not before the link');
  const verify = await newLink(moved, '/auth/verify-email', []);
  await page.goto(`${started.server.url}${verify}`);
  await page.getByRole('button', { name: 'Confirm address' }).click();
  await page.getByRole('heading', { name: 'Address confirmed' }).waitFor({ timeout: 5000 });
  await page.goto(`${started.server.url}/#/account`);
  await page.locator('#email-primary', { hasText: moved }).waitFor({ timeout: 5000 });
  assert.deepEqual(errors, []);
  await page.close();
});

test('an admin sees every account and changes a role', async () => {
  const token = await started.server.createToken(['--role', 'admin']);
  // The refused role change is a 422 Chromium reports as a failed load.
  const { page, errors } = await openPage(started.browser.context, { expected: [/\/api\/accounts\/\d+\/role$/] });
  await page.setExtraHTTPHeaders({ authorization: `Bearer ${token}` });
  await page.goto(`${started.server.url}/#/account`);
  const organizer = 'organizer@demo.udaconnect.test';
  await page.locator('#accounts-body tr', { hasText: organizer }).waitFor({ timeout: 5000 });
  // A token signs this page in: no browser session.
  await page.locator('#sessions-status', { hasText: 'No browser is signed in' }).waitFor({ timeout: 5000 });
  assert.deepEqual(await seriousViolations(page), []);
  await screenshot(page, 'account-admin');

  // An account without a person cannot be an attendee: the server's reason is shown.
  await page.getByLabel(`Role of ${organizer}`, { exact: true }).selectOption('attendee');
  await page.getByRole('button', { name: `Save role of ${organizer}` }).click();
  await page.locator('#accounts-status', { hasText: 'acts for a person' }).waitFor({ timeout: 5000 });
  await page.getByLabel(`Role of ${organizer}`, { exact: true }).selectOption('admin');
  await page.getByRole('button', { name: `Save role of ${organizer}` }).click();
  await page.locator('#accounts-status', { hasText: `${organizer} is admin now.` }).waitFor({ timeout: 5000 });
  const listed = await (await fetch(`${started.server.url}/api/accounts`, { headers: { authorization: `Bearer ${token}` } })).json();
  assert.equal(listed.find((a) => a.email === organizer).role, 'admin');
  // A reload shows what the server holds.
  await page.reload();
  await page.locator('#accounts-body tr', { hasText: organizer }).waitFor({ timeout: 5000 });
  assert.equal(await page.getByLabel(`Role of ${organizer}`, { exact: true }).inputValue(), 'admin');
  assert.deepEqual(errors, []);
  await page.close();
});
