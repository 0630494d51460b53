// The example app's cable endpoint (`/cable`) driven by AnyCable's client,
// npm `@anycable/web` (1.1.1, unmodified), in Node with npm `ws` (a
// recording subclass) as its WebSocket, over either protocol:
// `actioncable-v1-json` or AnyCable's `actioncable-v1-ext-json`. With the
// extended protocol, a reliability run: this script publishes `{n}` over
// HTTP one request at a time while it cuts the transport (no close frame)
// 50 times; every n must arrive exactly once, in order, through restored
// sessions and history. Prints one JSON line for
// controllers-example/tests/cable_clients.rs.
// Usage: node cable-anycable.mjs ws://HOST:PORT actioncable-v1-json|actioncable-v1-ext-json
import http from 'node:http';
import { createCable } from '@anycable/web';
import {
  RecordingWebSocket,
  broadcast,
  endpoints,
  finish,
  frameFacts,
  section,
  sleep,
  sockets,
  token,
  unique,
  until,
  within,
} from './cable-common.mjs';

const EP = endpoints(process.argv[2]);
const PROTOCOL = process.argv[3];
if (!['actioncable-v1-json', 'actioncable-v1-ext-json'].includes(PROTOCOL)) {
  console.error(`unknown protocol ${PROTOCOL}`);
  process.exit(2);
}
const EXT = PROTOCOL === 'actioncable-v1-ext-json';
const WAIT = 5000;
const DROPS = 50;
const started = Date.now();

async function newCable(user) {
  const t = await token(EP.http, user);
  return createCable(`${EP.ws}/cable?token=${encodeURIComponent(t)}`, {
    websocketImplementation: RecordingWebSocket,
    protocol: PROTOCOL,
    logLevel: 'error',
    // Reconnect within 20–80 ms (the default starts at 3 s or more).
    reconnectStrategy: () => 20 + Math.random() * 60,
  });
}

/// A channel whose events append to `ch.log`.
function channel(cable, name, params) {
  const ch = cable.subscribeTo(name, params);
  const log = [];
  ch.on('message', (message, meta) => log.push({ ev: 'message', message, meta: meta ?? null }));
  ch.on('connect', (ev) => log.push({ ev: 'connect', reconnect: ev.reconnect, restored: ev.restored }));
  ch.on('disconnect', (err) => log.push({ ev: 'disconnect', reason: err?.reason ?? null }));
  ch.on('close', (err) => log.push({ ev: 'close', error: err?.name ?? null }));
  ch.log = log;
  return ch;
}

const messages = (ch) => ch.log.filter((e) => e.ev === 'message').map((e) => e.message);
const labels = (ch) =>
  ch.log.map((e) => {
    switch (e.ev) {
      case 'message':
        return `message:${JSON.stringify(e.message)}`;
      case 'connect':
        return `connect(reconnect=${e.reconnect},restored=${e.restored})`;
      default:
        return `${e.ev}(${e.reason ?? e.error ?? ''})`;
    }
  });
const messagesAtLeast = (ch, n, what, ms = WAIT) => until(() => messages(ch).length >= n, ms, what);

const result = { protocol: PROTOCOL };
const cables = [];

const cable = await newCable('anna');
cables.push(cable);
const cableEvents = [];
cable.on('connect', (ev) => cableEvents.push({ ev: 'connect', reconnect: ev.reconnect, restored: ev.restored }));
cable.on('disconnect', (err) => cableEvents.push({ ev: 'disconnect', reason: err?.reason ?? null }));
cable.on('close', (err) => cableEvents.push({ ev: 'close', reason: err?.reason ?? null }));

// 1. Connect: the welcome, on the protocol asked for.
result.connect = await section('connect', async () => {
  await within(cable.connect(), WAIT, 'connect');
  const socket = cable.transport.ws;
  const welcome = socket.frames[0];
  return {
    state: cable.state,
    chosen: socket.protocol,
    welcomeType: welcome.type,
    sid: typeof welcome.sid === 'string' && welcome.sid.length > 0 ? 'present' : (welcome.sid ?? null),
    restored: welcome.restored ?? null,
    events: [...cableEvents],
  };
});

