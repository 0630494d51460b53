// The example app's cable endpoint (`/cable`) driven by the official Rails
// client, npm `@rails/actioncable` (8.1.400, unmodified), in Node with npm
// `ws` as its WebSocket — plus raw `ws` for what that client never sends
// (malformed commands, other subprotocols). Every socket records the
// frames the server sent. Prints one JSON line for
// controllers-example/tests/cable_clients.rs.
// Usage: node cable-rails.mjs ws://HOST:PORT
import { createRequire } from 'node:module';
import {
  RecordingWebSocket,
  broadcast,
  endpoints,
  finish,
  frameFacts,
  pipelinedBroadcasts,
  remoteDisconnect,
  section,
  sleep,
  sockets,
  token,
  unique,
  until,
} from './cable-common.mjs';

const require = createRequire(import.meta.url);
// The client's connection monitor listens for `visibilitychange`.
globalThis.addEventListener ??= () => {};
globalThis.removeEventListener ??= () => {};
const AC = require('@rails/actioncable');
AC.adapters.WebSocket = RecordingWebSocket;
AC.logger.enabled = false;

const EP = endpoints(process.argv[2]);
const WAIT = 5000;
const ORDERED = 10000;
const started = Date.now();

/// A connected consumer for `user` (a fresh token), or with the token
/// `forged:TOKEN`, or with none (`null`).
async function consumer(user) {
  let t = null;
  if (user?.startsWith('forged:')) t = user.slice(7);
  else if (user !== null) t = await token(EP.http, user);
  const c = AC.createConsumer(t === null ? `${EP.ws}/cable` : `${EP.ws}/cable?token=${encodeURIComponent(t)}`);
  c.token = t;
  c.connect();
  return c;
}

/// A subscription whose callbacks append to `sub.log`.
function subscribe(c, params) {
  const log = [];
  const sub = c.subscriptions.create(params, {
    connected(arg) {
      log.push({ ev: 'connected', reconnected: arg?.reconnected });
    },
    disconnected(arg) {
      log.push({ ev: 'disconnected', willAttemptReconnect: arg?.willAttemptReconnect });
    },
    rejected() {
      log.push({ ev: 'rejected' });
    },
    received(data) {
      log.push({ ev: 'received', data });
    },
  });
  sub.log = log;
  return sub;
}

const got = (sub) => sub.log.filter((e) => e.ev === 'received').map((e) => e.data);
const labels = (sub) =>
  sub.log.map((e) => {
    switch (e.ev) {
      case 'received':
        return `received:${JSON.stringify(e.data)}`;
      case 'disconnected':
        return `disconnected(${e.willAttemptReconnect})`;
      default:
        return e.ev;
    }
  });
const confirmed = (sub, what) => until(() => sub.log.some((e) => e.ev === 'connected'), WAIT, what);
const gotAtLeast = (sub, n, what, ms = WAIT) => until(() => got(sub).length >= n, ms, what);

const result = {};
const everyone = [];

// 1. Welcome: the first frame, over the one protocol the client supports.
const alice = await consumer('alice');
everyone.push(alice);
result.welcome = await section('welcome', async () => {
  await until(() => alice.connection.webSocket?.raw.length > 0, WAIT, 'welcome');
  return {
    protocol: alice.connection.getProtocol(),
    first: alice.connection.webSocket.frames[0],
  };
});

// 2. No token, a forged token: `unauthorized`, no reconnect, closed.
result.unauthorized = await section('unauthorized', async () => {
  const cases = {};
  for (const [name, who] of [['missing', null], ['forged', 'forged:alice.0000000000000000000000000000000000000000']]) {
    const c = await consumer(who);
    const sub = subscribe(c, { channel: 'EchoChannel' });
    const socket = c.connection.webSocket;
    await until(() => socket.closeCode !== null, WAIT, `${name} token: close`);
    await until(() => sub.log.length > 0, WAIT, `${name} token: disconnected callback`);
    cases[name] = {
      frames: socket.frames,
      log: labels(sub),
      monitorRunning: Boolean(c.connection.monitor.isRunning()),
    };
    c.disconnect();
  }
  return cases;
});

