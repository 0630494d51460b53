// ActionCable across processes on Redis: three example processes started
// with `--redis` (one redis-server, one `--cable-secret`), the official
// clients unmodified, in Node with npm `ws` (a recording subclass). Clients
// connect to node B with tokens signed by node A; every broadcast is
// `POST /cable/broadcast` on node A.
//
// a. `@rails/actioncable` on B, subscribed to ChatChannel (stream
//    `chat_<room>`): messages broadcast on A — a pipelined burst first
//    (the cable's first publications on that Redis), then one request at a
//    time, then another burst — arrive exactly once, in order (each phase
//    reported on its own as well).
// b. `@anycable/web` over `actioncable-v1-ext-json` on B, in a ChatChannel
//    room: messages from A arrive (`liveOnB`, on their own: the first can
//    be lost, see redis_cable.rs); its socket is cut (no close frame) and
//    held away while more are broadcast on A; it comes back on node C,
//    which restores the session B parked in Redis (restored, the same
//    subscription, no resubscribe: the client asks for history from its
//    stream position and C reads the missed messages from Redis); then cut
//    again and held away while more are broadcast, back on C, which now
//    holds the session itself: restored, history from Redis. Every message
//    exactly once, in order.
// c. A remote disconnect (`POST /cable/disconnect` on A) reaches the Rails
//    client of that user on B; another user's on C stays connected.
//
// Prints one JSON line for controllers-example/tests/redis_cable.rs.
// Usage: node cable-nodes.mjs ws://B ws://A ws://C
import { createRequire } from 'node:module';
import { createCable } from '@anycable/web';
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
  within,
} from './cable-common.mjs';

const require = createRequire(import.meta.url);
// The Rails client's connection monitor listens for `visibilitychange`.
globalThis.addEventListener ??= () => {};
globalThis.removeEventListener ??= () => {};
const AC = require('@rails/actioncable');

const B = endpoints(process.argv[2]);
const A = endpoints(process.argv[3]);
const C = endpoints(process.argv[4]);
const WAIT = 5000;
const PIPELINED = 200;
const ONE_BY_ONE = 50;
const started = Date.now();

/// The recording socket, also keeping what the client sent.
class SendRecordingWebSocket extends RecordingWebSocket {
  constructor(...args) {
    super(...args);
    this.sent = [];
  }

  send(data, ...rest) {
    this.sent.push(String(data));
    return super.send(data, ...rest);
  }

  get sentCommands() {
    return this.sent.map((text) => {
      try {
        return JSON.parse(text);
      } catch {
        return { unparsable: text };
      }
    });
  }
}
AC.adapters.WebSocket = SendRecordingWebSocket;
AC.logger.enabled = false;

/// Where `ns` (what arrived, in order) stands against 1..=published.
function delivery(ns, published) {
  const counts = new Map();
  for (const n of ns) counts.set(n, (counts.get(n) ?? 0) + 1);
  let missing = 0;
  for (let n = 1; n <= published; n += 1) if (!counts.has(n)) missing += 1;
  const duplicates = [...counts.values()].filter((c) => c > 1).length;
  const firstOut = ns.findIndex((n, i) => n !== i + 1);
  return {
    published,
    received: ns.length,
    missing,
    duplicates,
    firstOutOfOrder: firstOut === -1 ? null : { index: firstOut, n: ns[firstOut] },
    // Around the first one out of order, as it arrived.
    around: firstOut === -1 ? null : ns.slice(Math.max(0, firstOut - 3), firstOut + 8),
    exactlyOnceInOrder: ns.length === published && firstOut === -1,
    // Each later than the one before (whatever is missing).
    ascending: ns.every((n, i) => i === 0 || n > ns[i - 1]),
  };
}

/// `{n}` broadcast on A one request at a time, for n in `from..=to`.
async function broadcastOnA(stream, from, to) {
  for (let n = from; n <= to; n += 1) await broadcast(A.http, stream, { n });
}

