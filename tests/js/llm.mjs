// Reads GET /llm with the npm `eventsource` package and prints
// {"done": "done"|"error"|"timeout", "tokens": [...], "doneData": string|null}.
// Usage: node llm.mjs <base-url>
import { EventSource } from 'eventsource';

const [base] = process.argv.slice(2);
if (!base) {
  console.error('usage: node llm.mjs <base-url>');
  process.exit(2);
}

const tokens = [];
let doneData = null;
const es = new EventSource(new URL('/llm', base));

function finish(done, error) {
  es.close();
  clearTimeout(deadline);
  if (error) console.error(`llm.mjs: ${error}`);
  console.log(JSON.stringify({ done, tokens, doneData }));
  process.exitCode = done === 'done' ? 0 : 1;
}

es.addEventListener('token', (e) => tokens.push(e.data));
es.addEventListener('done', (e) => {
  doneData = e.data;
  finish('done');
});
es.addEventListener('message', (e) => finish('error', `unexpected message event ${JSON.stringify(e.data)}`));
es.addEventListener('error', (e) => finish('error', e.message ?? 'error event'));
const deadline = setTimeout(() => finish('timeout', 'no done event within 20 s'), 20_000);
