// The iii/Motia browser client, `@motiadev/stream-client-browser` 0.2.2,
// in headless Chromium: the Rust test serves its dist (relative imports
// given their `.js`, nothing else changed) under `/motia/`, npm `uuid`'s
// browser build under `/uuid/`, and a page (`/test/motia-page`) that maps
// `uuid` there, imports the client as `window.Stream` and records every
// WebSocket message in `window.frames_`. On that page: a group and an item
// subscription of `todos/<U>` over `/iii?user=U`; creates, a PATCH, a
// DELETE over HTTP; then `POST /test/burst`, where the Rust test makes five
// updates to the item within one millisecond (each appending its number and
// incrementing a counter) — all five must reach the item's change
// listener, in order. Prints one JSON line.
// Usage: node state-motia-chromium.mjs http://HOST:PORT
import { chromium } from 'playwright-core';
import { ARGS, EXECUTABLE } from './chromium.mjs';
import { call, canon, canonById, createTodo, deadline, finish, serverGroup, uniqueUser } from './state-common.mjs';

const [base] = process.argv.slice(2);
if (!base) {
  console.error('usage: node state-motia-chromium.mjs http://HOST:PORT');
  process.exit(2);
}
deadline(50_000, 'state-motia-chromium.mjs');

const user = uniqueUser('motia-chromium');
const browser = await chromium.launch({ executablePath: EXECUTABLE, args: ARGS, timeout: 30_000 });
const result = { user };
try {
  const page = await (await browser.newContext()).newPage();
  page.on('console', (msg) => console.error(`page console: ${msg.text()}`));
  page.on('pageerror', (error) => console.error(`page error: ${error}`));
  await page.goto(`${base}/test/motia-page`, { timeout: 15_000 });
  await page.waitForFunction(() => window.Stream, null, { timeout: 10_000 });
  const wait = (fn, arg, what) =>
    page.waitForFunction(fn, arg, { timeout: 10_000 }).catch((error) => {
      throw new Error(`${what}: ${error.message}`);
    });

  const first = await createTodo(base, user, 'made before the subscription');
  await page.evaluate(
    ({ user, first }) => {
      window.stream = new window.Stream(`ws://${location.host}/iii?user=${user}`);
      window.group = window.stream.subscribeGroup('todos', user);
      window.groupStates = [];
      window.group.addChangeListener((state) => window.groupStates.push(state));
      window.item = window.stream.subscribeItem('todos', user, first);
      window.itemStates = [];
      window.item.addChangeListener((state) => window.itemStates.push(state));
      window.has = (id, key, value) =>
        (window.group.getState() ?? []).some((t) => t.id === id && (key === undefined || t[key] === value));
    },
    { user, first },
  );
  await wait((id) => window.has(id) && window.item.getState()?.id === id, first, 'sync');
  result.sync = await page.evaluate(() => ({ group: window.group.getState(), item: window.item.getState() }));

  // Creates, an update, a delete.
  const a = await createTodo(base, user, 'second');
  const b = await createTodo(base, user, 'third ☃');
  await wait(([a, b]) => window.has(a) && window.has(b), [a, b], 'creates');
  await call(base, 'PATCH', `/state/todos/${user}/${a}`, { ops: [{ op: 'set', path: ['completed'], value: true }] });
  await wait((a) => window.has(a, 'completed', true), a, 'update');
  await call(base, 'DELETE', `/state/todos/${user}/${b}`);
  await wait((b) => !window.has(b), b, 'delete');
  const state = await page.evaluate(() => window.group.getState());
  result.crud = {
    titles: state.map((t) => t.title),
    completed: state.map((t) => t.completed),
    equalsServer: canonById(state) === (await serverGroup(base, user)).text,
  };

  // Five updates within one millisecond, made by the Rust test's store;
  // again (five more, a moment later) if a busy machine made them take
  // longer.
  let burst;
  let before;
  let attempts = 0;
  while (attempts < 50) {
    if (attempts > 0) await page.waitForTimeout(50);
    attempts += 1;
    before = await page.evaluate(() => ({ states: window.itemStates.length, frames: window.frames_.length }));
    burst = await call(base, 'POST', '/test/burst', { user, item: first });
    await wait((n) => window.item.getState()?.n === n, 5 * attempts, 'burst');
    if (burst.micros < 1000) break;
  }
  await page.waitForTimeout(200);
  const seen = await page.evaluate(
    ({ states, frames }) => ({
      states: window.itemStates.slice(states),
      final: window.item.getState(),
      groupCopy: window.group.getState().find((t) => t.id === window.item.getState().id),
      frames: window.frames_.slice(frames).map((text) => JSON.parse(text)),
    }),
    before,
  );
  const server = await call(base, 'GET', `/state/todos/${user}/${first}`);
  const received = [...new Set(seen.frames.filter((f) => f.id === first && f.event.type === 'update').map((f) => f.timestamp))];
  const earlier = 5 * (attempts - 1);
  result.burst = {
    attempts,
    micros: burst.micros,
    sameMillisecond: burst.clock[0] === burst.clock[1],
    serverTimestamps: burst.timestamps,
    receivedTimestamps: received,
    // The states the item's change listener saw during the last burst:
    // its log (past the earlier bursts') and counter.
    seen: seen.states.map((s) => s.log.slice(earlier)),
    counts: seen.states.map((s) => s.n - earlier),
    final: seen.final,
    equalsServer: canon(seen.final) === canon(server),
    groupEqualsItem: canon(seen.groupCopy) === canon(seen.final),
  };
  result.groupEqualsServer = canonById(await page.evaluate(() => window.group.getState())) === (await serverGroup(base, user)).text;
} finally {
  await browser.close().catch(() => {});
}
finish(result);
