//! `GET /chat`: a chat room on the hub mounted at `/hub` — messages are
//! posted with `fetch` to `POST /hub/broadcast` and received through rill's
//! client over WebSocket (`GET /ws`, subscribed to the room's channel), or,
//! where there is no WebSocket (or with `?transport=sse`), with
//! `EventSource` from `GET /hub?channel=…`.

use rill::{
    broker::Backend,
    hub::{Hub, SlowConsumer},
    Context, Controller, Response, Routes,
};
use std::{sync::Arc, time::Duration};

/// Serves the chat page; the hub does the rest.
#[derive(Debug)]
pub struct ChatController;

impl Controller for ChatController {
    fn routes(routes: &mut Routes<Self>) {
        routes.get("/chat", Self::page);
    }
}

impl ChatController {
    async fn page(self: Arc<Self>, _ctx: Context) -> Response {
        Response::html(PAGE)
    }
}

/// The example's hub: 1,000 events of history per channel, HTTP broadcast
/// on, and presence: a page that subscribes with `presence=1` gets everyone
/// in the room first, then who joined and left, at most 4 times a second.
pub fn chat_hub(backend: Option<Arc<dyn Backend>>) -> Hub {
    let builder = Hub::builder()
        .history(1000)
        .history_age(Duration::from_secs(3600))
        .slow_consumer(SlowConsumer::Disconnect)
        .retry(Duration::from_millis(1000))
        .presence_events(Duration::from_millis(250))
        .http_broadcast(true);
    match backend {
        Some(backend) => builder.backend(backend).build(),
        None => builder.build(),
    }
}

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>rill chat</title>
<style>
  body { font-family: system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; }
  #log { border: 1px solid #ccc; height: 20rem; overflow: auto; padding: .5rem; }
  #log p { margin: .2rem 0; }
  form { display: flex; gap: .5rem; margin-top: .5rem; }
  #text { flex: 1; }
</style>
</head>
<body>
<h1>rill chat <small id="here"></small></h1>
<div id="log"></div>
<form id="form">
  <input id="name" placeholder="name" size="10" required>
  <input id="text" placeholder="say something" autocomplete="off" required>
  <button>Send</button>
</form>
<script type="module">
const log = document.getElementById("log");
const params = new URLSearchParams(location.search);
const room = params.get("room") || "chat";
function show(who, text) {
  const p = document.createElement("p");
  const b = document.createElement("b");
  b.textContent = who + ": ";
  p.append(b, document.createTextNode(text));
  p.className = "message";
  log.append(p);
  log.scrollTop = log.scrollHeight;
}
// Everyone first, then who joined and who left.
const members = new Set();
function presence(p) {
  if (p.members) { members.clear(); p.members.forEach((m) => members.add(m.id)); }
  (p.joined || []).forEach((m) => members.add(m.id));
  (p.left || []).forEach((id) => members.delete(id));
  document.getElementById("here").textContent = `(${members.size} here)`;
}
function message(data) {
  const m = JSON.parse(data);
  show(m.name, m.text);
}
// Reconnects resume after the last id seen: nothing lost, nothing twice.
if ("WebSocket" in window && params.get("transport") !== "sse") {
  // rill's client over WebSocket (GET /ws, the hub's channels).
  const { connect } = await import("/rill.js");
  document.body.dataset.transport = "websocket";
  connect("/ws").subscribe(room, message, {
    presence,
    onReset: () => { log.textContent = ""; },
    onSubscribed: () => { document.body.dataset.connected = "yes"; },
  });
} else {
  document.body.dataset.transport = "sse";
  const source = new EventSource("/hub?presence=1&channel=" + encodeURIComponent(room));
  source.addEventListener("message", (e) => message(e.data));
  source.addEventListener("presence", (e) => presence(JSON.parse(e.data)));
  source.addEventListener("reset", () => { log.textContent = ""; });
  source.onopen = () => { document.body.dataset.connected = "yes"; };
}
document.getElementById("form").onsubmit = async (e) => {
  e.preventDefault();
  const name = document.getElementById("name").value;
  const text = document.getElementById("text");
  const response = await fetch("/hub/broadcast", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ channel: room, event: "message", data: JSON.stringify({ name, text: text.value }) }),
  });
  if (response.ok) text.value = "";
};
</script>
</body>
</html>
"#;
