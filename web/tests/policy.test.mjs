// The pages under their content security policy: the server sends a policy with no inline
// script or style, and the page and the API docs still work under it, with no violation logged.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openPage, startedServerAndBrowser } from './harness.mjs';

const started = startedServerAndBrowser();

test('the page and the docs carry the policy and work under it', async () => {
  for (const path of ['/', '/docs']) {
    const response = await fetch(`${started.server.url}${path}`);
    const policy = response.headers.get('content-security-policy') ?? '';
    assert.match(policy, /script-src 'self'/, path);
    assert.match(policy, /frame-ancestors 'none'/, path);
    assert.doesNotMatch(policy, /unsafe-inline/, path);
    assert.equal(response.headers.get('x-content-type-options'), 'nosniff', path);
    assert.equal(response.headers.get('referrer-policy'), 'no-referrer', path);
  }

  // The docs page names no icon: Chromium asks for /favicon.ico, which is 404.
  const { page, errors } = await openPage(started.browser.context, { expected: [/\/favicon\.ico$/] });
  const violations = [];
  page.on('console', (msg) => {
    if (/Content Security Policy/i.test(msg.text())) violations.push(msg.text());
  });
  await page.goto(`${started.server.url}/#/live`);
  await page.locator('#live-status', { hasText: 'Live' }).waitFor({ timeout: 5000 });
  await page.locator('#people a[data-id="1"]').waitFor({ state: 'attached', timeout: 5000 });

  // The docs page builds its list of operations from /openapi.json with its own script.
  await page.goto(`${started.server.url}/docs`);
  await page.locator('#ops details').first().waitFor({ timeout: 5000 });
  const lead = await page.locator('#lead').textContent();
  assert.match(lead, /Who met whom/);
  // Its style sheet applied (60rem wide at most).
  assert.equal(await page.evaluate(() => getComputedStyle(document.body).maxWidth), '960px');

  assert.deepEqual(violations, []);
  assert.deepEqual(errors, []);
  await page.close();
});
