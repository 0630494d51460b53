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
<p>Each box reads a live response with <code>fetch</code> and a stream reader, chunk by chunk.</p>

<h2>/numbers</h2>
<button id="numbers-go">Run</button>
<pre id="numbers"></pre>

<h2>/feed</h2>
<button id="feed-go">Start</button><button id="feed-stop">Stop</button>
<pre id="feed"></pre>

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
$("stats-go").onclick = async () => { $("stats").textContent = await (await fetch("/stats")).text(); };
</script>
</body>
</html>
"#;
