// Opens <url> in headless Debian Chromium (through playwright-core, which
// downloads no browser), waits until the page sets <body data-done>, and
// prints {"done": <data-done>, "events": [...]} where events are the JSON
// texts of the page's <li> items — or {"done": …, "result": …} when the
// page set `window.rillResult`. Usage: node chromium-page.mjs <url> [wait-ms]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { ARGS, EXECUTABLE } from './chromium.mjs';

const [url, waitArg] = process.argv.slice(2);
const WAIT_MS = Number(waitArg ?? 15_000);
if (!url) {
  console.error('usage: node chromium-page.mjs <url>');
  process.exit(2);
}

const profile = mkdtempSync(join(tmpdir(), 'rill-chromium-'));
let context;
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: EXECUTABLE,
    headless: true,
    args: ARGS,
    timeout: 30_000,
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.on('console', (msg) => console.error(`page console: ${msg.text()}`));
  await page.goto(url, { timeout: 15_000 });
  await page.waitForFunction(() => document.body.dataset.done, null, { timeout: WAIT_MS });
  const result = await page.evaluate(() =>
    window.rillResult !== undefined
      ? { done: document.body.dataset.done, result: window.rillResult }
      : {
          done: document.body.dataset.done,
          events: [...document.querySelectorAll('#events li')].map((li) => JSON.parse(li.textContent)),
        },
  );
  console.log(JSON.stringify(result));
} catch (err) {
  console.error(`chromium-page.mjs: ${err?.stack ?? err}`);
  process.exitCode = 1;
} finally {
  await context?.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
}
