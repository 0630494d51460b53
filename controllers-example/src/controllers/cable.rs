//! The ActionCable endpoint and its helpers:
//!
//! * `GET /cable/token?user=NAME` — a token signed for `NAME` (plain text).
//! * `GET /cable?token=T` — the cable; its connection is identified by the
//!   token's `user`; a missing or bad token is rejected (`unauthorized`).
//!   Channels: [`ChatChannel`] and [`EchoChannel`].
//! * `POST /cable/broadcast` `{"stream": S, "data": D}` — broadcasts `D` to
//!   `S` as given (an object stays an object, a string a string).
//! * `POST /cable/disconnect` `{"user": U, "reconnect": bool}` — remote
//!   disconnect of `U`'s connections, on every process sharing the Redis
//!   (`--redis`); answers `{"disconnected": N}`, those on this process.
//! * `GET /cable-chat` — a chat page on the cable, with `@rails/actioncable`.
//! * `GET /actioncable.esm.js` — the official client: the npm package's file
//!   when the test set-up installed it (`tests/js/node_modules`, or the
//!   file `RILL_ACTIONCABLE_JS` names), else a redirect to its copy on a
//!   public CDN. Nothing of it is committed here.

use rill::{
    broker::{Backend, Broker},
    cable::{Cable, Identifiers, Rejection},
    Context, Controller, Response, Routes,
};
use serde_json::{json, value::RawValue, Value};
use std::{collections::HashMap, sync::Arc};

use super::valid_user;
use crate::{
    cable_token::CableSecret,
    channels::{ChatChannel, EchoChannel},
};

/// The version of `@rails/actioncable` the page and the tests use.
pub const ACTIONCABLE_VERSION: &str = "8.1.400";

/// The cable and its token key.
#[derive(Debug)]
pub struct CableController {
    cable: Cable,
    secret: CableSecret,
}

impl Controller for CableController {
    fn routes(routes: &mut Routes<Self>) {
        routes
            .get("/cable/token", Self::token)
            .get("/cable", Self::connect)
            .post("/cable/broadcast", Self::broadcast)
            .post("/cable/disconnect", Self::disconnect)
            .get("/cable-chat", Self::page)
            .get("/actioncable.esm.js", Self::client);
    }
}

impl CableController {
    /// The controller, signing tokens with `secret`, its streams on
    /// `backend` (Redis) or in memory.
    pub fn new(secret: CableSecret, backend: Option<Arc<dyn Backend>>) -> Self {
        let verifier = secret.clone();
        let mut builder = Cable::builder();
        if let Some(backend) = backend {
            builder = builder.broker(Broker::builder().backend(backend).build());
        }
        let cable = builder
            .connect(move |req| {
                let user = req.query("token").and_then(|t| verifier.verify(t));
                async move {
                    match user {
                        Some(user) => Ok(Identifiers::new().with("user", user)),
                        None => Err(Rejection::Unauthorized),
                    }
                }
            })
            .channel("ChatChannel", ChatChannel::default)
            .channel("EchoChannel", EchoChannel::default)
            .build();
        CableController { cable, secret }
    }

    /// The cable (to broadcast from elsewhere in the app).
    pub fn cable(&self) -> &Cable {
        &self.cable
    }

    async fn token(self: Arc<Self>, ctx: Context) -> Response {
        match ctx.query("user") {
            Some(user) if valid_user(user) => Response::text(self.secret.sign(user)),
            _ => bad_request("user: 1 to 64 letters, digits, '_' or '-'"),
        }
    }

    async fn connect(self: Arc<Self>, ctx: Context) -> Response {
        self.cable.accept(ctx)
    }

    async fn broadcast(self: Arc<Self>, ctx: Context) -> Response {
        let fields: HashMap<String, Box<RawValue>> = match serde_json::from_slice(ctx.body()) {
            Ok(fields) => fields,
            Err(_) => return bad_request("a JSON object {\"stream\": S, \"data\": D}"),
        };
        let stream = fields
            .get("stream")
            .and_then(|s| serde_json::from_str::<String>(s.get()).ok());
        let (Some(stream), Some(data)) = (stream, fields.get("data")) else {
            return bad_request("a JSON object {\"stream\": S, \"data\": D}");
        };
        match self.cable.broadcast_json(&stream, data.get()) {
            Ok(()) => Response::json_string(json!({"stream": stream}).to_string()),
            Err(error) => bad_request(&error.to_string()),
        }
    }

