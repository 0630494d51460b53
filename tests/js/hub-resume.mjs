// Subscribes to GET /hub?channel=<channel> with the npm `eventsource`
// package and reads `message` events until the one whose data is
// "msg <count>", letting the client reconnect by itself whenever the
// connection drops (the Rust test cuts it in a proxy while it publishes).
// `presence` events are counted, not recorded. Prints
// {"done", "messages": [...], "ids": [...], "lastEventIds": [...], "errors": n,
//  "presence": n} where ids are the messages' hub ids (`<epoch>-<offset>`,
// as strings) and lastEventIds the
// Last-Event-ID header of every request the client made ("" when none),
// recorded in the `fetch` it is given.
// Usage: node hub-resume.mjs <base-url> <channel> <count>
import { EventSource } from 'eventsource';

const [base, channel, countArg] = process.argv.slice(2);
const count = Number(countArg);
if (!base || !channel || !Number.isInteger(count) || count < 1) {
  console.error('usage: node hub-resume.mjs <base-url> <channel> <count>');
  process.exit(2);
}

const messages = [];
const ids = [];
const lastEventIds = [];
let errors = 0;
let presence = 0;

// Only observes the requests; the client builds its headers itself.
function recordingFetch(input, init) {
  const headers = new Headers(init?.headers);
  lastEventIds.push(headers.get('last-event-id') ?? '');
  return fetch(input, init);
}

const url = new URL('/hub', base);
url.searchParams.set('channel', channel);
const es = new EventSource(url, { fetch: recordingFetch });

function finish(done, error) {
  es.close();
  clearTimeout(deadline);
  if (error) console.error(`hub-resume.mjs: ${error}`);
  console.log(JSON.stringify({ done, messages, ids, lastEventIds, errors, presence }));
  process.exitCode = done === 'reached' ? 0 : 1;
}

es.addEventListener('message', (e) => {
  messages.push(e.data);
  ids.push(e.lastEventId);
  if (e.data === `msg ${count}`) finish('reached');
});
es.addEventListener('presence', () => {
  presence += 1;
});
es.addEventListener('reset', (e) => finish('failed', `history lost: reset ${JSON.stringify(e.data)}`));
es.addEventListener('error', (e) => {
  errors += 1;
  console.error(`hub-resume.mjs: error event (${e.message ?? 'no message'}), readyState ${es.readyState}`);
  // CLOSED means the client gave up instead of reconnecting.
  if (es.readyState === EventSource.CLOSED) finish('failed', 'client stopped reconnecting');
  else if (errors > 20) finish('failed', 'too many errors');
});
const deadline = setTimeout(() => finish('timeout', `"msg ${count}" not seen within 25 s`), 25_000);
