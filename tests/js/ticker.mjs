// Reads GET /ticker with the npm `eventsource` package until it has seen the
// id <until>, letting the client reconnect by itself whenever the connection
// drops (the Rust test cuts it in a proxy). Prints
// {"done", "ids": [...], "badData": [...], "lastEventIds": [...], "errors": n}
// where lastEventIds holds the Last-Event-ID header of every request the
// client made ("" when it sent none), recorded in the `fetch` it is given.
// Usage: node ticker.mjs <base-url> <until>
import { EventSource } from 'eventsource';

const [base, untilArg] = process.argv.slice(2);
const until = Number(untilArg);
if (!base || !Number.isInteger(until) || until < 1) {
  console.error('usage: node ticker.mjs <base-url> <until>');
  process.exit(2);
}

const ids = [];
const badData = [];
const lastEventIds = [];
let errors = 0;

// Only observes the requests; the client builds its headers itself.
function recordingFetch(input, init) {
  const headers = new Headers(init?.headers);
  lastEventIds.push(headers.get('last-event-id') ?? '');
  return fetch(input, init);
}

const es = new EventSource(new URL('/ticker', base), { fetch: recordingFetch });

function finish(done, error) {
  es.close();
  clearTimeout(deadline);
  if (error) console.error(`ticker.mjs: ${error}`);
  console.log(JSON.stringify({ done, ids, badData, lastEventIds, errors }));
  process.exitCode = done === 'reached' ? 0 : 1;
}

es.addEventListener('message', (e) => {
  const id = Number(e.lastEventId);
  ids.push(id);
  if (e.data !== `tick ${id}`) badData.push(e.data);
  if (id >= until) finish('reached');
});
es.addEventListener('error', (e) => {
  errors += 1;
  console.error(`ticker.mjs: error event (${e.message ?? 'no message'}), readyState ${es.readyState}`);
  // CLOSED means the client gave up instead of reconnecting.
  if (es.readyState === EventSource.CLOSED) finish('failed', 'client stopped reconnecting');
  else if (errors > 20) finish('failed', 'too many errors');
});
const deadline = setTimeout(() => finish('timeout', `id ${until} not reached within 20 s`), 20_000);
