// Two users on GET /chat: one headless Debian Chromium (through
// playwright-core, which downloads no browser) with two fresh browser
// contexts, A and B, each on <base>/chat?room=<room>. Once both pages are
// connected, A types a name and a message and clicks Send, both pages show
// it, then B does the same. Prints
// {"a": {"here", "messages": [...], "text"}, "b": {...}} per page: the
// #here text, the outerHTML of every p.message in #log, and what is left in
// the #text input, and which transport the page used ("websocket", or
// "sse" with transport=sse).
// Usage: node chat.mjs <base-url> <room> <nameA> <textA> <nameB> <textB> [transport]
import { chromium } from 'playwright-core';
import { ARGS, EXECUTABLE } from './chromium.mjs';

const [base, room, nameA, textA, nameB, textB, transport] = process.argv.slice(2);
if (!base || !room || !nameA || !textA || !nameB || !textB) {
  console.error('usage: node chat.mjs <base-url> <room> <nameA> <textA> <nameB> <textB>');
  process.exit(2);
}

const WAIT = { timeout: 15_000 };

async function open(browser, label) {
  // A new context is a fresh profile: no shared cookies, cache or storage.
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on('console', (msg) => console.error(`page ${label} console: ${msg.text()}`));
  page.on('pageerror', (err) => console.error(`page ${label} error: ${err}`));
  const url = new URL('/chat', base);
  url.searchParams.set('room', room);
  if (transport) url.searchParams.set('transport', transport);
  await page.goto(url.href, WAIT);
  await page.waitForFunction(() => document.body.dataset.connected === 'yes', null, WAIT);
  return page;
}

// Real input: click into each field, type key by key, click the button.
async function say(page, name, text) {
  await page.click('#name', WAIT);
  await page.keyboard.type(name);
  await page.click('#text', WAIT);
  await page.keyboard.type(text);
  await page.click('#form button', WAIT);
}

function messageCount(page, n) {
  return page.waitForFunction(
    (n) => document.querySelectorAll('#log p.message').length >= n,
    n,
    WAIT,
  );
}

function snapshot(page) {
  return page.evaluate(() => ({
    here: document.getElementById('here').textContent,
    messages: [...document.querySelectorAll('#log p.message')].map((p) => p.outerHTML),
    text: document.getElementById('text').value,
    transport: document.body.dataset.transport,
  }));
}

let browser;
try {
  browser = await chromium.launch({
    executablePath: EXECUTABLE,
    headless: true,
    args: ARGS,
    timeout: 30_000,
  });
  const a = await open(browser, 'A');
  const b = await open(browser, 'B');
  // B's join is announced to both: the head count reaches 2 on each page.
  for (const page of [a, b]) {
    await page.waitForFunction(() => document.getElementById('here').textContent === '(2 here)', null, WAIT);
  }

  await say(a, nameA, textA);
  await Promise.all([messageCount(a, 1), messageCount(b, 1)]);
  await say(b, nameB, textB);
  await Promise.all([messageCount(a, 2), messageCount(b, 2)]);
  // Each form clears its #text once the broadcast POST answered ok.
  for (const page of [a, b]) {
    await page.waitForFunction(() => document.getElementById('text').value === '', null, WAIT);
  }

  console.log(JSON.stringify({ a: await snapshot(a), b: await snapshot(b) }));
} catch (err) {
  console.error(`chat.mjs: ${err?.stack ?? err}`);
  process.exitCode = 1;
} finally {
  // Closing the browser closes both contexts and removes its temp profile.
  await browser?.close().catch(() => {});
}
