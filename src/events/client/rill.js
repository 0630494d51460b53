// rill's named-event stream client: an ES module with no dependencies and
// no build step. Runs in browsers, and in Node >= 20 with the npm `ws`
// package assigned to globalThis.WebSocket (or passed as options.WebSocket).
//
//   import { connect } from "/rill.js";
//   const s = connect("/ws");
//   s.on("tick", (tick) => console.log(tick.price));
//   s.send("stream-start");
//   s.subscribe("prices", (data, meta) => console.log(meta.id, data));
//   s.watch("todos", "ann", (items, change) => render(items));
//
// Wire format: text messages of JSON objects, one per line (see rill's
// docs/websocket.md). The server keeps the order per connection; this
// client keeps it too: sends made while the socket is down are queued and
// go out, in order, once it is back, after the channel subscriptions.

const OPEN = 1;

/** Connection states, in the order a connection goes through them. */
export const STATES = Object.freeze(["connecting", "open", "reconnecting", "closed"]);

/**
 * Opens a stream to `url` (ws:, wss:, http:, https:, or a path relative to
 * the page) and keeps it open: reconnects with jittered exponential back-off
 * until `close()` is called, or the server closes with 1000 or 1008.
 */
export function connect(url, options = {}) {
  return new RillStream(url, options);
}

class RillStream {
  constructor(url, options) {
    this._url = resolveUrl(url);
    this._WebSocket = options.WebSocket || globalThis.WebSocket;
    if (typeof this._WebSocket !== "function") {
      throw new Error("rill: no WebSocket implementation (in Node: globalThis.WebSocket = (await import('ws')).WebSocket)");
    }
    this._protocols = options.protocols;
    this._minDelay = options.minReconnectDelay ?? 250;
    this._maxDelay = options.maxReconnectDelay ?? 10000;
    this._maxQueue = options.maxQueue ?? 10000;
    this._onError = options.onError || ((error) => console.warn("rill:", error));
    this._onGap = options.onGap || null;
    this._listeners = new Map();
    this._stateListeners = new Set();
    this._channels = new Map();
    this._watches = new Map();
    this._queue = [];
    this._attempt = 0;
    this._timer = null;
    this._ws = null;
    this._state = "connecting";
    this._open();
  }

  /** "connecting", "open", "reconnecting" or "closed". */
  get state() {
    return this._state;
  }

  /** Calls `cb(state, previous)` on every change of state; returns a function that stops it. */
  onState(cb) {
    this._stateListeners.add(cb);
    return () => this._stateListeners.delete(cb);
  }

  /** Resolves once the stream is open (at once when it is). */
  opened() {
    if (this._state === "open") return Promise.resolve();
    return new Promise((resolve, reject) => {
      const stop = this.onState((state) => {
        if (state === "open") {
          stop();
          resolve();
        } else if (state === "closed") {
          stop();
          reject(new Error("rill: stream closed"));
        }
      });
    });
  }

  /** Calls `cb(data, name)` for every event `name` the server sends. */
  on(name, cb) {
    let set = this._listeners.get(name);
    if (!set) this._listeners.set(name, (set = new Set()));
    set.add(cb);
    return this;
  }

  /** Calls `cb(data, name)` for the next event `name`, once. */
  once(name, cb) {
    const wrapper = (data, n) => {
      this.off(name, wrapper);
      cb(data, n);
    };
    wrapper.original = cb;
    return this.on(name, wrapper);
  }

  /** Removes listener `cb` of `name`, or all of them when `cb` is omitted. */
  off(name, cb) {
    const set = this._listeners.get(name);
    if (!set) return this;
    if (cb === undefined) {
      this._listeners.delete(name);
      return this;
    }
    for (const listener of set) {
      if (listener === cb || listener.original === cb) set.delete(listener);
    }
    if (set.size === 0) this._listeners.delete(name);
    return this;
  }

  /**
   * Sends event `name` with `data` (JSON; omit it for none). Fire-and-forget:
   * while the socket is down it is queued, and sent once it is back. Returns
   * false when it was not taken (the stream is closed, or the queue is full).
   */
  send(name, data) {
    const message = data === undefined ? { event: name } : { event: name, data };
    return this._sendLine(JSON.stringify(message));
  }

