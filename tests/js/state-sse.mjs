// Follows the group `todos/<user>` of the state API as Server-Sent Events
// with the npm `eventsource` package, through the Rust test's proxy that
// cuts every connection after a few dozen milliseconds (some in the middle
// of an event), while the Rust test writes — a counter item incremented
// hundreds of times, todos created and deleted, custom events — and last
// creates the item `done`. The client reconnects by itself with
// `Last-Event-ID`; the script rebuilds the group from `sync`, `create`,
// `update`, `delete` (and counts `event`s) and checks, event by event, that
// each change's `id: <epoch>.<rev>` is the previous one plus one: no gap,
// no duplicate. Once `done` is there it compares the rebuilt group with
// `GET /state/todos/<user>` (straight to the app).
//
// The state API sends no `retry:` field, so the client would wait its
// default 3 s before each reconnect; the `fetch` given to it puts
// `retry: 20` in front of each response body (as a server's first frame
// would), and records every request's `Last-Event-ID`.
// Prints one JSON line.
// Usage: node state-sse.mjs <proxy-base> <app-base> <user> [done-item]
import { EventSource } from 'eventsource';
import { canon, deadline, finish } from './state-common.mjs';

const [proxyBase, appBase, user, doneItem = 'done'] = process.argv.slice(2);
if (!proxyBase || !appBase || !user) {
  console.error('usage: node state-sse.mjs <proxy-base> <app-base> <user> [done-item]');
  process.exit(2);
}
deadline(55_000, 'state-sse.mjs');

const RETRY = new TextEncoder().encode('retry: 20\n\n');
const requests = []; // Last-Event-ID of each request ('' when none)
let lastDispatchedId = ''; // the id of the last event dispatched
const resumeMismatches = [];

function recordingFetch(input, init) {
  const sent = new Headers(init?.headers).get('last-event-id') ?? '';
  requests.push(sent);
  if (sent !== lastDispatchedId) resumeMismatches.push({ sent, expected: lastDispatchedId });
  return fetch(input, init).then((res) => {
    if (!res.body) return res;
    let first = true;
    const body = res.body.pipeThrough(
      new TransformStream({
        transform(chunk, controller) {
          if (first) controller.enqueue(RETRY);
          first = false;
          controller.enqueue(chunk);
        },
      }),
    );
    return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
  });
}

const items = new Map();
let epoch = null;
let rev = null;
let syncs = 0;
let resets = 0;
let changes = 0;
let customEvents = 0;
let errors = 0;
const gaps = [];
const duplicates = [];
const badEvents = [];
const seen = new Set();

const parseId = (id) => {
  const dot = id.lastIndexOf('.');
  return { epoch: id.slice(0, dot), rev: Number(id.slice(dot + 1)) };
};

const es = new EventSource(`${proxyBase}/state/todos/${user}`, { fetch: recordingFetch });

es.addEventListener('sync', (e) => {
  lastDispatchedId = e.lastEventId;
  syncs += 1;
  const id = parseId(e.lastEventId);
  epoch = id.epoch;
  rev = id.rev;
  items.clear();
  for (const [key, value] of Object.entries(JSON.parse(e.data).items)) items.set(key, value);
  check();
});

es.addEventListener('reset', () => {
  resets += 1;
});

function change(e) {
  lastDispatchedId = e.lastEventId;
  const id = parseId(e.lastEventId);
  if (seen.has(e.lastEventId)) duplicates.push(e.lastEventId);
  seen.add(e.lastEventId);
  if (rev === null || id.epoch !== epoch || id.rev !== rev + 1) {
    gaps.push({ after: `${epoch}.${rev}`, got: e.lastEventId });
  }
  epoch = id.epoch;
  rev = id.rev;
  const c = JSON.parse(e.data);
  if (c.type !== e.type) badEvents.push({ event: e.type, data: c });
  if (e.type === 'event') {
    customEvents += 1;
    return;
  }
  changes += 1;
  if (e.type === 'delete') items.delete(c.id);
  else items.set(c.id, c.data);
  check();
}
for (const type of ['create', 'update', 'delete', 'event']) es.addEventListener(type, change);

es.addEventListener('error', () => {
  errors += 1;
  if (es.readyState === EventSource.CLOSED) done('client stopped reconnecting');
});

let finished = false;
function check() {
  if (!finished && items.has(doneItem)) {
    finished = true;
    done();
  }
}

async function done(failure) {
  es.close();
  const server = await (await fetch(`${appBase}/state/todos/${user}`)).json();
  const serverItems = Object.fromEntries(server.items.map((i) => [i.id, i.value]));
  const firstSync = requests.findIndex((_, i) => i > 0 && requests[i] !== '');
  finish(
    {
      done: failure ?? 'reached',
      requests: requests.length,
      reconnects: requests.length - 1,
      errors,
      // Requests without Last-Event-ID: only before the first event came.
      withoutId: requests.filter((id) => id === '').length,
      firstWithId: firstSync,
      requestIds: requests,
      resumeMismatches: resumeMismatches.slice(0, 5),
      syncs,
      resets,
      changes,
      customEvents,
      gaps: gaps.slice(0, 5),
      duplicates: duplicates.slice(0, 5),
      badEvents: badEvents.slice(0, 5),
      rev: `${epoch}.${rev}`,
      serverRev: server.rev,
      items: items.size,
      counter: items.get('counter') ?? null,
      equal: canon(Object.fromEntries(items)) === canon(serverItems),
    },
    failure ? 1 : 0,
  );
}
