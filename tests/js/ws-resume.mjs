// rill's own client in Node subscribed to a hub channel over /ws, while the
// Rust test publishes `msg 1..N` and a proxy cuts the connection: the
// client reconnects by itself and resumes from its last id. Prints the
// messages, their ids, the ids it resumed from, and how often it
// reconnected. Usage: node ws-resume.mjs <http-base> <ws-url> <channel> <count>
// (the client module comes from <http-base>; the socket goes to <ws-url>).
import { WebSocket } from 'ws';

const [base, wsUrl, channel, countArg] = process.argv.slice(2);
const COUNT = Number(countArg);
globalThis.WebSocket = WebSocket;
const source = await (await fetch(`${base}/rill.js`)).text();
const { connect } = await import(`data:text/javascript;base64,${Buffer.from(source).toString('base64')}`);

const messages = [];
const ids = [];
const events = [];
let reconnects = 0;
const s = connect(wsUrl, { minReconnectDelay: 50, maxReconnectDelay: 400 });
s.onState((state) => {
  if (state === 'reconnecting') reconnects += 1;
});
const done = new Promise((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error(`only ${messages.length} messages: ${JSON.stringify(messages)}`)), 30000);
  s.subscribe(
    channel,
    (data, meta) => {
      messages.push(data);
      ids.push(meta.id);
      events.push(meta.event);
      if (messages.length >= COUNT) {
        clearTimeout(timer);
        resolve();
      }
    },
    { onReset: () => reject(new Error('unexpected reset')) },
  );
});
await done;
s.close();
console.log(JSON.stringify({ messages, ids, events: [...new Set(events)], reconnects }));
