// Reads GET /events with the npm `eventsource` package and prints
// {"done": "closed"|"error"|"timeout", "events": [{"type", "data"}, ...]}.
// Usage: node events.mjs <base-url>
import { EventSource } from 'eventsource';

const [base] = process.argv.slice(2);
if (!base) {
  console.error('usage: node events.mjs <base-url>');
  process.exit(2);
}

const EXPECTED_COUNT = 5;
const events = [];
const es = new EventSource(new URL('/events', base));

function finish(done, error) {
  es.close();
  clearTimeout(deadline);
  if (error) console.error(`events.mjs: ${error}`);
  console.log(JSON.stringify({ done, events }));
  process.exitCode = done === 'closed' ? 0 : 1;
}

// Without an explicit close the client would reconnect when the server ends
// the stream, so stop on the last expected event.
function record(e) {
  events.push({ type: e.type, data: e.data });
  if (events.length === EXPECTED_COUNT) finish('closed');
}

es.addEventListener('greeting', record);
es.addEventListener('message', record);
es.addEventListener('error', (e) => finish('error', e.message ?? 'error event'));
const deadline = setTimeout(() => finish('timeout', 'no 5 events within 15 s'), 15_000);