  /**
   * Subscribes to a hub channel: `cb(data, meta)` for each message, with
   * `meta.id`, `meta.event` and `meta.channel`. After a reconnect the
   * channel resumes from the last id received: no gap, no duplicate — or,
   * when the server cannot continue, `options.onReset(channel)` and the
   * history it still has. `options.since` starts after an id ("0": the
   * whole history); `options.presence(change)` receives joins and leaves;
   * `options.onSubscribed(channel)` is called each time the server has
   * joined the channel (after every reconnect too).
   * Returns `{ channel, lastId, unsubscribe() }`.
   */
  subscribe(channel, cb, options = {}) {
    const existing = this._channels.get(channel);
    if (existing) {
      existing.callbacks.add(cb);
      return existing.handle(cb);
    }
    const sub = {
      channel,
      callbacks: new Set([cb]),
      lastId: options.since ?? null,
      presence: options.presence || null,
      onReset: options.onReset || null,
      onSubscribed: options.onSubscribed || null,
      onError: options.onError || null,
      handle: null,
    };
    sub.handle = (callback) => ({
      channel,
      get lastId() {
        return sub.lastId;
      },
      unsubscribe: () => {
        sub.callbacks.delete(callback);
        if (sub.callbacks.size === 0) this.unsubscribe(channel);
      },
    });
    this._channels.set(channel, sub);
    if (this._isOpen()) this._ws.send(subscribeLine(sub));
    return sub.handle(cb);
  }

  /**
   * Watches a state group (or one item: `options.item`): `cb(items, change)`
   * after the snapshot (`change.type === "sync"`) and after every change
   * (`{id, type: "create"|"update"|"delete"|"event", data, ts}`), `items`
   * being an object item id → value. After a reconnect the watch resumes
   * from the last revision: every change once, in order — or, when the
   * server cannot continue, `options.onReset()` and a fresh snapshot.
   * `options.since` starts after a revision (`<epoch>.<rev>`).
   * Returns `{ key, rev, items, unwatch() }`.
   */
  watch(stream, group, cb, options = {}) {
    const key = options.item === undefined ? `${stream}/${group}` : `${stream}/${group}/${options.item}`;
    const w = {
      key,
      cb,
      rev: options.since ?? null,
      items: {},
      onReset: options.onReset || null,
      onError: options.onError || null,
    };
    this._watches.set(key, w);
    if (this._isOpen()) this._ws.send(watchLine(w));
    return {
      key,
      get rev() {
        return w.rev;
      },
      get items() {
        return w.items;
      },
      unwatch: () => this.unwatch(key),
    };
  }

  /** Stops a watch (by the `key` `watch` returned). */
  unwatch(key) {
    if (!this._watches.delete(key)) return;
    if (this._isOpen()) this._ws.send(JSON.stringify({ unwatch: key }));
  }

  /** Leaves a hub channel (every callback of it). */
  unsubscribe(channel) {
    if (!this._channels.delete(channel)) return;
    if (this._isOpen()) this._ws.send(JSON.stringify({ unsubscribe: channel }));
  }

  /** Closes the stream for good: no reconnect; queued sends are dropped. */
  close() {
    if (this._state === "closed") return;
    clearTimeout(this._timer);
    this._timer = null;
    this._queue = [];
    const ws = this._ws;
    this._ws = null;
    this._setState("closed");
    if (ws) {
      detach(ws);
      try {
        ws.close(1000);
      } catch (_) {
        // Closing a socket that never opened may throw; it is gone either way.
      }
    }
  }

  // --- internals ---

  _isOpen() {
    return this._ws !== null && this._ws.readyState === OPEN && this._state === "open";
  }

  _sendLine(line) {
    if (this._state === "closed") return false;
    if (this._isOpen()) {
      this._ws.send(line);
      return true;
    }
    if (this._queue.length >= this._maxQueue) return false;
    this._queue.push(line);
    return true;
  }

  _open() {
    let ws;
    try {
      ws = this._protocols ? new this._WebSocket(this._url, this._protocols) : new this._WebSocket(this._url);
    } catch (error) {
      this._onError(error);
      this._retry();
      return;
    }
    this._ws = ws;
    ws.onopen = () => {
      this._attempt = 0;
      // Subscriptions first (each from its last id), then what was queued,
      // in one message.
      const lines = [];
      for (const sub of this._channels.values()) lines.push(subscribeLine(sub));
      for (const w of this._watches.values()) lines.push(watchLine(w));
      lines.push(...this._queue);
      this._queue = [];
      this._setState("open");
      if (lines.length > 0) ws.send(lines.join("\n"));
    };
    ws.onmessage = (event) => this._receive(event.data);
    ws.onerror = () => {
      // A close event always follows; reconnecting is decided there.
    };
    ws.onclose = (event) => {
      detach(ws);
      if (this._ws !== ws) return;
      this._ws = null;
      if (this._state === "closed") return;
      if (event.code === 1000 || event.code === 1008) {
        this._queue = [];
        this._setState("closed");
        return;
      }
      this._retry();
    };
  }