// 3. Rejection: room `secret` is for admin only.
result.rejection = await section('rejection', async () => {
  const denied = subscribe(alice, { channel: 'ChatChannel', room: 'secret' });
  await until(() => denied.log.length > 0, WAIT, 'reject');
  const admin = await consumer('admin');
  everyone.push(admin);
  const allowed = subscribe(admin, { channel: 'ChatChannel', room: 'secret' });
  await confirmed(allowed, 'admin confirm');
  // Past the client's 500 ms resubscribe: nothing more arrives for either.
  await sleep(700);
  const rejections = alice.connection.webSocket.frames.filter((f) => f.type === 'reject_subscription');
  return {
    nonAdmin: labels(denied),
    admin: labels(allowed),
    rejectFrames: rejections,
    rejectedIdentifier: denied.identifier,
  };
});

// 4. Transmissions from `subscribed` come before the confirmation; perform
//    with data (echo) and without (tick); per-subscription state.
result.echo = await section('echo', async () => {
  const one = subscribe(alice, { channel: 'EchoChannel' });
  await confirmed(one, 'echo confirm');
  const order = labels(one);
  one.perform('echo', { text: 'hi ☃', n: 1, nested: { a: [1, 2] } });
  await gotAtLeast(one, 3, 'echo reply');
  const echoed = got(one)[2];
  const tick = async (sub, what) => {
    const before = got(sub).length;
    sub.perform('tick');
    await gotAtLeast(sub, before + 1, what);
    return got(sub)[before];
  };
  const first = [await tick(one, 'tick 1'), await tick(one, 'tick 2')];
  const two = subscribe(alice, { channel: 'EchoChannel', instance: 2 });
  await confirmed(two, 'second echo confirm');
  const secondOrder = labels(two);
  const second = [await tick(two, 'second tick 1')];
  first.push(await tick(one, 'tick 3'));
  await sleep(200);
  return { order, echoed, first, second, secondOrder, extra: got(one).length - 6 + got(two).length - 3 };
});

// 5. Broadcasts delivered as given: object, string, JSON-looking string.
result.broadcasts = await section('broadcasts', async () => {
  const stream = unique('bc');
  const sub = subscribe(alice, { channel: 'EchoChannel', streams: [stream] });
  await confirmed(sub, 'broadcast confirm');
  const base = got(sub).length;
  await broadcast(EP.http, stream, { k: 'v', n: [1, 2], u: 'héllo ☃' });
  await broadcast(EP.http, stream, 'plain text héllo ☃');
  await broadcast(EP.http, stream, '{"a":1}');
  await gotAtLeast(sub, base + 3, 'three broadcasts');
  await sleep(200);
  return { before: got(sub).slice(0, base), received: got(sub).slice(base) };
});

// 6. Two clients in one room: receive (send without action), actions with
//    and without data; one unsubscribes, the other hears `left`.
result.chat = await section('chat', async () => {
  const room = unique('room');
  const bob = await consumer('bob');
  everyone.push(bob);
  const a = subscribe(alice, { channel: 'ChatChannel', room });
  const b = subscribe(bob, { channel: 'ChatChannel', room });
  await confirmed(a, 'alice confirm');
  await confirmed(b, 'bob confirm');
  a.send({ message: 'hi from alice' });
  await gotAtLeast(a, 1, 'alice hears alice');
  await gotAtLeast(b, 1, 'bob hears alice');
  b.perform('away');
  await gotAtLeast(a, 2, 'alice hears away');
  await gotAtLeast(b, 2, 'bob hears away');
  b.perform('status', { status: 'busy' });
  await gotAtLeast(a, 3, 'alice hears status');
  await gotAtLeast(b, 3, 'bob hears status');
  const bobSocket = bob.connection.webSocket;
  const mark = bobSocket.raw.length;
  b.unsubscribe();
  await gotAtLeast(a, 4, 'alice hears left');
  a.send({ message: 'after' });
  await gotAtLeast(a, 5, 'alice hears after');
  await sleep(300);
  const bobAfter = bobSocket.frames.slice(mark).filter((f) => f.identifier === b.identifier);
  return { alice: got(a), bob: got(b), bobFramesAfterUnsubscribe: bobAfter };
});

