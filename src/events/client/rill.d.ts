// Type declarations for rill's named-event stream client (/rill.js).

/** Where a stream stands. */
export type StreamState = "connecting" | "open" | "reconnecting" | "closed";

/** The connection states, in the order a connection goes through them. */
export declare const STATES: readonly StreamState[];

/** What `connect` accepts besides the URL. */
export interface ConnectOptions {
  /** A WebSocket constructor; defaults to `globalThis.WebSocket`. */
  WebSocket?: new (url: string, protocols?: string | string[]) => WebSocket;
  /** Subprotocols to offer. */
  protocols?: string | string[];
  /** The smallest reconnect delay, in ms (default 250). */
  minReconnectDelay?: number;
  /** The largest reconnect delay, in ms (default 10000). */
  maxReconnectDelay?: number;
  /** Sends kept while the socket is down (default 10000); more are refused. */
  maxQueue?: number;
  /** Errors: listener exceptions, lines the server could not understand, refusals. */
  onError?: (error: Error) => void;
  /** Events of the stream (or of `channel`) dropped for a slow client. */
  onGap?: (dropped: number, channel?: string) => void;
}

/** What a channel message comes with. */
export interface MessageMeta {
  /** `<epoch>-<offset>`: the same id SSE subscribers get. */
  id: string;
  /** The event name, or null. */
  event: string | null;
  channel: string;
}

/** What `subscribe` accepts. */
export interface SubscribeOptions {
  /** Start after this id ("0": the whole history the server keeps). */
  since?: string;
  /** Receive joins and leaves (if the hub sends presence events). */
  presence?: (change: unknown) => void;
  /** Continuity was lost: the history the server has follows. */
  onReset?: (channel: string) => void;
  /** The server joined the channel (again, after a reconnect). */
  onSubscribed?: (channel: string) => void;
  /** The server refused the subscription. */
  onError?: (error: Error) => void;
}

/** One subscription to a channel. */
export interface ChannelSubscription {
  readonly channel: string;
  /** The id of the last message received (or the join position). */
  readonly lastId: string | null;
  unsubscribe(): void;
}

/** A change of a watched state group or item. */
export interface StateChange {
  type: "sync" | "create" | "update" | "delete" | "event";
  /** The item (absent for a sync, or an event to the whole group). */
  id?: string;
  /** The new value (the old one for a delete, the event's data). */
  data?: unknown;
  /** The custom event's type. */
  event?: string;
  /** Milliseconds since the Unix epoch, increasing per group. */
  ts: number;
}

/** What `watch` accepts. */
export interface WatchOptions {
  /** Watch one item of the group. */
  item?: string;
  /** Start after this revision (`<epoch>.<rev>`). */
  since?: string;
  /** Continuity was lost: a fresh snapshot follows. */
  onReset?: (key: string) => void;
  onError?: (error: Error) => void;
}

/** A watch of a state group or item. */
export interface StateWatch {
  readonly key: string;
  /** The revision of the last sync or change received. */
  readonly rev: string | null;
  /** Item id → value, as of the last sync or change. */
  readonly items: Record<string, unknown>;
  unwatch(): void;
}

/** An open (or reopening) stream. */
export interface RillStream {
  readonly state: StreamState;
  /** Calls `cb` on every change of state; returns a function that stops it. */
  onState(cb: (state: StreamState, previous: StreamState) => void): () => void;
  /** Resolves once the stream is open; rejects if it is closed first. */
  opened(): Promise<void>;
  on(name: string, cb: (data: any, name: string) => void): this;
  once(name: string, cb: (data: any, name: string) => void): this;
  /** Removes `cb`, or every listener of `name` when `cb` is omitted. */
  off(name: string, cb?: (data: any, name: string) => void): this;
  /** Fire-and-forget; queued while reconnecting. False when not taken. */
  send(name: string, data?: unknown): boolean;
  subscribe(
    channel: string,
    cb: (data: string, meta: MessageMeta) => void,
    options?: SubscribeOptions,
  ): ChannelSubscription;
  unsubscribe(channel: string): void;
  /** Watches a state group (or one item): a snapshot, then every change once, in order. */
  watch(
    stream: string,
    group: string,
    cb: (items: Record<string, unknown>, change: StateChange) => void,
    options?: WatchOptions,
  ): StateWatch;
  unwatch(key: string): void;
  /** Closes for good: no reconnect. */
  close(): void;
}

/** Opens a stream to `url` and keeps it open. */
export declare function connect(url: string, options?: ConnectOptions): RillStream;