// 2. Transmissions from `subscribed` before the confirmation; perform.
result.echo = await section('echo', async () => {
  const ch = channel(cable, 'EchoChannel', {});
  await within(ch.ensureSubscribed(), WAIT, 'echo subscribe');
  const order = labels(ch);
  await ch.perform('echo', { text: 'hi ☃', n: 1 });
  await messagesAtLeast(ch, 3, 'echo reply');
  const echoed = messages(ch)[2];
  const ticks = [];
  for (let i = 0; i < 2; i += 1) {
    const before = messages(ch).length;
    await ch.perform('tick');
    await messagesAtLeast(ch, before + 1, `tick ${i + 1}`);
    ticks.push(messages(ch)[before]);
  }
  await sleep(200);
  return { order, echoed, ticks, count: messages(ch).length };
});

// 3. Broadcasts as given; with the extended protocol, stream positions.
result.broadcasts = await section('broadcasts', async () => {
  const stream = unique('abc');
  const ch = channel(cable, 'EchoChannel', { streams: [stream] });
  await within(ch.ensureSubscribed(), WAIT, 'broadcast subscribe');
  const base = messages(ch).length;
  await broadcast(EP.http, stream, { k: 'v', n: [1, 2], u: 'héllo ☃' });
  await broadcast(EP.http, stream, 'plain text héllo ☃');
  await broadcast(EP.http, stream, '{"a":1}');
  await messagesAtLeast(ch, base + 3, 'three broadcasts');
  await sleep(200);
  const entries = ch.log.filter((e) => e.ev === 'message').slice(base);
  const metas = entries.map((e) => e.meta);
  const offsets = metas.map((m) => m?.offset);
  return {
    received: entries.map((e) => e.message),
    metaStreams: [...new Set(metas.map((m) => (m ? m.stream === stream ? 'this stream' : m.stream : null)))],
    epochs: [...new Set(metas.map((m) => (m ? typeof m.epoch === 'string' && m.epoch.length > 0 ? 'string' : `bad:${JSON.stringify(m.epoch)}` : null)))],
    offsetsIncrease: offsets.every((o, i) => Number.isInteger(o) && (i === 0 || o > offsets[i - 1])),
  };
});

// 4. Rejection and confirmation of the same identifier for two users.
result.rejection = await section('rejection', async () => {
  const denied = channel(cable, 'ChatChannel', { room: 'secret' });
  const error = await within(
    denied.ensureSubscribed().then(() => 'subscribed', (err) => err?.name ?? String(err)),
    WAIT,
    'reject',
  );
  const admin = await newCable('admin');
  cables.push(admin);
  const allowed = channel(admin, 'ChatChannel', { room: 'secret' });
  await within(allowed.ensureSubscribed(), WAIT, 'admin subscribe');
  return { nonAdmin: error, nonAdminState: denied.state, admin: allowed.state };
});

// 5a. Plain protocol: a cut transport reconnects and resubscribes.
async function resubscribeAfterCut() {
  const stream = unique('cut');
  const ch = channel(cable, 'EchoChannel', { streams: [stream] });
  await within(ch.ensureSubscribed(), WAIT, 'cut subscribe');
  const socket = cable.transport.ws;
  socket.terminate();
  await until(() => cable.transport.ws && cable.transport.ws !== socket && cable.state === 'connected', WAIT, 'reconnect');
  await until(() => ch.log.filter((e) => e.ev === 'connect').length >= 2, WAIT, 'resubscribe');
  const base = messages(ch).length;
  await broadcast(EP.http, stream, { after: 'cut' });
  await messagesAtLeast(ch, base + 1, 'broadcast after cut');
  return {
    channel: labels(ch).filter((l) => !l.startsWith('message:"')),
    cable: cableEvents.slice(-2),
  };
}