/// `HOST:PORT` of a socket's URL and of a node.
const hostOf = (socket) => new URL(socket.url).host;
const nodeHost = (node) => new URL(node.ws).host;

const result = {};

// a. The Rails client on B, broadcasts on A.
result.rails = await section('rails', async () => {
  const room = unique('room');
  const stream = `chat_${room}`;
  const t = await token(A.http, 'rita');
  const first = sockets.length;
  const consumer = AC.createConsumer(`${B.ws}/cable?token=${encodeURIComponent(t)}`);
  const ns = [];
  const log = [];
  consumer.subscriptions.create({ channel: 'ChatChannel', room }, {
    connected() {
      log.push('connected');
    },
    disconnected() {
      log.push('disconnected');
    },
    rejected() {
      log.push('rejected');
    },
    received(data) {
      if (data && typeof data === 'object' && Number.isInteger(data.n)) ns.push(data.n);
      else log.push(`other:${JSON.stringify(data)}`);
    },
  });
  consumer.connect();
  await until(() => log.includes('connected') || log.includes('rejected'), WAIT, 'rails: confirmation');
  // At once after the confirmation: a pipelined burst (the cable's first
  // publications on this Redis), one by one, another pipelined burst.
  const burst = (from) => Array.from({ length: PIPELINED }, (_, i) => ({ n: from + i }));
  const firstBurstOk = await pipelinedBroadcasts(A, stream, burst(1));
  await broadcastOnA(stream, PIPELINED + 1, PIPELINED + ONE_BY_ONE);
  const secondBurstOk = await pipelinedBroadcasts(A, stream, burst(PIPELINED + ONE_BY_ONE + 1));
  const total = 2 * PIPELINED + ONE_BY_ONE;
  await until(() => ns.length >= total, 10000, `rails: ${total} messages`).catch(() => {});
  await sleep(300);
  const mine = sockets.slice(first);
  const frames = mine.flatMap((s) => s.frames);
  /// Each phase on its own: its messages as they arrived, renumbered.
  const phase = (from, count) =>
    delivery(ns.filter((n) => n >= from && n < from + count).map((n) => n - from + 1), count);
  const facts = {
    ...delivery(ns, total),
    firstBurst: phase(1, PIPELINED),
    oneByOne: phase(PIPELINED + 1, ONE_BY_ONE),
    secondBurst: phase(PIPELINED + ONE_BY_ONE + 1, PIPELINED),
    pipelinedOk: firstBurstOk + secondBurstOk,
    log: [...log],
    sockets: mine.length,
    socketHosts: [...new Set(mine.map(hostOf))].map((h) => (h === nodeHost(B) ? 'B' : h)),
    confirmations: frames.filter((f) => f.type === 'confirm_subscription').length,
    disconnectFrames: frames.filter((f) => f.type === 'disconnect'),
  };
  consumer.disconnect();
  return facts;
});

