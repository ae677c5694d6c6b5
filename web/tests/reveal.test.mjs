// Mutual reveal, hiding and evidence on the page (`serve --demo`, auth on): Pam asks the people
// she met to exchange e-mails, one of them sees the request and answers it, Pam sees why a
// contact is a match, hides one and shows it again.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openPage, screenshot, seriousViolations, startedServerAndBrowser } from './harness.mjs';

const started = startedServerAndBrowser({ auth: 'on' });

async function signedInPage(token) {
  const opened = await openPage(started.browser.context);
  await opened.page.setExtraHTTPHeaders({ authorization: `Bearer ${token}` });
  return opened;
}

test('an attendee asks to exchange e-mails, the other answers, and a contact is explained and hidden', async () => {
  const pam = await started.server.createToken(['--role', 'attendee', '--person', '1']);
  const other = await started.server.createToken(['--role', 'attendee', '--person', '5']);
  const { page, errors } = await signedInPage(pam);
  await page.goto(`${started.server.url}/`);
  await page.locator('#meetings-status', { hasText: 'Pam Trexler met 4 people' }).waitFor({ timeout: 5000 });
  await page.locator('#requests', { hasText: 'No one asks you at the moment.' }).waitFor({ timeout: 5000 });
  // With nothing hidden the list has no second part (not a stray "null").
  assert.doesNotMatch(await page.locator('#requests').innerText(), /null/);
  // She asks everyone she met; each button turns into a withdrawal.
  for (let i = 0; i < 4; i += 1) {
    await page.locator('#contacts button[data-action="reveal"]').first().click();
    await page.locator('#contacts button[data-action="withdraw"]').nth(i).waitFor({ timeout: 5000 });
  }
  assert.equal(await page.locator('#contacts button[data-action="reveal"]').count(), 0);

  // Why this match: her own pings, with distances.
  await page.locator('#contacts button[data-action="evidence"]').first().click();
  await page.locator('#contacts .evidence', { hasText: 'of your pings were within' }).first().waitFor({ timeout: 5000 });
  assert.deepEqual(await seriousViolations(page), []);
  await screenshot(page, 'reveal-asked');

  // Person 5 sees someone asking, and asks back from the list.
  const second = await signedInPage(other);
  await second.page.goto(`${started.server.url}/`);
  const request = second.page.locator('#requests li.request', { hasText: 'asks to exchange e-mails' });
  await request.waitFor({ timeout: 5000 });
  await request.locator('button[data-action="reveal"]').click();
  await second.page.locator('#requests li.request', { hasText: 'You asked too.' }).waitFor({ timeout: 5000 });
  await screenshot(second.page, 'reveal-answered');
  await second.page.close();

  // Pam hides one contact: it leaves her list and can be shown again.
  await page.locator('#contacts button[data-action="hide"]').first().click();
  await page.locator('#meetings-status', { hasText: 'Pam Trexler met 3 people' }).waitFor({ timeout: 5000 });
  await page.locator('#requests li.hidden-contact button[data-action="unhide"]').click();
  await page.locator('#meetings-status', { hasText: 'Pam Trexler met 4 people' }).waitFor({ timeout: 5000 });
  assert.deepEqual(errors, []);
  await page.close();
});