// 5b. Extended protocol: 50 cuts while publishing; every n once, in order.
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
function post(path, body) {
  const data = Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${EP.http}${path}`,
      { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': data.length } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => (text += chunk));
        res.on('end', () => (res.statusCode >= 200 && res.statusCode < 300 ? resolve(text) : reject(new Error(`POST ${path}: ${res.statusCode} ${text}`))));
      },
    );
    req.setTimeout(5000, () => req.destroy(new Error(`POST ${path}: no answer in 5 s`)));
    req.on('error', reject);
    req.end(data);
  });
}

async function reliability() {
  const stream = unique('rel');
  const ch = channel(cable, 'EchoChannel', { streams: [stream] });
  await within(ch.ensureSubscribed(), WAIT, 'reliability subscribe');
  const ns = [];
  ch.on('message', (m) => {
    if (m && typeof m === 'object' && 'n' in m) ns.push(m.n);
  });
  const firstSocket = sockets.length;
  const eventsBefore = cableEvents.length;

  let publishing = true;
  let published = 0;
  const publisher = (async () => {
    while (publishing) {
      await post('/cable/broadcast', { stream, data: { n: published + 1 } });
      published += 1;
      await sleep(5);
    }
  })();

  let drops = 0;
  const t0 = Date.now();
  try {
    for (; drops < DROPS; drops += 1) {
      await until(() => cable.state === 'connected' && ch.state === 'connected', WAIT, `connected before cut ${drops + 1}`);
      const seen = ns.length;
      await until(() => ns.length > seen, WAIT, `messages flowing before cut ${drops + 1}`);
      await sleep(30 + Math.random() * 120);
      cable.transport.ws.terminate();
    }
    await until(() => cable.state === 'connected' && ch.state === 'connected', WAIT, 'connected after the last cut');
  } finally {
    publishing = false;
    await publisher.catch((err) => {
      throw new Error(`publisher: ${err.message}`);
    });
  }
  const cutSeconds = (Date.now() - t0) / 1000;
  await until(() => ns.length >= published, 10000, `all ${published} messages`).catch(() => {});
  await sleep(500);

  const seenCount = new Map();
  for (const n of ns) seenCount.set(n, (seenCount.get(n) ?? 0) + 1);
  let missing = 0;
  for (let n = 1; n <= published; n += 1) if (!seenCount.has(n)) missing += 1;
  const duplicates = [...seenCount.values()].filter((c) => c > 1).length;
  const firstOut = ns.findIndex((n, i) => n !== i + 1);

  const later = sockets.slice(firstSocket);
  const frames = later.flatMap((s) => s.frames);
  const welcomes = frames.filter((f) => f.type === 'welcome');
  // Messages a new socket got before its `confirm_history`: the backlog.
  let replayed = 0;
  for (const socket of later) {
    const fs = socket.frames;
    const end = fs.findIndex((f) => f.type === 'confirm_history' && f.identifier === ch.identifier);
    if (end === -1) continue;
    replayed += fs.slice(0, end).filter((f) => f.identifier === ch.identifier && f.message?.n !== undefined).length;
  }
  const events = cableEvents.slice(eventsBefore);
  return {
    drops,
    cutSeconds: Math.round(cutSeconds),
    published,
    received: ns.length,
    exactlyOnceInOrder: ns.length === published && firstOut === -1,
    missing,
    duplicates,
    firstOutOfOrder: firstOut === -1 ? null : { index: firstOut, n: ns[firstOut] },
    sockets: later.length,
    restoredWelcomes: welcomes.filter((w) => w.restored === true).length,
    restoredWithThisChannel: welcomes.filter((w) => Array.isArray(w.restored_ids) && w.restored_ids.includes(ch.identifier)).length,
    freshWelcomes: welcomes.filter((w) => w.restored !== true).length,
    restoredConnects: events.filter((e) => e.ev === 'connect' && e.restored).length,
    otherConnects: events.filter((e) => e.ev === 'connect' && !e.restored).length,
    channelRestores: ch.log.filter((e) => e.ev === 'connect' && e.restored).length,
    replayed,
    confirmHistory: frames.filter((f) => f.type === 'confirm_history' && f.identifier === ch.identifier).length,
    rejectHistory: frames.filter((f) => f.type === 'reject_history').length,
    disconnectFrames: frames.filter((f) => f.type === 'disconnect'),
  };
}

if (EXT) {
  result.reliability = await section('reliability', reliability);
} else {
  result.cut = await section('cut', resubscribeAfterCut);
}

result.frames = frameFacts();
for (const c of cables) c.disconnect();
agent.destroy();
result.seconds = Math.round((Date.now() - started) / 1000);
finish(result);