// 7. One subscription on two streams; stop_stream_from one of them.
result.streams = await section('streams', async () => {
  const sa = unique('sa');
  const sb = unique('sb');
  const sub = subscribe(alice, { channel: 'EchoChannel', streams: [sa, sb] });
  await confirmed(sub, 'streams confirm');
  const base = got(sub).length;
  await broadcast(EP.http, sa, { s: 'a', n: 1 });
  await gotAtLeast(sub, base + 1, 'a 1');
  await broadcast(EP.http, sb, { s: 'b', n: 1 });
  await gotAtLeast(sub, base + 2, 'b 1');
  sub.perform('stop_stream', { name: sa });
  // Commands run in order: once this echo is back, the stop is in.
  sub.perform('echo', { marker: 'stopped' });
  await gotAtLeast(sub, base + 3, 'marker echo');
  await broadcast(EP.http, sa, { s: 'a', n: 2 });
  await broadcast(EP.http, sb, { s: 'b', n: 2 });
  await broadcast(EP.http, sa, { s: 'a', n: 3 });
  await broadcast(EP.http, sb, { s: 'b', end: true });
  await until(() => got(sub).some((m) => m?.end === true), WAIT, 'b end');
  await sleep(300);
  return { received: got(sub).slice(base) };
});

// 8. Closing the consumer runs `unsubscribed` for each of its subscriptions.
result.closeUnsubscribes = await section('closeUnsubscribes', async () => {
  const r1 = unique('r1');
  const r2 = unique('r2');
  const carol = await consumer('carol');
  const dave = await consumer('dave');
  everyone.push(dave);
  const c1 = subscribe(carol, { channel: 'ChatChannel', room: r1 });
  const c2 = subscribe(carol, { channel: 'ChatChannel', room: r2 });
  const d1 = subscribe(dave, { channel: 'ChatChannel', room: r1 });
  const d2 = subscribe(dave, { channel: 'ChatChannel', room: r2 });
  for (const [s, n] of [[c1, 'c1'], [c2, 'c2'], [d1, 'd1'], [d2, 'd2']]) await confirmed(s, `${n} confirm`);
  carol.disconnect();
  await gotAtLeast(d1, 1, 'left in room 1');
  await gotAtLeast(d2, 1, 'left in room 2');
  await sleep(300);
  return { room1: got(d1), room2: got(d2), carol: [labels(c1), labels(c2)] };
});

// 9. Remote disconnect, with and without reconnect; others stay.
result.remote = await section('remote', async () => {
  const out = {};
  for (const [user, reconnect] of [['erin', false], ['frank', true]]) {
    const c = await consumer(user);
    const sub = subscribe(c, { channel: 'EchoChannel' });
    await confirmed(sub, `${user} confirm`);
    const socket = c.connection.webSocket;
    await remoteDisconnect(EP.http, user, reconnect);
    await until(() => sub.log.some((e) => e.ev === 'disconnected'), WAIT, `${user} disconnected`);
    await until(() => socket.closeCode !== null, WAIT, `${user} socket closed`);
    out[user] = {
      disconnects: socket.frames.filter((f) => f.type === 'disconnect'),
      log: labels(sub).filter((l) => !l.startsWith('received:')),
      monitorRunning: Boolean(c.connection.monitor.isRunning()),
    };
    c.disconnect();
  }
  out.aliceOpen = alice.connection.isOpen();
  return out;
});

// 10. 10,000 broadcasts to one stream arrive, all and in order.
result.ordering = await section('ordering', async () => {
  const stream = unique('ord');
  const sub = subscribe(alice, { channel: 'EchoChannel', streams: [stream] });
  await confirmed(sub, 'ordering confirm');
  const base = got(sub).length;
  const datas = Array.from({ length: ORDERED }, (_, i) => ({ n: i + 1 }));
  const published = await pipelinedBroadcasts(EP, stream, datas);
  await gotAtLeast(sub, base + ORDERED, 'all ordered broadcasts', 20000).catch(() => {});
  await sleep(200);
  const ns = got(sub).slice(base).map((m) => m?.n);
  const firstOut = ns.findIndex((n, i) => n !== i + 1);
  return {
    published,
    count: ns.length,
    inOrder: firstOut === -1,
    firstOutOfOrder: firstOut === -1 ? null : { index: firstOut, n: ns[firstOut] },
  };
});

