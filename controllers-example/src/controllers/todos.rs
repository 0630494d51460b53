//! The real-time todo app of the iii seed, on rill's keyed state:
//!
//! * `POST /todos` `{"userId","title"}` — creates `todos/<userId>/<id>` =
//!   `{"id","title","completed":false}`; answers `{"id"}`.
//! * `GET /todos?user=U` — a page that lists U's todos live (SSE on the
//!   state API, resuming by itself), toggles `completed` and renames
//!   through update operations, and shows other browsers' changes at once.
//! * `/state/…` — the store's HTTP API ([`StateApi`]).
//! * `GET /iii?user=U` — the iii-compatible WebSocket endpoint (the
//!   `@motiadev/stream-client-browser` client): a connection names its
//!   user (refused without one), and joins only that user's `todos` group.

use rill::{
    state::{IiiEndpoint, StateApi, StateError, Store},
    Context, Controller, Response, Router, Routes,
};
use serde_json::{json, Value};

use super::valid_user;
use std::sync::{
    atomic::{AtomicU64, Ordering},
    Arc,
};

/// The todo app.
#[derive(Debug)]
pub struct TodosController {
    store: Store,
    iii: IiiEndpoint,
    next_id: AtomicU64,
}

impl Controller for TodosController {
    fn routes(routes: &mut Routes<Self>) {
        routes
            .post("/todos", Self::create)
            .get("/todos", Self::page)
            .get("/iii", Self::iii);
    }
}

impl TodosController {
    /// The controller over `store`.
    pub fn new(store: Store) -> Self {
        let iii = IiiEndpoint::new(store.clone())
            .authenticate(|ctx: &Context| {
                let user = ctx
                    .query("user")
                    .filter(|u| valid_user(u))
                    .map(str::to_owned);
                async move { user.map(|user| json!({"user": user})) }
            })
            // A user joins their own group, of any stream.
            .on_join(
                |auth, join| async move { auth["user"].as_str() == Some(join.group.as_str()) },
            );
        // A random start per process: processes sharing the store on Redis
        // do not hand out the same id in the same millisecond.
        let start = {
            use std::hash::{BuildHasher, Hasher};
            std::collections::hash_map::RandomState::new()
                .build_hasher()
                .finish()
                % 1_000_000_000
        };
        TodosController {
            store,
            iii,
            next_id: AtomicU64::new(start),
        }
    }

    async fn create(self: Arc<Self>, ctx: Context) -> Response {
        let body: Value = serde_json::from_slice(ctx.body()).unwrap_or(Value::Null);
        let (Some(user), Some(title)) = (
            body.get("userId")
                .and_then(Value::as_str)
                .filter(|u| valid_user(u)),
            body.get("title").and_then(Value::as_str),
        ) else {
            return Response::new(
                http::StatusCode::BAD_REQUEST,
                "expected {\"userId\": letters/digits/_/-, \"title\": text}\n",
            );
        };
        // Ids sort in creation order: milliseconds, then a counter (from a
        // random start per process).
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let id = format!("{millis:013}-{:09}", n % 1_000_000_000);
        let todo = json!({"id": id, "title": title, "completed": false});
        match self.store.set("todos", user, &id, todo).await {
            Ok(_) => Response::json_string(json!({"id": id}).to_string()),
            Err(error @ (StateError::Publish(_) | StateError::Read(_))) => {
                Response::new(http::StatusCode::SERVICE_UNAVAILABLE, format!("{error}\n"))
            }
            Err(error) => Response::new(http::StatusCode::BAD_REQUEST, format!("{error}\n")),
        }
    }

    async fn page(self: Arc<Self>, ctx: Context) -> Response {
        match ctx.query("user") {
            Some(user) if valid_user(user) => Response::html(PAGE),
            _ => Response::html("<p>Open <a href=\"/todos?user=ann\">/todos?user=ann</a> (any name of letters, digits, _ or -).</p>"),
        }
    }

    async fn iii(self: Arc<Self>, ctx: Context) -> Response {
        self.iii.accept(ctx).await
    }
}

/// The store's HTTP API under `/state`: open to every request — a demo
/// (see `docs/state.md` for an `authorize` hook that checks the user).
pub fn state_routes(router: Router, store: &Store) -> Router {
    StateApi::new(store.clone()).mount(router, "/state")
}

const PAGE: &str = r##"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>rill todos</title>
<style>
  body { font-family: system-ui, sans-serif; max-width: 36rem; margin: 2rem auto; }
  li { display: flex; gap: .5rem; align-items: center; margin: .2rem 0; }
  li.completed .title { text-decoration: line-through; color: #888; }
  .title { flex: 1; }
  #state { color: #888; font-size: .9em; }
</style>
</head>
<body>
<h1><span id="user"></span>'s todos <small id="state">connecting…</small></h1>
<form id="add"><input id="title" placeholder="what to do" autocomplete="off" required> <button>add</button></form>
<ul id="list"></ul>
<script type="module">
const user = new URLSearchParams(location.search).get("user");
document.getElementById("user").textContent = user;
const items = new Map();
const list = document.getElementById("list");
const base = `/state/todos/${encodeURIComponent(user)}`;
function render() {
  list.replaceChildren(...[...items.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([id, todo]) => {
    const li = document.createElement("li");
    li.dataset.id = id;
    li.className = todo.completed ? "completed" : "";
    const box = document.createElement("input");
    box.type = "checkbox"; box.checked = !!todo.completed; box.className = "toggle";
    box.onchange = () => patch(id, [{ op: "set", path: ["completed"], value: box.checked }]);
    const title = document.createElement("span");
    title.className = "title"; title.textContent = todo.title;
    const rename = document.createElement("button");
    rename.textContent = "rename"; rename.className = "rename";
    rename.onclick = () => { const t = prompt("title", todo.title); if (t) patch(id, [{ op: "set", path: ["title"], value: t }]); };
    li.append(box, title, rename);
    return li;
  }));
  document.body.dataset.count = items.size;
}
async function patch(id, ops) {
  await fetch(`${base}/${encodeURIComponent(id)}`, { method: "PATCH", headers: { "content-type": "application/json" }, body: JSON.stringify({ ops }) });
}
document.getElementById("add").onsubmit = async (e) => {
  e.preventDefault();
  const title = document.getElementById("title");
  await fetch("/todos", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ userId: user, title: title.value }) });
  title.value = "";
};
// The group as Server-Sent Events: a sync, then every change once, in
// order; EventSource resumes by itself after a drop (id: <epoch>.<rev>).
const events = new EventSource(base);
events.onopen = () => { document.getElementById("state").textContent = "live"; };
events.onerror = () => { document.getElementById("state").textContent = "reconnecting…"; };
events.addEventListener("sync", (e) => { items.clear(); for (const [id, v] of Object.entries(JSON.parse(e.data).items)) items.set(id, v); render(); });
for (const kind of ["create", "update"]) events.addEventListener(kind, (e) => { const c = JSON.parse(e.data); items.set(c.id, c.data); render(); });
events.addEventListener("delete", (e) => { items.delete(JSON.parse(e.data).id); render(); });
</script>
</body>
</html>
"##;
