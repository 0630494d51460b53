// The example's todo page (`GET /todos?user=U`, live over the state API's
// SSE) in two headless Chromium contexts, A and B, for the same user: A
// adds a todo through the form → both list it; B ticks its checkbox → A
// shows it completed; A renames it (answering the page's `prompt`) → B
// shows the new title; the script deletes it with
// `DELETE /state/todos/U/<id>` → both drop it. Each step waits until both
// pages agree, then records what each shows. Prints one JSON line.
// Usage: node state-todo-page.mjs http://HOST:PORT [user]
import { chromium } from 'playwright-core';
import { ARGS, EXECUTABLE } from './chromium.mjs';
import { call, deadline, finish } from './state-common.mjs';

const [base, user = 'ann'] = process.argv.slice(2);
if (!base) {
  console.error('usage: node state-todo-page.mjs http://HOST:PORT [user]');
  process.exit(2);
}
deadline(50_000, 'state-todo-page.mjs');

/// What a page shows: its count and each todo's id, title, class and box.
const show = (page) =>
  page.evaluate(() => ({
    count: document.body.dataset.count ?? null,
    todos: [...document.querySelectorAll('#list li')].map((li) => ({
      id: li.dataset.id,
      title: li.querySelector('span.title').textContent,
      completed: li.classList.contains('completed'),
      checked: li.querySelector('input.toggle').checked,
    })),
  }));

const browser = await chromium.launch({ executablePath: EXECUTABLE, args: ARGS, timeout: 30_000 });
const result = {};
try {
  const pages = [];
  for (const name of ['a', 'b']) {
    const page = await (await browser.newContext()).newPage();
    page.on('console', (msg) => console.error(`page ${name} console: ${msg.text()}`));
    page.on('pageerror', (error) => console.error(`page ${name} error: ${error}`));
    await page.goto(`${base}/todos?user=${user}`, { timeout: 15_000 });
    await page.waitForFunction(() => document.getElementById('state').textContent === 'live', null, { timeout: 10_000 });
    pages.push(page);
  }
  const [a, b] = pages;
  result.initial = { a: await show(a), b: await show(b) };
  const both = async (step, fn, arg) => {
    for (const [name, page] of [['a', a], ['b', b]]) {
      await page.waitForFunction(fn, arg, { timeout: 10_000 }).catch((error) => {
        throw new Error(`${step} on page ${name}: ${error.message}`);
      });
    }
    result[step] = { a: await show(a), b: await show(b) };
  };

  // A adds through the form.
  await a.fill('#title', 'buy milk');
  await a.press('#title', 'Enter');
  await both('added', () => document.querySelectorAll('#list li').length === 1 && document.body.dataset.count === '1');
  const id = await a.evaluate(() => document.querySelector('#list li').dataset.id);
  result.formCleared = (await a.inputValue('#title')) === '';

  // B ticks it.
  await b.click(`li[data-id="${id}"] input.toggle`);
  await both('toggled', (id) => document.querySelector(`li[data-id="${id}"]`)?.classList.contains('completed'), id);

  // A renames it, answering the prompt.
  let dialog = null;
  a.once('dialog', async (d) => {
    dialog = { type: d.type(), message: d.message(), defaultValue: d.defaultValue() };
    await d.accept('buy oat milk');
  });
  await a.click(`li[data-id="${id}"] button.rename`);
  await both('renamed', (id) => document.querySelector(`li[data-id="${id}"] span.title`)?.textContent === 'buy oat milk', id);
  result.dialog = dialog;

  // The script deletes it.
  await call(base, 'DELETE', `/state/todos/${user}/${id}`);
  await both('deleted', () => document.querySelectorAll('#list li').length === 0 && document.body.dataset.count === '0');
  result.server = await call(base, 'GET', `/state/todos/${user}`);
  result.server.rev = typeof result.server.rev;
  result.id = id;
} finally {
  await browser.close().catch(() => {});
}
finish(result);