  _retry() {
    if (this._state === "closed") return;
    this._setState("reconnecting");
    // Full jitter: a uniform delay up to an exponentially growing cap, so
    // clients dropped together do not come back together.
    const cap = Math.min(this._maxDelay, this._minDelay * 2 ** Math.min(this._attempt, 16));
    this._attempt += 1;
    const delay = this._minDelay / 2 + Math.random() * cap;
    this._timer = setTimeout(() => {
      this._timer = null;
      if (this._state !== "closed") this._open();
    }, delay);
  }

  _setState(state) {
    const previous = this._state;
    if (previous === state) return;
    this._state = state;
    for (const cb of [...this._stateListeners]) guard(this._onError, () => cb(state, previous));
  }

  _receive(data) {
    if (typeof data !== "string") {
      data = typeof data.toString === "function" ? data.toString() : String(data);
    }
    for (const line of data.split("\n")) {
      if (line.length === 0) continue;
      let message;
      try {
        message = JSON.parse(line);
      } catch (error) {
        this._onError(new Error(`rill: not JSON: ${line.slice(0, 80)}`));
        continue;
      }
      if (typeof message.channel === "string") this._channelMessage(message);
      else if (typeof message.state === "string") this._stateMessage(message);
      else if (typeof message.event === "string") this._emit(message.event, message.data);
      else if (typeof message.gap === "number") {
        if (this._onGap) guard(this._onError, () => this._onGap(message.gap));
      } else if (typeof message.error === "string") this._onError(new Error(`rill: ${message.error}`));
    }
  }

  _emit(name, data) {
    const set = this._listeners.get(name);
    if (!set) return;
    for (const cb of [...set]) guard(this._onError, () => cb(data, name));
  }

  _stateMessage(message) {
    const w = this._watches.get(message.state);
    if (!w) return;
    if (message.sync !== undefined) {
      w.items = { ...message.sync };
      w.rev = message.rev;
      guard(this._onError, () => w.cb(w.items, { type: "sync", ts: message.ts }));
    } else if (message.change !== undefined) {
      const change = message.change;
      if (change.type === "create" || change.type === "update") w.items[change.id] = change.data;
      else if (change.type === "delete") delete w.items[change.id];
      w.rev = message.rev;
      guard(this._onError, () => w.cb(w.items, change));
    } else if (message.reset === true) {
      if (w.onReset) guard(this._onError, () => w.onReset(w.key));
    } else if (typeof message.error === "string") {
      const error = new Error(`rill: ${message.state}: ${message.error}`);
      if (w.onError) guard(this._onError, () => w.onError(error));
      else this._onError(error);
    }
  }

  _channelMessage(message) {
    const sub = this._channels.get(message.channel);
    if (!sub) return;
    if (typeof message.id === "string") {
      sub.lastId = message.id;
      const meta = { id: message.id, event: message.event ?? null, channel: message.channel };
      for (const cb of [...sub.callbacks]) guard(this._onError, () => cb(message.data, meta));
    } else if (typeof message.position === "string") {
      // Joined live: where to resume from if the socket drops before the
      // first message.
      sub.lastId = message.position;
    } else if (message.subscribed === true) {
      if (sub.onSubscribed) guard(this._onError, () => sub.onSubscribed(message.channel));
    } else if (message.reset === true) {
      if (sub.onReset) guard(this._onError, () => sub.onReset(message.channel));
    } else if (message.presence !== undefined) {
      if (sub.presence) guard(this._onError, () => sub.presence(message.presence));
    } else if (typeof message.gap === "number") {
      if (this._onGap) guard(this._onError, () => this._onGap(message.gap, message.channel));
    } else if (typeof message.error === "string") {
      const error = new Error(`rill: ${message.channel}: ${message.error}`);
      if (sub.onError) guard(this._onError, () => sub.onError(error));
      else this._onError(error);
    }
  }
}

function subscribeLine(sub) {
  const line = { subscribe: sub.channel };
  if (sub.lastId !== null) line.since = sub.lastId;
  if (sub.presence) line.presence = true;
  return JSON.stringify(line);
}

function watchLine(w) {
  const line = { watch: w.key };
  if (w.rev !== null) line.since = w.rev;
  return JSON.stringify(line);
}

function detach(ws) {
  ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
}

function guard(report, fn) {
  try {
    fn();
  } catch (error) {
    report(error);
  }
}

function resolveUrl(url) {
  const base = typeof location !== "undefined" ? location.href : undefined;
  const resolved = base ? new URL(url, base) : new URL(url);
  if (resolved.protocol === "http:") resolved.protocol = "ws:";
  else if (resolved.protocol === "https:") resolved.protocol = "wss:";
  return resolved.toString();
}
