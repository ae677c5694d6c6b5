// What the page says when the server goes away under it: a real server, killed mid-session.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openPage, screenshot, seriousViolations, startedServerAndBrowser } from './harness.mjs';

const started = startedServerAndBrowser();

test('when the server goes down, both views say so and offer to try again', async () => {
  // Every request after the kill fails to connect; Chromium logs each one as an error.
  const { page, errors } = await openPage(started.browser.context, { expected: [/\/api\//] });
  await page.goto(`${started.server.url}/#/live`);
  await page.locator('#live-status', { hasText: 'Live' }).waitFor({ timeout: 5000 });
  await page.locator('#live-figure .marker').first().waitFor({ timeout: 5000 });
  await page.locator('#people a[data-id="1"]').waitFor({ state: 'attached', timeout: 5000 });

  await started.server.stop();

  // The live stream drops: the status and an alert tell it, while the browser reconnects.
  const liveAlert = page.locator('#live-error');
  await liveAlert.waitFor({ timeout: 5000 });
  assert.equal(await liveAlert.getAttribute('role'), 'alert');
  assert.equal(await liveAlert.locator('.error-text').textContent(), 'Lost the connection to the server. Reconnecting automatically…');
  assert.equal(await page.locator('#live-status').textContent(), 'Reconnecting…');
  assert.equal(await page.getByRole('button', { name: 'Try again' }).isVisible(), true);
  await screenshot(page, 'live-server-down');

  // Picking an attendee now cannot reach the server either.
  await page.getByRole('link', { name: 'Attendees', exact: true }).click();
  await page.locator('#people a[data-id="1"]').click();
  const alert = page.locator('#detail-error');
  await alert.waitFor({ timeout: 5000 });
  assert.equal(await alert.locator('.error-text').textContent(),
    'Cannot reach the UdaConnect server. Check that it is running, then try again.');
  const retry = alert.getByRole('button', { name: 'Try again' });
  assert.equal(await retry.isVisible(), true);
  await retry.click(); // still down: the same message, not a blank page
  await alert.locator('.error-text', { hasText: 'Cannot reach' }).waitFor({ timeout: 5000 });
  assert.equal(await page.locator('#person').isVisible(), false);
  await screenshot(page, 'attendee-server-down');
  assert.deepEqual(await seriousViolations(page), []);

  assert.deepEqual(errors, []);
  await page.close();
});