// b. `@anycable/web`, extended protocol: on B, then away, then on C.
result.anycable = await section('anycable', async () => {
  const room = unique('ext');
  const stream = `chat_${room}`;
  const t = await token(A.http, 'ada');
  const firstSocket = sockets.length;
  // Before each (re)connection: wait while the test holds the client away,
  // and go where `target` says — same path, token and `sid`, other node.
  let target = B;
  let hold = null;
  let held = false;
  const transportConfigurator = async (transport) => {
    if (hold) {
      held = true;
      await hold;
      held = false;
    }
    const url = new URL(transport.url);
    url.host = nodeHost(target);
    transport.setURL(url.toString());
  };
  const cable = createCable(`${B.ws}/cable?token=${encodeURIComponent(t)}`, {
    websocketImplementation: SendRecordingWebSocket,
    protocol: 'actioncable-v1-ext-json',
    logLevel: 'error',
    reconnectStrategy: () => 20 + Math.random() * 60,
    transportConfigurator,
  });
  const cableEvents = [];
  cable.on('connect', (ev) => cableEvents.push(`connect(reconnect=${ev.reconnect},restored=${ev.restored})`));
  cable.on('disconnect', (err) => cableEvents.push(`disconnect(${err?.reason ?? ''})`));
  cable.on('close', (err) => cableEvents.push(`close(${err?.reason ?? ''})`));
  await within(cable.connect(), WAIT, 'anycable: connect');

  const ch = cable.subscribeTo('ChatChannel', { room });
  const ns = [];
  const metas = [];
  const channelEvents = [];
  ch.on('message', (m, meta) => {
    metas.push(meta ?? null);
    if (m && typeof m === 'object' && Number.isInteger(m.n)) ns.push(m.n);
    else channelEvents.push(`other:${JSON.stringify(m)}`);
  });
  ch.on('connect', (ev) => channelEvents.push(`connect(reconnect=${ev.reconnect},restored=${ev.restored})`));
  ch.on('disconnect', (err) => channelEvents.push(`disconnect(${err?.reason ?? ''})`));
  ch.on('close', (err) => channelEvents.push(`close(${err?.name ?? ''})`));
  await within(ch.ensureSubscribed(), WAIT, 'anycable: subscribe');

  const connected = (what) =>
    until(() => cable.state === 'connected' && ch.state === 'connected', WAIT, what);
  const got = (n, what) => until(() => ns.includes(n), 10000, what);
  /// The messages `from..=to` as they arrived, renumbered from 1.
  const range = (from, to) =>
    delivery(ns.filter((n) => n >= from && n <= to).map((n) => n - from + 1), to - from + 1);

  /// Cuts the socket (no close frame), holds the client away while
  /// `during()` runs, then lets it reconnect to `to`: the new socket.
  async function away(to, during) {
    let release;
    hold = new Promise((resolve) => (release = resolve));
    const old = cable.transport.ws;
    old.terminate();
    await until(() => held, WAIT, 'the client waiting to reconnect');
    await during();
    // A broadcast is answered before Redis placed it: let them land, so
    // that what was missed comes from the history.
    await sleep(200);
    target = to;
    hold = null;
    release();
    await until(() => cable.transport.ws !== old && cable.transport.ws?.readyState === 1, WAIT, 'a new socket');
    return cable.transport.ws;
  }

  /// What the server told one socket and what the client asked it.
  function socketFacts(socket, node) {
    const frames = socket.frames;
    const welcome = frames.find((f) => f.type === 'welcome') ?? null;
    const ours = (f) => f.identifier === ch.identifier;
    const confirmAt = frames.findIndex((f) => ours(f) && f.type === 'confirm_history');
    const commands = socket.sentCommands.filter((c) => c.identifier === ch.identifier);
    return {
      node: hostOf(socket) === nodeHost(node) ? 'ok' : hostOf(socket),
      welcome: welcome && {
        sid: typeof welcome.sid === 'string' && welcome.sid.length > 0,
        restored: welcome.restored ?? false,
        restoredThisChannel: Array.isArray(welcome.restored_ids) && welcome.restored_ids.includes(ch.identifier),
      },
      // What the client asked for this channel, and what history it sent.
      commands: commands.map((c) => c.command),
      historyStreams: commands
        .filter((c) => c.history)
        .map((c) => Object.keys(c.history.streams ?? {}).map((s) => (s === stream ? 'this stream' : s))),
      replayed: confirmAt === -1 ? null : frames.slice(0, confirmAt).filter((f) => ours(f) && f.message?.n !== undefined).length,
      confirmSubscription: frames.filter((f) => ours(f) && f.type === 'confirm_subscription').length,
      confirmHistory: frames.filter((f) => ours(f) && f.type === 'confirm_history').length,
      rejectHistory: frames.filter((f) => f.type === 'reject_history').length,
      disconnectFrames: frames.filter((f) => f.type === 'disconnect'),
    };
  }

  const onB = cable.transport.ws;
  const first = { node: hostOf(onB) === nodeHost(B) ? 'ok' : hostOf(onB) };
  // 1. Live on B, from A.
  // (Bounded, and not fatal: see `onB` in redis_cable.rs.)
  await broadcastOnA(stream, 1, 20);
  await until(() => ns.length >= 20, 3000, 'anycable: 20 live messages on B').catch(() => {});
  const liveOnB = range(1, 20);

  // 2. Away while 21..=40 are broadcast on A; back on C, which restores
  //    B's session from Redis; then 41..=50 live.
  const events0 = cableEvents.length;
  const onC = await away(C, () => broadcastOnA(stream, 21, 40));
  await connected('anycable: connected on C');
  await got(40, 'anycable: the 20 missed messages on C');
  await broadcastOnA(stream, 41, 50);
  await got(50, 'anycable: 10 live messages on C');
  await sleep(300);
  const toC = {
    ...socketFacts(onC, C),
    cable: cableEvents.slice(events0),
    // What was missed on B (21..=40) and the live ones after (41..=50).
    delivery: range(21, 50),
  };

  // 3. Away again while 51..=70 are broadcast; back on C, which now holds
  //    the session; then 71..=80 live.
  const events1 = cableEvents.length;
  const againC = await away(C, () => broadcastOnA(stream, 51, 70));
  await connected('anycable: connected on C again');
  await got(70, 'anycable: the 20 missed messages on C again');
  await broadcastOnA(stream, 71, 80);
  await got(80, 'anycable: 10 live messages on C again').catch(() => {});
  await sleep(300);
  const sameNode = {
    ...socketFacts(againC, C),
    cable: cableEvents.slice(events1),
    delivery: range(51, 80),
  };

  // Stream positions on every message, live or replayed, from B and C:
  // this stream, one epoch (Redis's), rising offsets.
  const positions = {
    streams: [...new Set(metas.map((m) => (m?.stream === stream ? 'this stream' : m?.stream ?? null)))],
    epochs: new Set(metas.map((m) => m?.epoch)).size,
    offsetsRise: metas.every((m, i) => Number.isInteger(m?.offset) && (i === 0 || m.offset > metas[i - 1].offset)),
  };
  const facts = {
    first,
    liveOnB,
    positions,
    toC,
    sameNode,
    channel: [...channelEvents],
    sockets: sockets.length - firstSocket,
    // After the first 20: from B to C, and on C again.
    delivery: range(21, 80),
  };
  cable.disconnect();
  return facts;
});

