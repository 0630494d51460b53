// The example's chat page on the cable (`GET /cable-chat`), in two
// headless Chromium contexts (two users in one room): each joins, sends a
// message through the form, and marks itself away; prints what each page's
// log shows. Usage: node cable-chat.mjs http://HOST:PORT ROOM
import { chromium } from 'playwright-core';
import { EXECUTABLE, ARGS } from './chromium.mjs';

const [base, room] = process.argv.slice(2);
const browser = await chromium.launch({ executablePath: EXECUTABLE, args: ARGS });
const timeout = setTimeout(() => { console.log(JSON.stringify({ error: 'timeout' })); process.exit(1); }, 30000);
try {
  const pages = [];
  for (const user of ['ana', 'ben']) {
    const page = await (await browser.newContext()).newPage();
    await page.goto(`${base}/cable-chat`);
    await page.fill('#room', room);
    await page.fill('#user', user);
    await page.click('#join');
    await page.waitForFunction(() => document.getElementById('state').textContent.startsWith('in '));
    pages.push(page);
  }
  // One at a time: each line is seen on its own page before the next is
  // sent, so both pages must show the same order.
  const seen = (page, n) =>
    page.waitForFunction((n) => document.querySelectorAll('#log p').length >= n, n, { timeout: 10000 });
  for (const [i, page] of pages.entries()) {
    await page.fill('#text', `hello from ${i}`);
    await page.press('#text', 'Enter');
    await seen(page, i + 1);
  }
  await pages[1].click('#away');
  const lines = (page) => page.$$eval('#log p', (ps) => ps.map((p) => p.textContent));
  for (const page of pages) {
    await page.waitForFunction(() => document.querySelectorAll('#log p').length >= 3, null, { timeout: 10000 });
  }
  const result = { ana: await lines(pages[0]), ben: await lines(pages[1]) };
  console.log(JSON.stringify(result));
} finally {
  clearTimeout(timeout);
  await browser.close();
}
