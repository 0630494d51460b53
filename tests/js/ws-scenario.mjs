// The `/ws` protocol of the example app, run through rill's own client
// (`connect` from /rill.js) — the same code in Node (ws-client.mjs) and in
// headless Chromium (the page controllers-example/tests/ws_clients.rs
// serves). Resolves to a plain object that the Rust test asserts.

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function within(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export async function runScenario(connect, url, { echoes = 10000 } = {}) {
  const s = connect(url);
  const states = [];
  s.onState((state) => states.push(state));
  await within(s.opened(), 10000, 'open');

  // 1. Numbered echoes, fire-and-forget: all back, in order.
  const echoed = [];
  const allEchoed = new Promise((resolve) => {
    s.on('echo', (data) => {
      echoed.push(data.n);
      if (echoed.length === echoes) resolve();
    });
  });
  for (let n = 1; n <= echoes; n += 1) s.send('echo', { n });
  await within(allEchoed, 30000, 'echoes');
  s.off('echo');
  const echoInOrder = echoed.every((n, i) => n === i + 1);

  // 2. A token stream: one `token` per word, then `done` without data.
  const tokens = [];
  s.on('token', (token) => tokens.push(token));
  const done = new Promise((resolve) => s.once('done', (data) => resolve(data === undefined ? 'absent' : data)));
  s.send('ask', 'what is a live response?');
  const doneData = await within(done, 10000, 'done');
  s.off('token');

  // 3. The ticker: start, five ticks, stop; nothing once the stop is in.
  const ticks = [];
  const late = [];
  let stoppedAt = null;
  const five = new Promise((resolve) => {
    s.on('tick', (tick) => {
      if (stoppedAt !== null && Date.now() - stoppedAt > 250) late.push(tick.seq);
      else ticks.push(tick);
      if (ticks.length === 5) resolve();
    });
  });
  s.send('stream-start');
  await within(five, 5000, 'ticks');
  s.send('stream-stop');
  stoppedAt = Date.now();
  await sleep(600);
  s.off('tick');

  // 4. An order: acknowledged to us, traded to everyone.
  const ack = new Promise((resolve) => s.once('order-ack', resolve));
  const trade = new Promise((resolve) => s.once('trade', resolve));
  s.send('order', { symbol: 'BTC', qty: 2, side: 'buy' });
  const [ackData, tradeData] = await within(Promise.all([ack, trade]), 5000, 'order');

  s.close();
  return {
    states,
    finalState: s.state,
    echo: { count: echoed.length, inOrder: echoInOrder },
    tokens,
    doneData,
    tickSeqs: ticks.slice(0, 5).map((t) => t.seq),
    ticksHavePrices: ticks.every((t) => typeof t.price === 'number'),
    lateTicks: late.length,
    ack: ackData,
    trade: tradeData,
  };
}
