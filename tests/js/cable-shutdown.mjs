// A graceful server shutdown seen by both official clients: a Rails
// consumer (`@rails/actioncable`) and an AnyCable cable (`@anycable/web`,
// extended protocol), each subscribed, then `POST /test/ready` (a route the
// Rust test adds) so that the test shuts the server down. Both must get
// `{"type":"disconnect","reason":"server_restart","reconnect":true}` and
// treat it as a disconnect they will recover from. Prints one JSON line for
// controllers-example/tests/cable_clients.rs.
// Usage: node cable-shutdown.mjs ws://HOST:PORT
import { createRequire } from 'node:module';
import { createCable } from '@anycable/web';
import { RecordingWebSocket, endpoints, finish, section, token, until, within } from './cable-common.mjs';

const require = createRequire(import.meta.url);
globalThis.addEventListener ??= () => {};
globalThis.removeEventListener ??= () => {};
const AC = require('@rails/actioncable');
AC.adapters.WebSocket = RecordingWebSocket;
AC.logger.enabled = false;

const EP = endpoints(process.argv[2]);
const WAIT = 5000;

const result = await section('shutdown', async () => {
  const railsToken = await token(EP.http, 'sam');
  const consumer = AC.createConsumer(`${EP.ws}/cable?token=${encodeURIComponent(railsToken)}`);
  const railsLog = [];
  consumer.subscriptions.create({ channel: 'EchoChannel' }, {
    connected() { railsLog.push('connected'); },
    disconnected({ willAttemptReconnect }) { railsLog.push(`disconnected(${willAttemptReconnect})`); },
  });

  const anyToken = await token(EP.http, 'ann');
  const cable = createCable(`${EP.ws}/cable?token=${encodeURIComponent(anyToken)}`, {
    websocketImplementation: RecordingWebSocket,
    protocol: 'actioncable-v1-ext-json',
    logLevel: 'error',
    // The server is going away: no reconnect while we look.
    reconnectStrategy: () => 60_000,
  });
  const cableEvents = [];
  cable.on('disconnect', (err) => cableEvents.push(`disconnect(${err?.reason})`));
  cable.on('close', (err) => cableEvents.push(`close(${err?.reason})`));
  const channel = cable.subscribeTo('EchoChannel', {});
  await within(channel.ensureSubscribed(), WAIT, 'anycable subscribe');
  await until(() => railsLog.includes('connected'), WAIT, 'rails subscribe');
  const railsSocket = consumer.connection.webSocket;
  const anySocket = cable.transport.ws;

  const ready = await fetch(`${EP.http}/test/ready`, { method: 'POST' });
  await ready.text();

  await until(() => railsLog.some((l) => l.startsWith('disconnected(')), 10000, 'rails disconnected');
  await until(() => cableEvents.length > 0, 10000, 'anycable disconnect');
  const disconnects = (socket) => socket.frames.filter((f) => f.type === 'disconnect');
  const out = {
    readyStatus: ready.status,
    rails: { frames: disconnects(railsSocket), log: [...railsLog] },
    anycable: { frames: disconnects(anySocket), events: [...cableEvents], state: cable.state },
  };
  consumer.disconnect();
  cable.disconnect();
  return out;
});

finish(result);
