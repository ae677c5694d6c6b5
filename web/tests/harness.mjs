// What every browser test needs: a real UdaConnect server on a free port with a fresh data
// directory, a real Chromium (Debian's, never a downloaded one), and helpers to watch the page.

import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const BINARY = process.env.UDACONNECT_BIN ?? join(ROOT, 'target/debug/udaconnect');
export const ARTIFACTS = join(ROOT, 'test-artifacts/web');
const require = createRequire(import.meta.url);

/** Starts `udaconnect serve --demo` on 127.0.0.1:0 and waits until /ready answers 200. */
export async function startServer() {
  const dataDir = mkdtempSync(join(tmpdir(), 'udaconnect-web-'));
  const listenFile = join(dataDir, 'listen.json');
  // The views as the original open contract serves them (`--auth off`, loopback only).
  const child = spawn(BINARY, ['--log-format', 'json', 'serve', '--demo', '--auth', 'off',
    '--listen', '127.0.0.1:0', '--listen-file', listenFile, '--data-dir', join(dataDir, 'data')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const log = [];
  createInterface({ input: child.stderr }).on('line', (line) => log.push(line));
  let exited = null;
  child.on('exit', (code) => { exited = code; });
  // The server writes its bound addresses to the listen file (whole, or not at all).
  const listening = await waitFor(() => {
    if (exited !== null) throw new Error(`server exited with ${exited}:\n${log.join('\n')}`);
    try {
      return JSON.parse(readFileSync(listenFile, 'utf8'));
    } catch {
      return null;
    }
  }, 30000, 'the listen file').catch((e) => {
    throw new Error(`${e.message}; log:\n${log.join('\n')}`);
  });
  const address = listening.http;
  const url = `http://${address}`;
  await waitFor(async () => (await fetch(`${url}/ready`).catch(() => null))?.status === 200, 30000, 'server ready');
  return {
    url,
    log,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGKILL');
        await exited;
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Polls `check` until it returns something truthy, or fails after `ms`. */
export async function waitFor(check, ms, what) {
  const end = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * A server and a browser for the tests of one file: started before the first test, closed after
 * the last. The returned object holds them (`server`, `browser`) once started.
 */
export function startedServerAndBrowser() {
  const started = {};
  // A file's own `before` hooks may await this, whatever order the runner gives the hooks.
  started.ready = (async () => {
    await new Promise((resolve) => before(resolve));
    started.server = await startServer();
    started.browser = await launchBrowser();
    return started;
  })();
  before(() => started.ready);
  after(async () => {
    await started.browser?.close();
    await started.server?.stop();
  });
  return started;
}

/**
 * Debian's Chromium, headless, with a fresh profile, in one browser context with a fixed locale
 * and time zone (so times read the same on every machine).
 */
export async function launchBrowser() {
  const profile = mkdtempSync(join(tmpdir(), 'udaconnect-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 900 },
    locale: 'en-GB',
    timezoneId: 'UTC',
    reducedMotion: 'reduce', // markers jump instead of gliding, so positions can be read at once
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/**
 * A new page that records console errors and uncaught exceptions. `expected` lists URL patterns
 * whose failed loads a test causes on purpose (Chromium reports each one as a console error).
 */
export async function openPage(context, { viewport = { width: 1280, height: 900 }, expected = [] } = {}) {
  const page = await context.newPage();
  await page.setViewportSize(viewport);
  const errors = [];
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    const url = msg.location()?.url ?? '';
    if (/^Failed to load resource/.test(msg.text()) && expected.some((re) => re.test(url))) return;
    errors.push(`${msg.text()} (${url})`);
  });
  page.on('pageerror', (error) => errors.push(`uncaught: ${error.stack ?? error}`));
  return { page, errors };
}

/** Runs axe-core in the page and returns its serious and critical violations, readably. */
export async function seriousViolations(page) {
  // Evaluated, not added as an inline script tag: the page's policy refuses inline script.
  await page.evaluate(readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8'));
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.impact} ${v.id}: ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}

export async function screenshot(page, name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  // From the top, so sticky panels sit where they belong in a full-page picture.
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

/** POSTs a ping through the public API and returns its id. */
export async function postPing(url, ping) {
  const response = await fetch(`${url}/api/locations`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(ping),
  });
  if (response.status !== 202) throw new Error(`POST /api/locations: ${response.status} ${await response.text()}`);
  return (await response.json()).id;
}