    async fn disconnect(self: Arc<Self>, ctx: Context) -> Response {
        let body: Value = serde_json::from_slice(ctx.body()).unwrap_or(Value::Null);
        let (Some(user), Some(reconnect)) = (
            body.get("user").and_then(Value::as_str),
            body.get("reconnect").and_then(Value::as_bool),
        ) else {
            return bad_request("a JSON object {\"user\": U, \"reconnect\": bool}");
        };
        let reached = self.cable.disconnect(&[("user", user)], reconnect);
        Response::json_string(json!({"disconnected": reached}).to_string())
    }

    async fn page(self: Arc<Self>, _ctx: Context) -> Response {
        Response::html(PAGE)
    }

    async fn client(self: Arc<Self>, _ctx: Context) -> Response {
        let path = std::env::var("RILL_ACTIONCABLE_JS").unwrap_or_else(|_| {
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../tests/js/node_modules/@rails/actioncable/app/assets/javascripts/actioncable.esm.js"
            )
            .to_owned()
        });
        match tokio::fs::read_to_string(&path).await {
            Ok(text) => Response::new(http::StatusCode::OK, text).with_header(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("text/javascript; charset=utf-8"),
            ),
            Err(_) => {
                let cdn = format!(
                    "https://cdn.jsdelivr.net/npm/@rails/actioncable@{ACTIONCABLE_VERSION}/app/assets/javascripts/actioncable.esm.js"
                );
                match http::HeaderValue::from_str(&cdn) {
                    Ok(location) => Response::status_only(http::StatusCode::FOUND)
                        .with_header(http::header::LOCATION, location),
                    Err(_) => Response::status_only(http::StatusCode::NOT_FOUND),
                }
            }
        }
    }
}

fn bad_request(why: &str) -> Response {
    Response::new(http::StatusCode::BAD_REQUEST, format!("{why}\n"))
}

const PAGE: &str = r##"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>rill cable chat</title>
<style>
  body { font-family: system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; }
  #log { border: 1px solid #ccc; height: 20rem; overflow: auto; padding: .5rem; }
  #log p { margin: .2rem 0; }
  form { display: flex; gap: .5rem; margin-top: .5rem; }
  #text { flex: 1; }
</style>
</head>
<body>
<h1>rill cable chat <small id="state">connecting…</small></h1>
<p>ActionCable's own client (<code>@rails/actioncable</code>) on rill's cable.
Room <input id="room" value="lobby" size="10"> as <input id="user" value="guest" size="10">
<button id="join">join</button> <button id="away" disabled>away</button></p>
<div id="log"></div>
<form id="form"><input id="text" placeholder="message" autocomplete="off" disabled><button disabled>send</button></form>
<script type="module">
import { createConsumer } from "/actioncable.esm.js";
const $ = (id) => document.getElementById(id);
const log = (text) => { const p = document.createElement("p"); p.textContent = text; $("log").append(p); $("log").scrollTop = 1e9; };
let consumer, room;
$("join").onclick = async () => {
  if (consumer) consumer.disconnect();
  const user = $("user").value;
  const token = await (await fetch(`/cable/token?user=${encodeURIComponent(user)}`)).text();
  if (!token.includes(".")) { log(`bad name: ${token}`); return; }
  consumer = createConsumer(`/cable?token=${encodeURIComponent(token)}`);
  room = consumer.subscriptions.create({ channel: "ChatChannel", room: $("room").value }, {
    connected() { $("state").textContent = `in ${$("room").value}`; for (const el of document.querySelectorAll("#form *, #away")) el.disabled = false; },
    disconnected() { $("state").textContent = "disconnected"; },
    rejected() { log(`the room ${$("room").value} is not for ${user}`); $("state").textContent = "rejected"; },
    received(data) {
      if (data.performed) log(`${data.user} ${data.performed}${data.status ? `: ${data.status}` : ""}`);
      else log(`${data.current_user_id}: ${data.message}`);
    },
  });
};
$("away").onclick = () => room && room.perform("away");
$("form").onsubmit = (e) => { e.preventDefault(); if (room && $("text").value) { room.send({ message: $("text").value }); $("text").value = ""; } };
</script>
</body>
</html>
"##;