// c. A remote disconnect asked of A reaches a Rails client on B (the
//    cable on A tells the others through Redis); one on C stays.
result.remote = await section('remote', async () => {
  const first = sockets.length;
  const open = async (node, user) => {
    const t = await token(A.http, user);
    const consumer = AC.createConsumer(`${node.ws}/cable?token=${encodeURIComponent(t)}`);
    const log = [];
    consumer.subscriptions.create({ channel: 'ChatChannel', room: unique('remote') }, {
      connected: () => log.push('connected'),
      disconnected: (arg) => log.push(`disconnected(${arg?.willAttemptReconnect})`),
      rejected: () => log.push('rejected'),
    });
    consumer.connect();
    await until(() => log.length > 0, WAIT, `remote: ${user} confirmation`);
    return { consumer, log };
  };
  const rory = await open(B, 'rory');
  const sam = await open(C, 'sam');
  const answer = JSON.parse(await remoteDisconnect(A.http, 'rory', false));
  await until(() => rory.log.some((l) => l.startsWith('disconnected')), WAIT, 'remote: rory disconnected');
  await sleep(300);
  const frames = sockets.slice(first).flatMap((s) => s.frames);
  const facts = {
    answerOnA: answer,
    rory: [...rory.log],
    sam: [...sam.log],
    samOpen: sam.consumer.connection.isOpen(),
    disconnectFrames: frames.filter((f) => f.type === 'disconnect'),
  };
  rory.consumer.disconnect();
  sam.consumer.disconnect();
  return facts;
});

result.frames = frameFacts();
result.seconds = Math.round((Date.now() - started) / 1000);
finish(result);
