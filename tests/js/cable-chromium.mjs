// The official Rails client as a browser runs it: headless Debian Chromium
// (through playwright-core) opens a page of the example app, imports the
// ESM build of `@rails/actioncable` the app serves at /actioncable.esm.js,
// and runs a scenario in the page against `/cable` (a relative URL, as Rails
// apps write it): welcome, transmissions before the confirmation, perform
// with and without data, a broadcast, a rejection, a ping. The browser's
// own WebSocket is subclassed only to record the frames it receives.
// Prints one JSON line for controllers-example/tests/cable_clients.rs.
// Usage: node cable-chromium.mjs http://HOST:PORT
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { ARGS, EXECUTABLE } from './chromium.mjs';

const base = process.argv[2]?.replace(/^ws:/, 'http:');
if (!base) {
  console.error('usage: node cable-chromium.mjs http://HOST:PORT');
  process.exit(2);
}
const stream = `chromium-${process.pid}-${Date.now()}`;

/// Runs in the page.
async function scenario({ stream }) {
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const until = async (check, ms, what) => {
    const deadline = Date.now() + ms;
    for (;;) {
      const value = check();
      if (value) return value;
      if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
      await sleep(10);
    }
  };
  const out = { step: 'import' };
  const consumers = [];
  try {
    const AC = await import('/actioncable.esm.js');
    const raw = [];
    AC.adapters.WebSocket = class RecordingWebSocket extends WebSocket {
      constructor(url, protocols) {
        super(url, protocols);
        this.addEventListener('message', (event) => raw.push(JSON.parse(event.data)));
      }
    };
    AC.logger.enabled = false;

    const subscribe = (consumer, params) => {
      const log = [];
      const sub = consumer.subscriptions.create(params, {
        connected() { log.push('connected'); },
        disconnected({ willAttemptReconnect }) { log.push(`disconnected(${willAttemptReconnect})`); },
        rejected() { log.push('rejected'); },
        received(data) { log.push(data); },
      });
      sub.log = log;
      sub.got = () => log.filter((e) => e !== 'connected' && e !== 'rejected' && !String(e).startsWith('disconnected('));
      return sub;
    };
    const confirmed = (sub, what) => until(() => sub.log.includes('connected'), 5000, what);

    out.step = 'token';
    const res = await fetch('/cable/token?user=alice');
    const token = (await res.text()).trim();
    out.step = 'welcome';
    const consumer = AC.createConsumer(`/cable?token=${encodeURIComponent(token)}`);
    consumers.push(consumer);
    out.url = consumer.url.replace(/token=.*/, 'token=…').replace(location.host, 'HOST');
    consumer.connect();
    await until(() => raw.length > 0, 5000, 'welcome');
    out.welcome = raw[0];
    out.protocol = consumer.connection.getProtocol();

    out.step = 'echo';
    const echo = subscribe(consumer, { channel: 'EchoChannel' });
    await confirmed(echo, 'echo confirm');
    out.order = [...echo.log];
    echo.perform('echo', { text: 'from chromium ☃' });
    await until(() => echo.got().length >= 3, 5000, 'echo reply');
    echo.perform('tick');
    await until(() => echo.got().length >= 4, 5000, 'tick 1');
    echo.perform('tick');
    await until(() => echo.got().length >= 5, 5000, 'tick 2');
    out.echo = echo.got().slice(2);

    out.step = 'broadcast';
    const listener = subscribe(consumer, { channel: 'EchoChannel', streams: [stream] });
    await confirmed(listener, 'broadcast confirm');
    const before = listener.got().length;
    for (const data of [{ from: 'http', n: 1 }, 'a string', '{"a":1}']) {
      const r = await fetch('/cable/broadcast', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ stream, data }),
      });
      if (!r.ok) throw new Error(`broadcast: ${r.status}`);
    }
    await until(() => listener.got().length >= before + 3, 5000, 'broadcasts');
    out.broadcasts = listener.got().slice(before);

    out.step = 'reject';
    const denied = subscribe(consumer, { channel: 'ChatChannel', room: 'secret' });
    await until(() => denied.log.length > 0, 5000, 'reject');
    await sleep(700);
    out.reject = [...denied.log];

    out.step = 'ping';
    await until(() => raw.some((f) => f.type === 'ping'), 5000, 'ping');
    const ping = raw.find((f) => f.type === 'ping');
    out.ping = { integer: Number.isInteger(ping.message), nearNow: Math.abs(ping.message - Date.now() / 1000) < 60 };

    out.step = 'disconnect';
    consumer.disconnect();
    await until(() => echo.log.some((e) => String(e).startsWith('disconnected(')), 5000, 'disconnected');
    out.disconnected = echo.log.filter((e) => String(e).startsWith('disconnected('));
    out.extraEcho = echo.got().length - 5;
    out.step = 'done';
  } catch (error) {
    out.error = String(error?.stack ?? error);
    for (const c of consumers) c.disconnect();
  }
  return out;
}

const profile = mkdtempSync(join(tmpdir(), 'rill-chromium-'));
let context;
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: EXECUTABLE,
    headless: true,
    args: ARGS,
    timeout: 30_000,
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.on('console', (msg) => console.error(`page console: ${msg.text()}`));
  page.on('pageerror', (err) => console.error(`page error: ${err}`));
  // Any same-origin page will do: the scenario imports the client itself.
  const response = await page.goto(`${base}/cable/token?user=page`, { timeout: 15_000 });
  const status = response?.status();
  let timer;
  const result = await Promise.race([
    page.evaluate(scenario, { stream }),
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error('scenario: not done within 40 s')), 40_000);
    }),
  ]).finally(() => clearTimeout(timer));
  console.log(JSON.stringify({ pageStatus: status, ...result }));
} catch (err) {
  console.error(`cable-chromium.mjs: ${err?.stack ?? err}`);
  process.exitCode = 1;
} finally {
  await context?.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
}
