// The iii/Motia browser client, `@motiadev/stream-client-browser` 0.2.2,
// unmodified in Node (npm `ws` as `globalThis.WebSocket`; its extensionless
// ESM loaded through `state-motia-hooks.mjs`), against the example app's
// `/iii?user=U` endpoint and `todos/<U>` group, writes going over the
// state HTTP API. The socket runs through a proxy in this script that can
// cut it. Sections:
//  * sync — a group subscription starts with the todo made before it;
//  * crud — creates, a PATCH and a DELETE reach the group;
//  * events — custom events (`POST …/events`) reach `onEvent`;
//  * burst — five PATCHes to one item sent at once on five connections,
//    each appending its number and incrementing a counter: the item
//    subscription's change listener must see five states, each the last
//    plus one number;
//  * unauthorized — a join to another user's group: the frame it gets,
//    and what the client does with it;
//  * noUser — a Stream without a user (the upgrade answers 401);
//  * disconnects — the proxy cuts the socket CUTS times while a writer
//    creates, updates and deletes; the client reconnects after its 2 s,
//    re-joins with fresh syncs, and ends equal to `GET /state/todos/U`.
// Prints one JSON line. Usage: node state-motia.mjs http://HOST:PORT [cuts]
import { register } from 'node:module';
import WebSocket from 'ws';
import {
  atOnce,
  call,
  canon,
  canonById,
  createTodo,
  cuttingProxy,
  deadline,
  finish,
  serverGroup,
  sleep,
  uniqueUser,
  until,
} from './state-common.mjs';

const [base, cutsArg] = process.argv.slice(2);
if (!base) {
  console.error('usage: node state-motia.mjs http://HOST:PORT [cuts]');
  process.exit(2);
}
const CUTS = Number(cutsArg ?? 4);
const port = Number(new URL(base).port);
deadline(50_000, 'state-motia.mjs');

/// Every socket the client opened, in order, with the server's messages
/// (parsed) and the errors `ws` reported. A browser's WebSocket never
/// throws for a failed connection; npm `ws` throws an `error` event that
/// has no listener, so this shim listens (the client only listens to
/// open, message and close).
const sockets = [];
class RecordingWebSocket extends WebSocket {
  constructor(...args) {
    super(...args);
    this.frames = [];
    this.errors = [];
    this.opened = false;
    sockets.push(this);
    this.on('open', () => {
      this.opened = true;
    });
    this.on('message', (data) => this.frames.push(JSON.parse(data.toString('utf8'))));
    this.on('error', (error) => this.errors.push(error.message));
  }
}
globalThis.WebSocket = RecordingWebSocket;
register('./state-motia-hooks.mjs', import.meta.url);
const { Stream } = await import('@motiadev/stream-client-browser');

const user = uniqueUser('motia');
const other = `${user}-other`;
const proxy = await cuttingProxy(port);
const allFrames = () => sockets.flatMap((s) => s.frames);
const result = { user };

// sync: a todo made before subscribing is in the first state.
const first = await createTodo(base, user, 'made before the subscription');
const stream = new Stream(`ws://127.0.0.1:${proxy.port}/iii?user=${user}`);
const group = stream.subscribeGroup('todos', user);
const groupStates = [];
group.addChangeListener((state) => groupStates.push(state));
const groupHas = (id, check = () => true) => (group.getState() ?? []).some((t) => t.id === id && check(t));
await until(() => groupHas(first), 5000, 'first sync');
result.sync = { state: group.getState(), changes: groupStates.length };

// An item subscription on the same connection.
const item = stream.subscribeItem('todos', user, first);
const itemStates = [];
item.addChangeListener((state) => itemStates.push(state));
await until(() => item.getState()?.id === first, 5000, 'item sync');
result.itemSync = item.getState();

