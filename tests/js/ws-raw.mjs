// The npm `ws` client alone, speaking the wire format by hand: 10,000
// numbered `echo` events on /ws must come back in order (several per
// message under load); /ws/echo returns text and binary verbatim.
// Prints one JSON line. Usage: node ws-raw.mjs <ws-base> [count]
import { WebSocket } from 'ws';

const [base, countArg] = process.argv.slice(2);
const COUNT = Number(countArg ?? 10000);

function open(url) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

const events = await open(`${base}/ws`);
const received = [];
let messages = 0;
const all = new Promise((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error(`only ${received.length} echoes`)), 30000);
  events.on('message', (data, isBinary) => {
    if (isBinary) return reject(new Error('a binary message on /ws'));
    messages += 1;
    for (const line of data.toString().split('\n')) {
      if (line === '') continue;
      const message = JSON.parse(line);
      if (message.event === 'echo') received.push(message.data);
    }
    if (received.length === COUNT) {
      clearTimeout(timer);
      resolve();
    }
  });
});
for (let n = 1; n <= COUNT; n += 1) events.send(JSON.stringify({ event: 'echo', data: n }));
await all;
const closed = new Promise((resolve) => events.once('close', (code) => resolve(code)));
events.close(1000);
const closeCode = await closed;

const echo = await open(`${base}/ws/echo`);
const replies = [];
const both = new Promise((resolve) => {
  echo.on('message', (data, isBinary) => {
    replies.push({ binary: isBinary, hex: Buffer.from(data).toString('hex') });
    if (replies.length === 2) resolve();
  });
});
echo.send('héllo ☃');
echo.send(Buffer.from([0, 1, 2, 255]), { binary: true });
await both;
echo.close(1000);

console.log(
  JSON.stringify({
    count: received.length,
    inOrder: received.every((n, i) => n === i + 1),
    batched: messages < COUNT,
    closeCode,
    echo: replies,
  }),
);
