// What the keyed-state scripts (state-*.mjs) share: bounded waits, the
// state API over HTTP, a canonical JSON text for comparing values, a TCP
// proxy that cuts every connection on demand, requests fired at once on
// warm sockets, and the one JSON line each script prints. Node only.
import net from 'node:net';

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/// Resolves to `check()` once it is truthy (polled every 5 ms); rejects
/// with `what` after `ms`.
export async function until(check, ms, what) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(5);
  }
}

/// A user name no other run uses (letters, digits and `-`, as the app
/// wants).
export const uniqueUser = (prefix) => `${prefix}-${process.pid}-${Date.now()}`;

/// JSON text with object keys sorted at every level: equal values, equal
/// texts, whatever order their keys came in.
export function canon(value) {
  if (Array.isArray(value)) return `[${value.map(canon).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canon(value[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/// Values (objects with an `id`) in id order, as one canonical text.
export const canonById = (values) =>
  canon([...values].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)));

/// `method path` with a JSON body (if any) against `base`: the parsed
/// answer, or a thrown error naming the status when it is not `want`.
export async function call(base, method, path, body, want = 200) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status !== want) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/// `POST /todos` → the new todo's id.
export async function createTodo(base, user, title) {
  return (await call(base, 'POST', '/todos', { userId: user, title })).id;
}

/// `GET /state/todos/<user>` → its values in id order (canonical text)
/// and its revision.
export async function serverGroup(base, user) {
  const group = await call(base, 'GET', `/state/todos/${user}`);
  return { rev: group.rev, text: canonById(group.items.map((item) => item.value)) };
}

/// A TCP proxy on 127.0.0.1:0 in front of `port`: `cut()` destroys every
/// connection it carries (both sides, like a network failure); `count`
/// is how many it accepted. Close it with `close()`.
export async function cuttingProxy(port) {
  const pairs = new Set();
  let count = 0;
  const server = net.createServer((client) => {
    count += 1;
    const upstream = net.connect(port, '127.0.0.1');
    const pair = { client, upstream };
    pairs.add(pair);
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: server.address().port,
    get count() {
      return count;
    },
    cut() {
      const n = pairs.size;
      for (const { client, upstream } of [...pairs]) {
        client.destroy();
        upstream.destroy();
      }
      pairs.clear();
      return n;
    },
    close() {
      server.close();
      this.cut();
    },
  };
}

/// Sends `requests` (`{method, path, body}`) to 127.0.0.1:`port`, each on
/// its own connection, all written in one tick once every connection is
/// up, so that the server handles them concurrently. Resolves to
/// `{statuses, spanMs}`: each answer's status, and the time from the
/// writes to the last answer.
export async function atOnce(port, requests) {
  const sockets = await Promise.all(
    requests.map(
      () =>
        new Promise((resolve, reject) => {
          const socket = net.connect(port, '127.0.0.1', () => resolve(socket));
          socket.on('error', reject);
        }),
    ),
  );
  const answers = sockets.map(
    (socket) =>
      new Promise((resolve, reject) => {
        let text = '';
        socket.setEncoding('utf8');
        socket.on('data', (chunk) => {
          text += chunk;
        });
        socket.on('end', () => resolve(text));
        socket.on('error', reject);
      }),
  );
  const start = process.hrtime.bigint();
  requests.forEach(({ method, path, body }, i) => {
    const data = Buffer.from(JSON.stringify(body), 'utf8');
    sockets[i].write(
      `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${data.length}\r\nConnection: close\r\n\r\n${data.toString('latin1')}`,
      'latin1',
    );
  });
  const texts = await Promise.all(answers);
  const spanMs = Number(process.hrtime.bigint() - start) / 1e6;
  const statuses = texts.map((text) => Number(text.split(' ')[1]));
  return { statuses, spanMs };
}

/// Prints the one JSON line and exits once stdout has it (clients that
/// reconnect forever would keep the process alive otherwise).
export function finish(result, code = 0) {
  process.stdout.write(`${JSON.stringify(result)}\n`, () => process.exit(code));
}

/// Fails the script with `{error}` after `ms`.
export function deadline(ms, script) {
  const timer = setTimeout(() => {
    console.error(`${script}: over ${ms} ms`);
    finish({ error: `timeout after ${ms} ms` }, 1);
  }, ms);
  timer.unref();
  return timer;
}