// crud
{
  const a = await createTodo(base, user, 'second');
  const b = await createTodo(base, user, 'third ☃');
  await until(() => groupHas(a) && groupHas(b), 5000, 'creates');
  await call(base, 'PATCH', `/state/todos/${user}/${a}`, { ops: [{ op: 'set', path: ['completed'], value: true }] });
  await until(() => groupHas(a, (t) => t.completed === true), 5000, 'update');
  await call(base, 'DELETE', `/state/todos/${user}/${b}`);
  await until(() => !groupHas(b), 5000, 'delete');
  const server = await serverGroup(base, user);
  result.crud = {
    titles: group.getState().map((t) => t.title),
    completed: group.getState().map((t) => t.completed),
    equalsServer: canonById(group.getState()) === server.text,
  };
}

// events: one to the whole group, one to the item.
{
  const groupEvents = [];
  const itemEvents = [];
  group.onEvent('ping', (data) => groupEvents.push(data));
  item.onEvent('ping', (data) => itemEvents.push(data));
  await call(base, 'POST', `/state/todos/${user}/events`, { type: 'ping', data: { n: 1 } });
  await until(() => groupEvents.length >= 1, 5000, 'group event');
  await call(base, 'POST', `/state/todos/${user}/events`, { type: 'ping', data: { n: 2, s: 'héllo' }, item: first });
  await until(() => itemEvents.length >= 1, 5000, 'item event');
  // Room for any duplicate to arrive.
  await sleep(300);
  const eventFrames = allFrames().filter((f) => f.event?.type === 'event');
  result.events = {
    group: groupEvents,
    item: itemEvents,
    frames: eventFrames.map((f) => ({ id: f.id ?? null, event: f.event.event })),
  };
}

// burst: five updates to one item at once.
{
  const before = itemStates.length;
  const framesBefore = allFrames().length;
  const ops = (k) => ({
    ops: [
      { op: 'append', path: ['log'], value: k },
      { op: 'increment', path: ['n'], by: 1 },
    ],
  });
  const { statuses, spanMs } = await atOnce(
    port,
    [1, 2, 3, 4, 5].map((k) => ({ method: 'PATCH', path: `/state/todos/${user}/${first}`, body: ops(k) })),
  );
  await until(() => item.getState()?.n === 5, 5000, 'burst');
  await sleep(200);
  const final = item.getState();
  const seen = itemStates.slice(before);
  const server = await call(base, 'GET', `/state/todos/${user}/${first}`);
  // The item's update frames: one from each subscription per update
  // (both name the item), with the same timestamp.
  const updates = allFrames()
    .slice(framesBefore)
    .filter((f) => f.id === first && f.event.type === 'update');
  const timestamps = [...new Set(updates.map((f) => f.timestamp))];
  const log = final?.log ?? [];
  result.burst = {
    statuses,
    spanMs: Math.round(spanMs * 1000) / 1000,
    n: final?.n,
    log: [...log].sort(),
    // Each state the listener saw: the log so far.
    seen: seen.map((s) => s.log),
    prefixes: seen.every((s, i) => canon(s.log) === canon(log.slice(0, i + 1))),
    equalsServer: canon(final) === canon(server),
    groupEqualsItem: canon(group.getState().find((t) => t.id === first)) === canon(final),
    frames: updates.length,
    timestamps: timestamps.length,
    timestampsIncrease: timestamps.every((t, i) => i === 0 || t > timestamps[i - 1]),
    timestampSpread: timestamps.length ? timestamps.at(-1) - timestamps[0] : null,
  };
}

// unauthorized: another user's group (which holds a todo).
const otherSub = stream.subscribeGroup('todos', other);
const otherStates = [];
otherSub.addChangeListener((state) => otherStates.push(state));
const otherFrames = () => allFrames().filter((f) => f.groupId === other);
{
  await createTodo(base, other, 'not yours');
  await until(() => otherFrames().length >= 1, 5000, 'refusal');
  // Later writes to that group must not reach this connection either.
  await createTodo(base, other, 'still not yours');
  await sleep(300);
  result.unauthorized = {
    frames: otherFrames().map((f) => ({ type: f.type, streamName: f.streamName, groupId: f.groupId === other, event: f.event, hasTimestamp: Number.isInteger(f.timestamp) })),
    state: otherSub.getState(),
    changes: otherStates.length,
    socketOpen: sockets.at(-1).readyState === WebSocket.OPEN,
  };
}

