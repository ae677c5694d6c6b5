// The account view's data panel (`serve --demo`, auth on): an attendee downloads everything held
// about them as one JSON file (their pings only, an admin's read of their contacts in it), then
// deletes their account after a confirmation that refuses anything but the word asked for.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { openPage, screenshot, seriousViolations, startedServerAndBrowser } from './harness.mjs';

const started = startedServerAndBrowser({ auth: 'on' });

test('an attendee downloads their data, then deletes their account after confirming', async () => {
  const admin = await started.server.createToken(['--role', 'admin']);
  const asAdmin = { headers: { authorization: `Bearer ${admin}` } };
  // An admin reads Pam's contacts: her export names that read.
  assert.equal((await fetch(`${started.server.url}/api/persons/1/contacts`, asAdmin)).status, 200);

  // Signed in by the demo's link, as a person in a browser is: a session cookie.
  const { page, errors } = await openPage(started.browser.context, { expected: [/\/api\/venue$/, /\/favicon\.ico$/] });
  const demo = await (await fetch(`${started.server.url}/api/auth/demo`)).json();
  const link = demo.links.find((l) => l.role === 'attendee').url;
  await page.goto(link);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#meetings-status', { hasText: 'met 4 people' }).waitFor({ timeout: 10000 });
  const me = await page.evaluate(async () => (await fetch('/api/me')).json());
  assert.equal(me.person.id, 1);
  await page.locator('nav a[data-view="account"]').click();
  await page.getByRole('link', { name: 'Download my data' }).waitFor({ timeout: 5000 });

  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('link', { name: 'Download my data' }).click(),
  ]);
  assert.match(download.suggestedFilename(), /^udaconnect-export-\d+\.json$/);
  const data = JSON.parse(readFileSync(await download.path(), 'utf8'));
  assert.equal(data.person.id, 1);
  assert.ok(data.pings.length > 0, 'her pings');
  assert.ok(data.pings.every((p) => p.person_id === 1), 'hers only');
  assert.ok(data.reads_of_my_data.some((r) => r.action === 'GetContacts' && r.reader_role === 'admin'));

  // Deleting asks first; a wrong word deletes nothing.
  await page.getByRole('button', { name: 'Delete my account…' }).click();
  const confirm = page.getByLabel('Type delete to confirm');
  await confirm.fill('yes');
  await page.getByRole('button', { name: 'Delete my account for good' }).click();
  await page.locator('#delete-error', { hasText: 'nothing was deleted' }).waitFor({ timeout: 5000 });
  assert.equal((await page.evaluate(async () => (await fetch('/api/me')).status)), 200);
  assert.deepEqual(await seriousViolations(page), []);
  await screenshot(page, 'account-delete-confirm');
  // Cancelling closes the question.
  await page.getByRole('button', { name: 'Cancel' }).click();
  assert.equal(await page.locator('#delete-form').isVisible(), false);

  await page.getByRole('button', { name: 'Delete my account…' }).click();
  await confirm.fill('delete');
  await page.getByRole('button', { name: 'Delete my account for good' }).click();
  // The page starts again signed out: the session ended with the account.
  await page.locator('#signin-view').waitFor({ state: 'visible', timeout: 10000 });
  assert.equal((await page.evaluate(async () => (await fetch('/api/me')).status)), 401);
  assert.equal((await fetch(`${started.server.url}/api/persons/1`, asAdmin)).status, 404);
  assert.deepEqual(errors.filter((e) => !/status of 401/.test(e)), []);
  await page.close();
});
