//! `GET /`: a page that shows the live demos in a browser.

use rill::{Context, Controller, Response, Routes};
use std::sync::Arc;

/// Serves the demo page.
#[derive(Debug)]
pub struct PagesController;

impl Controller for PagesController {
    fn routes(routes: &mut Routes<Self>) {
        routes.get("/", Self::index);
    }
}

impl PagesController {
    async fn index(self: Arc<Self>, _ctx: Context) -> Response {
        Response::html(INDEX)
    }
}

const INDEX: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>rill demos</title>
<style>
  body { font-family: system-ui, sans-serif; max-width: 52rem; margin: 2rem auto; }
  pre { background: #f4f4f4; padding: .75rem; height: 12rem; overflow: auto; }
  button { margin-right: .5rem; }
</style>
</head>
<body>
<h1>rill live demos</h1>
<p>Each box reads a live response with <code>fetch</code> and a stream reader, chunk by chunk.
Open <a href="/chat">/chat</a> in two windows for the broadcast hub.</p>

<h2>/numbers</h2>
<button id="numbers-go">Run</button>
<pre id="numbers"></pre>

<h2>/feed</h2>
<button id="feed-go">Start</button><button id="feed-stop">Stop</button>
<pre id="feed"></pre>

<h2>/events <small>(EventSource)</small></h2>
<button id="events-go">Connect</button>
<pre id="events"></pre>

<h2>/ticker <small>(EventSource, resumes with Last-Event-ID)</small></h2>
<button id="ticker-go">Start</button><button id="ticker-stop">Stop</button>
<pre id="ticker"></pre>

<h2>/llm <small>(token streaming)</small></h2>
<button id="llm-go">Ask</button>
<p id="llm"></p>

<h2>/ws <small>(WebSocket named events through rill's client, <code>/rill.js</code>)</small></h2>
<p>Connection: <b id="ws-state">connecting</b></p>
<p><button id="ws-start">Start ticker</button><button id="ws-stop">Stop ticker</button>
<span id="ws-price"></span></p>
<pre id="ws-ticks"></pre>
<p><input id="ws-echo-text" value="hello over WebSocket"><button id="ws-echo">Echo</button>
<span id="ws-echo-out"></span></p>
<p><button id="ws-ask">Ask</button></p>
<p id="ws-tokens"></p>

<h2>/stats</h2>
<button id="stats-go">Refresh</button>
<pre id="stats"></pre>

<script>
async function pipe(url, out, signal) {
  out.textContent = "";
  const response = await fetch(url, { signal });
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    out.textContent += decoder.decode(value, { stream: true });
    out.scrollTop = out.scrollHeight;
  }
}
const $ = (id) => document.getElementById(id);
$("numbers-go").onclick = () => pipe("/numbers", $("numbers"));
let feed = null;
$("feed-go").onclick = () => {
  if (feed) feed.abort();
  feed = new AbortController();
  pipe("/feed", $("feed"), feed.signal).catch(() => {});
};
$("feed-stop").onclick = () => { if (feed) { feed.abort(); feed = null; } };
$("events-go").onclick = () => {
  const out = $("events");
  out.textContent = "";
  const source = new EventSource("/events");
  const show = (e) => { out.textContent += `${e.type}: ${JSON.stringify(e.data)}\n`; };
  source.addEventListener("greeting", show);
  source.onmessage = show;
  // The stream ends after five events; stop EventSource from reconnecting.
  source.onerror = () => source.close();
};
let ticker = null;
$("ticker-go").onclick = () => {
  if (ticker) ticker.close();
  $("ticker").textContent = "";
  ticker = new EventSource("/ticker");
  ticker.onmessage = (e) => { $("ticker").textContent = `id ${e.lastEventId}: ${e.data}\n` + $("ticker").textContent; };
};
$("ticker-stop").onclick = () => { if (ticker) { ticker.close(); ticker = null; } };
$("llm-go").onclick = () => {
  const out = $("llm");
  out.textContent = "";
  const source = new EventSource("/llm");
  source.addEventListener("token", (e) => { out.textContent += (out.textContent ? " " : "") + e.data; });
  source.addEventListener("done", () => source.close());
};
$("stats-go").onclick = async () => { $("stats").textContent = await (await fetch("/stats")).text(); };
</script>
<script type="module">
import { connect } from "/rill.js";
const $ = (id) => document.getElementById(id);
const ws = connect("/ws");
ws.onState((state) => { $("ws-state").textContent = state; });
ws.opened().then(() => { $("ws-state").textContent = ws.state; }).catch(() => {});
ws.on("tick", ({ seq, price }) => {
  $("ws-price").textContent = price.toFixed(2);
  $("ws-ticks").textContent = `#${seq} ${price.toFixed(2)}\n` + $("ws-ticks").textContent;
});
$("ws-start").onclick = () => { $("ws-ticks").textContent = ""; ws.send("stream-start"); };
$("ws-stop").onclick = () => ws.send("stream-stop");
ws.on("echo", (data) => { $("ws-echo-out").textContent = JSON.stringify(data); });
$("ws-echo").onclick = () => ws.send("echo", { text: $("ws-echo-text").value });
ws.on("token", (token) => { $("ws-tokens").textContent += ($("ws-tokens").textContent ? " " : "") + token; });
ws.on("done", () => { $("ws-tokens").dataset.done = "yes"; });
$("ws-ask").onclick = () => {
  $("ws-tokens").textContent = "";
  delete $("ws-tokens").dataset.done;
  ws.send("ask", "what is a live response?");
};
</script>
</body>
</html>
"#;
