// What the cable scripts (cable-*.mjs) share: bounded waits, the example
// app's cable HTTP endpoints (tokens, broadcasts, remote disconnects), a
// `ws` subclass that records every frame the server sends, and the one
// JSON line each script prints. Node only (the Chromium scenario runs
// in-page and has its own copies of the few helpers it needs).
import net from 'node:net';
import WebSocket from 'ws';

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/// Resolves once `check()` is truthy (polled every 5 ms); rejects with
/// `what` after `ms`.
export async function until(check, ms, what) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(5);
  }
}

export function within(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/// Runs one section of a scenario: its result, or `{error}` so that the
/// other sections still run and the Rust assertion shows what failed.
export async function section(name, fn) {
  try {
    return await fn();
  } catch (error) {
    console.error(`${name}: ${error?.stack ?? error}`);
    return { error: `${name}: ${error?.message ?? error}` };
  }
}

/// Names no other run uses, for rooms and streams.
const RUN = `${process.pid}-${Date.now()}`;
export const unique = (prefix) => `${prefix}-${RUN}`;

/// `ws://HOST:PORT` (any path ignored) → `{ ws, http, host, port }`.
export function endpoints(arg) {
  if (!arg) {
    console.error('usage: node <script> ws://HOST:PORT');
    process.exit(2);
  }
  const url = new URL(arg);
  return {
    ws: `ws://${url.host}`,
    http: `http://${url.host}`,
    host: url.hostname,
    port: Number(url.port),
  };
}

/// The app's signed token for `user` (`GET /cable/token?user=`).
export async function token(http, user) {
  const res = await fetch(`${http}/cable/token?user=${encodeURIComponent(user)}`);
  const text = await res.text();
  if (res.status !== 200) throw new Error(`token for ${user}: ${res.status} ${text}`);
  return text.trim();
}

export async function postJson(http, path, body) {
  const res = await fetch(`${http}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status < 200 || res.status > 299) throw new Error(`POST ${path}: ${res.status} ${text}`);
  return text;
}

/// `POST /cable/broadcast {stream, data}`.
export const broadcast = (http, stream, data) => postJson(http, '/cable/broadcast', { stream, data });

/// `POST /cable/disconnect {user, reconnect}`.
export const remoteDisconnect = (http, user, reconnect) =>
  postJson(http, '/cable/disconnect', { user, reconnect });

/// Broadcasts `datas` to `stream` in this order: every request pipelined
/// on one HTTP/1.1 connection (the server answers them one after another,
/// so they are published in order) — 10,000 in about a second. Resolves
/// to the number of 2xx answers once all are in.
export function pipelinedBroadcasts({ host, port }, stream, datas, ms = 30000) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, host);
    let pending = '';
    let answers = 0;
    let ok = 0;
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`pipelined broadcasts: ${answers}/${datas.length} answers within ${ms} ms`));
    }, ms);
    sock.setEncoding('latin1');
    sock.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    sock.on('connect', () => {
      const requests = datas.map((data) => {
        const body = Buffer.from(JSON.stringify({ stream, data }), 'utf8');
        return `POST /cable/broadcast HTTP/1.1\r\nHost: ${host}:${port}\r\n` +
          `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n` +
          body.toString('latin1');
      });
      sock.write(requests.join(''), 'latin1');
    });
    sock.on('data', (chunk) => {
      // Count status lines; keep a tail in case one is split.
      pending += chunk;
      const re = /HTTP\/1\.1 (\d{3})/g;
      let match;
      let last = 0;
      while ((match = re.exec(pending)) !== null) {
        answers += 1;
        if (match[1].startsWith('2')) ok += 1;
        last = re.lastIndex;
      }
      pending = pending.slice(Math.max(last, pending.length - 16));
      if (answers >= datas.length) {
        clearTimeout(timer);
        sock.destroy();
        resolve(ok);
      }
    });
  });
}

/// Every socket a `RecordingWebSocket` opened, in order; each has `raw`:
/// the text of every message the server sent, as received.
export const sockets = [];

/// npm `ws`, recording what the server sends (listeners added here run
/// before the client's own `onmessage`). The static `CONNECTING`/`OPEN`/…
/// are inherited, which the Rails client's `getState()` enumerates.
export class RecordingWebSocket extends WebSocket {
  constructor(...args) {
    super(...args);
    this.raw = [];
    this.closeCode = null;
    sockets.push(this);
    this.on('message', (data, isBinary) => {
      this.raw.push(isBinary ? { binary: data.toString('hex') } : data.toString('utf8'));
    });
    this.on('close', (code) => {
      this.closeCode = code;
    });
  }

  /// The server's messages, parsed (`{unparsable: text}` if not JSON).
  get frames() {
    return this.raw.map((text) => {
      if (typeof text !== 'string') return { unparsable: text };
      try {
        return JSON.parse(text);
      } catch {
        return { unparsable: text };
      }
    });
  }
}

/// Facts about every frame any recording socket received: all JSON
/// objects; pings with integer seconds, increasing per socket and close to
/// this machine's clock; every `disconnect` with a boolean `reconnect`.
export function frameFacts() {
  let frames = 0;
  let notObjects = [];
  let pings = 0;
  let pingsBad = [];
  let disconnects = 0;
  let disconnectsBad = [];
  const now = Date.now() / 1000;
  for (const socket of sockets) {
    let lastPing = null;
    for (const frame of socket.frames) {
      frames += 1;
      if (frame === null || typeof frame !== 'object' || Array.isArray(frame) || 'unparsable' in frame) {
        notObjects.push(frame);
        continue;
      }
      if (frame.type === 'ping') {
        pings += 1;
        const m = frame.message;
        if (!Number.isInteger(m) || Math.abs(m - now) > 120 || (lastPing !== null && m <= lastPing)) {
          pingsBad.push({ message: m, previous: lastPing });
        }
        lastPing = m;
      }
      if (frame.type === 'disconnect') {
        disconnects += 1;
        if (typeof frame.reconnect !== 'boolean' || typeof frame.reason !== 'string') {
          disconnectsBad.push(frame);
        }
      }
    }
  }
  return {
    frames,
    notObjects: notObjects.slice(0, 5),
    pings,
    pingsBad: pingsBad.slice(0, 5),
    disconnects,
    disconnectsBad: disconnectsBad.slice(0, 5),
  };
}

/// Prints the one JSON line and exits once stdout has it.
export function finish(result) {
  process.stdout.write(`${JSON.stringify(result)}\n`, () => process.exit(0));
}
