// rill's own client (/rill.js, fetched from the server and imported as is)
// in Node with the npm `ws` package as globalThis.WebSocket, running the
// example's `/ws` protocol (ws-scenario.mjs). Prints one JSON line.
// Usage: node ws-client.mjs <http-base> [echoes]
import { WebSocket } from 'ws';
import { runScenario } from './ws-scenario.mjs';

const [base, echoes] = process.argv.slice(2);
if (!base) {
  console.error('usage: node ws-client.mjs <http-base> [echoes]');
  process.exit(2);
}

globalThis.WebSocket = WebSocket;
const response = await fetch(`${base}/rill.js`);
if (!response.ok || !response.headers.get('content-type')?.startsWith('text/javascript')) {
  throw new Error(`GET /rill.js: ${response.status} ${response.headers.get('content-type')}`);
}
const source = await response.text();
const { connect } = await import(`data:text/javascript;base64,${Buffer.from(source).toString('base64')}`);
const result = await runScenario(connect, `${base}/ws`, { echoes: Number(echoes ?? 10000) });
console.log(JSON.stringify(result));
