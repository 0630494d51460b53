// The WebSocket section of the example's index page (GET /) in headless
// Debian Chromium: waits for the connection, clicks Echo, Start ticker (until
// three ticks), Stop ticker, and Ask (until `done`). Prints
// {"state", "echo", "ticks", "ticksAfterStop", "tokens"}.
// Usage: node index-ws.mjs <base-url>
import { chromium } from 'playwright-core';
import { ARGS, EXECUTABLE } from './chromium.mjs';

const [base] = process.argv.slice(2);
if (!base) {
  console.error('usage: node index-ws.mjs <base-url>');
  process.exit(2);
}
const WAIT = { timeout: 15_000 };
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

let browser;
try {
  browser = await chromium.launch({ executablePath: EXECUTABLE, headless: true, args: ARGS, timeout: 30_000 });
  const page = await browser.newPage();
  page.on('console', (msg) => console.error(`page console: ${msg.text()}`));
  page.on('pageerror', (err) => console.error(`page error: ${err}`));
  await page.goto(new URL('/', base).href, WAIT);
  await page.waitForFunction(() => document.getElementById('ws-state').textContent === 'open', null, WAIT);

  await page.click('#ws-echo', WAIT);
  await page.waitForFunction(() => document.getElementById('ws-echo-out').textContent !== '', null, WAIT);
  const echo = await page.textContent('#ws-echo-out');

  await page.click('#ws-start', WAIT);
  await page.waitForFunction(() => document.getElementById('ws-ticks').textContent.split('\n').length > 3, null, WAIT);
  await page.click('#ws-stop', WAIT);
  await sleep(300);
  const stopped = await page.textContent('#ws-ticks');
  await sleep(500);
  const later = await page.textContent('#ws-ticks');

  await page.click('#ws-ask', WAIT);
  await page.waitForFunction(() => document.getElementById('ws-tokens').dataset.done === 'yes', null, WAIT);
  const tokens = await page.textContent('#ws-tokens');

  const ticks = stopped.split('\n').filter((l) => l !== '').reverse();
  console.log(
    JSON.stringify({
      state: await page.textContent('#ws-state'),
      echo,
      ticksStartAtOne: ticks[0].startsWith('#1 '),
      ticksInOrder: ticks.every((l, i) => l.startsWith(`#${i + 1} `)),
      ticksAfterStop: later === stopped ? 0 : later.split('\n').length - stopped.split('\n').length,
      tokens,
    }),
  );
} catch (err) {
  console.error(`index-ws.mjs: ${err?.stack ?? err}`);
  process.exitCode = 1;
} finally {
  await browser?.close().catch(() => {});
}