// 11. Raw `ws`: malformed commands leave the connection open; identifiers
//     are echoed byte for byte.
async function rawSocket(user, protocols) {
  const t = await token(EP.http, user);
  const ws = new RecordingWebSocket(`${EP.ws}/cable?token=${encodeURIComponent(t)}`, protocols);
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  await until(() => ws.raw.length > 0, WAIT, 'raw welcome');
  return ws;
}
const nonPing = (ws) => ws.frames.filter((f) => f.type !== 'ping');

result.malformed = await section('malformed', async () => {
  const ws = await rawSocket('mallory', ['actioncable-v1-json']);
  const welcome = nonPing(ws)[0];
  const never = '{"channel":"EchoChannel","never":"subscribed"}';
  for (const text of [
    'not json',
    '[1,2,3]',
    '"a string"',
    JSON.stringify({ command: 'bogus', identifier: '{"channel":"EchoChannel"}' }),
    JSON.stringify({ command: 'subscribe', identifier: { channel: 'EchoChannel' } }),
    JSON.stringify({ command: 'subscribe', identifier: 'not json' }),
    JSON.stringify({ command: 'subscribe', identifier: '["EchoChannel"]' }),
    JSON.stringify({ command: 'subscribe' }),
    JSON.stringify({ command: 'message', identifier: never, data: '{"action":"echo"}' }),
    JSON.stringify({ command: 'unsubscribe', identifier: never }),
    JSON.stringify({ command: 'subscribe', identifier: '{"channel":"NoSuchChannel"}' }),
  ]) {
    ws.send(text);
  }
  // Key order and spacing no client would produce: echoed as sent.
  const id = '{ "z": 1, "channel" : "EchoChannel",  "k":"v" }';
  ws.send(JSON.stringify({ command: 'subscribe', identifier: id }));
  await until(() => ws.frames.some((f) => f.type === 'confirm_subscription'), WAIT, 'valid subscribe after malformed');
  // Bad data for a subscribed identifier, then a good one.
  ws.send(JSON.stringify({ command: 'message', identifier: id, data: 'not json' }));
  ws.send(JSON.stringify({ command: 'message', identifier: id, data: '{"action":"no_such_action"}' }));
  ws.send(JSON.stringify({ command: 'message', identifier: id, data: '{"action":"echo","x":1}' }));
  await until(() => nonPing(ws).some((f) => f.message?.x === 1), WAIT, 'echo after malformed');
  await sleep(300);
  const open = ws.readyState === RecordingWebSocket.OPEN;
  ws.close(1000);
  await until(() => ws.closeCode !== null, WAIT, 'close');
  return { welcome, open, frames: nonPing(ws).slice(1), identifier: id, closeCode: ws.closeCode };
});

result.subprotocols = await section('subprotocols', async () => {
  const out = [];
  for (const offered of [
    ['actioncable-v1-json'],
    ['actioncable-unsupported', 'actioncable-v1-json'],
    ['actioncable-v1-ext-json'],
    ['x-unknown', 'actioncable-v1-ext-json', 'actioncable-v1-json'],
  ]) {
    const ws = await rawSocket('sub', offered);
    const welcome = nonPing(ws)[0];
    out.push({ offered, chosen: ws.protocol, welcomeType: welcome.type, hasSid: typeof welcome.sid === 'string' && welcome.sid.length > 0 });
    ws.close(1000);
  }
  return out;
});

// 12. Pings on alice's connection (every 3 s), and facts about every frame
//     every socket of this run received.
result.frames = await section('frames', async () => {
  const socket = alice.connection.webSocket;
  await until(() => socket.frames.filter((f) => f.type === 'ping').length >= 2, 10000, 'two pings');
  return {
    ...frameFacts(),
    alicePings: socket.frames.filter((f) => f.type === 'ping').length,
    aliceSockets: sockets.filter((s) => s.url.endsWith(`token=${encodeURIComponent(alice.token)}`)).length,
    aliceOpen: alice.connection.isOpen(),
  };
});

for (const c of everyone) c.disconnect();
result.seconds = Math.round((Date.now() - started) / 1000);
finish(result);