// noUser: the upgrade is refused; the client keeps retrying every 2 s.
{
  const count = sockets.length;
  const refused = new Stream(`ws://127.0.0.1:${port}/iii`);
  refused.subscribeGroup('todos', user);
  const socket = sockets[count];
  await until(() => socket.readyState === WebSocket.CLOSED, 5000, 'refused upgrade');
  result.noUser = { opened: socket.opened, errors: socket.errors, frames: socket.frames.length };
  // The client's close() does not stop its 2 s reconnect timer (it removes
  // listeners it never added); only the process's exit ends it.
  refused.close();
}

// disconnects: cut CUTS times while writing; then equal to the server.
{
  const mine = () => sockets.filter((s) => s.url.includes(`:${proxy.port}/`));
  const groupSyncs = () =>
    mine().flatMap((s) => s.frames).filter((f) => f.groupId === user && f.id === undefined && f.event.type === 'sync').length;
  let writing = true;
  let writes = 0;
  const live = [];
  const writer = (async () => {
    for (let i = 0; writing; i += 1) {
      const r = i % 4;
      if (r === 0) live.push(await createTodo(base, user, `w${i}`));
      else if (r === 1) await call(base, 'PATCH', `/state/todos/${user}/${first}`, { ops: [{ op: 'increment', path: ['edits'], by: 1 }] });
      else if (r === 2 && live.length > 0) await call(base, 'PATCH', `/state/todos/${user}/${live.at(-1)}`, { ops: [{ op: 'set', path: ['completed'], value: true }] });
      else if (live.length > 1) await call(base, 'DELETE', `/state/todos/${user}/${live.shift()}`);
      writes += 1;
      await sleep(5);
    }
  })();
  const cuts = [];
  for (let c = 0; c < CUTS; c += 1) {
    await sleep(150 + 100 * c);
    const opensBefore = mine().length;
    const syncsBefore = groupSyncs();
    const t = Date.now();
    cuts.push({ severed: proxy.cut() });
    await until(() => mine().length > opensBefore && groupSyncs() > syncsBefore, 8000, `reconnect ${c + 1}`);
    cuts.at(-1).backMs = Date.now() - t;
  }
  await sleep(300);
  writing = false;
  await writer;
  // Converged: the client's group and item equal the server's.
  let server;
  let equal = false;
  const stop = Date.now() + 5000;
  while (!equal && Date.now() < stop) {
    server = await serverGroup(base, user);
    equal = canonById(group.getState()) === server.text;
    if (!equal) await sleep(20);
  }
  await sleep(300);
  server = await serverGroup(base, user);
  const serverItem = await call(base, 'GET', `/state/todos/${user}/${first}`);
  result.disconnects = {
    cuts: cuts.length,
    severed: cuts.map((c) => c.severed),
    backMs: cuts.map((c) => c.backMs),
    sockets: mine().length,
    opened: mine().filter((s) => s.opened).length,
    groupSyncs: groupSyncs(),
    writes,
    items: group.getState().length,
    equal: canonById(group.getState()) === server.text,
    itemEqual: canon(item.getState()) === canon(serverItem),
    // The refused join is made again on every reconnect, and refused again.
    unauthorizedFrames: otherFrames().filter((f) => f.event.type === 'unauthorized').length,
    otherLeaked: otherFrames().some((f) => f.event.type !== 'unauthorized'),
    otherChanges: otherStates.length,
  };
  if (!result.disconnects.equal) {
    result.disconnects.client = canonById(group.getState());
    result.disconnects.server = server.text;
  }
}

proxy.close();
finish(result);
