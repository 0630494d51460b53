//! Routing against a real server: 404, 405 + Allow, HEAD, params, query,
//! body limits, controllers, state, and panicking actions.

mod support;

use rill::{Context, Controller, Response, Router, Routes};
use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc,
};
use support::{start, RawResponse};

#[derive(Default)]
struct Rooms {
    created: AtomicUsize,
}

impl Controller for Rooms {
    fn routes(routes: &mut Routes<Self>) {
        routes
            .get("/rooms/:id", Self::show)
            .post("/rooms", Self::create)
            .get("/rooms/lobby", Self::lobby);
    }
}

impl Rooms {
    async fn show(self: Arc<Self>, ctx: Context) -> Response {
        Response::text(format!("room {}\n", ctx.param("id").unwrap_or("?")))
    }
    async fn create(self: Arc<Self>, ctx: Context) -> Response {
        let n = self.created.fetch_add(1, Ordering::SeqCst) + 1;
        Response::text(format!("created #{n}: {} bytes\n", ctx.body().len()))
    }
    async fn lobby(self: Arc<Self>, _ctx: Context) -> &'static str {
        "the lobby\n"
    }
}

async fn numbers(ctx: Context) -> Response {
    ctx.live(|_ctx, mut stream| async move {
        for n in 1..=3 {
            stream.write(format!("{n}\n")).await?;
        }
        Ok(())
    })
}

fn app() -> Router {
    Router::new()
        .controller(Arc::new(Rooms::default()))
        .get("/numbers", numbers)
        .get("/echo", |ctx: Context| async move {
            let tags: Vec<&str> = ctx.query_all("tag").collect();
            format!(
                "q={:?} tags={:?} greeting={:?}\n",
                ctx.query("q"),
                tags,
                ctx.state::<Greeting>().map(|g| g.0)
            )
        })
        .get("/files/*path", |ctx: Context| async move {
            format!("file {}\n", ctx.param("path").unwrap_or(""))
        })
        .get("/boom", |_ctx: Context| async move {
            if true {
                panic!("action bug");
            }
            "unreachable"
        })
        .state(Greeting("hi"))
        .body_limit(16)
}

#[derive(Clone)]
struct Greeting(&'static str);

async fn text(server: &support::TestServer, request: &str) -> (RawResponse, String) {
    let mut response = RawResponse::request(server.addr, request).await;
    let body = if response.header("content-length").is_some() {
        response.sized_body().await
    } else {
        response.body().await.unwrap()
    };
    (response, String::from_utf8(body).unwrap())
}

/// An unknown path is a 404 with a short body.
#[tokio::test]
async fn unknown_path_is_404() {
    let server = start(app()).await;
    let (r, body) = text(&server, "GET /nowhere HTTP/1.1\r\nHost: t\r\n\r\n").await;
    assert_eq!(r.status, 404);
    assert_eq!(body, "not found\n");
}

/// A known path with another method is a 405 listing the allowed methods.
#[tokio::test]
async fn wrong_method_is_405_with_allow() {
    let server = start(app()).await;
    let (r, body) = text(&server, "DELETE /rooms HTTP/1.1\r\nHost: t\r\n\r\n").await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("POST"));
    assert_eq!(body, "method not allowed\n");
    let (r, _) = text(
        &server,
        "POST /numbers HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n",
    )
    .await;
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
}

/// HEAD on a GET route answers the GET headers without a body, and does not
/// start a live writer.
#[tokio::test]
async fn head_serves_get_routes_without_body() {
    let server = start(app()).await;
    let mut r = RawResponse::request(
        server.addr,
        "HEAD /rooms/7 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("7"));
    assert!(r.rest_raw().await.is_empty());

    let mut r = RawResponse::request(
        server.addr,
        "HEAD /numbers HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert!(r.rest_raw().await.is_empty());
    assert_eq!(server.tracker.active(), 0, "no writer for HEAD");
}

/// Path params are percent-decoded; static segments win over params;
/// catch-alls take the rest; a param that is not UTF-8 is a 400.
#[tokio::test]
async fn params_and_specificity() {
    let server = start(app()).await;
    let (_, body) = text(&server, "GET /rooms/caf%C3%A9 HTTP/1.1\r\nHost: t\r\n\r\n").await;
    assert_eq!(body, "room café\n");
    let (_, body) = text(&server, "GET /rooms/lobby HTTP/1.1\r\nHost: t\r\n\r\n").await;
    assert_eq!(body, "the lobby\n");
    let (_, body) = text(
        &server,
        "GET /files/a/b%20c.txt HTTP/1.1\r\nHost: t\r\n\r\n",
    )
    .await;
    assert_eq!(body, "file a/b c.txt\n");
    let (r, _) = text(&server, "GET /rooms/%FF HTTP/1.1\r\nHost: t\r\n\r\n").await;
    assert_eq!(r.status, 400);
}

/// Query parameters are form-decoded, repeated ones kept in order; app
/// state reaches plain-fn actions.
#[tokio::test]
async fn query_and_state() {
    let server = start(app()).await;
    let (_, body) = text(
        &server,
        "GET /echo?q=a+b%26c&tag=x&tag=y%21 HTTP/1.1\r\nHost: t\r\n\r\n",
    )
    .await;
    assert_eq!(
        body,
        "q=Some(\"a b&c\") tags=[\"x\", \"y!\"] greeting=Some(\"hi\")\n"
    );
}

/// A body within the limit reaches the action; a larger one is a 413,
/// whether announced by Content-Length or sent chunked; the action does not run.
#[tokio::test]
async fn body_limit_gives_413() {
    let server = start(app()).await;
    let (r, body) = text(
        &server,
        "POST /rooms HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello",
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(body, "created #1: 5 bytes\n");
    let (r, body) = text(
        &server,
        "POST /rooms HTTP/1.1\r\nHost: t\r\nContent-Length: 17\r\n\r\n12345678901234567",
    )
    .await;
    assert_eq!(r.status, 413);
    assert_eq!(body, "payload too large\n");
    let (r, _) = text(
        &server,
        "POST /rooms HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\na\r\n0123456789\r\n0\r\n\r\n",
    )
    .await;
    assert_eq!(r.status, 413);
    let (_, body) = text(
        &server,
        "POST /rooms HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n",
    )
    .await;
    assert_eq!(
        body, "created #2: 0 bytes\n",
        "rejected bodies never ran the action"
    );
}

/// A panicking action answers 500 and the server keeps serving.
#[tokio::test]
async fn panicking_action_is_500() {
    let server = start(app()).await;
    let (r, body) = text(&server, "GET /boom HTTP/1.1\r\nHost: t\r\n\r\n").await;
    assert_eq!(r.status, 500);
    assert_eq!(body, "internal server error\n");
    let (r, _) = text(&server, "GET /rooms/1 HTTP/1.1\r\nHost: t\r\n\r\n").await;
    assert_eq!(r.status, 200);
}

/// A malformed request line gets a 400 from the HTTP layer, and the server
/// keeps serving.
#[tokio::test]
async fn malformed_request_is_400() {
    let server = start(app()).await;
    let mut r = RawResponse::request(server.addr, "GARBAGE\r\n\r\n").await;
    assert_eq!(r.status, 400);
    let _ = r.rest_raw().await;
    let (r, _) = text(&server, "GET /rooms/1 HTTP/1.1\r\nHost: t\r\n\r\n").await;
    assert_eq!(r.status, 200);
}

#[derive(serde::Deserialize)]
struct NewTodo {
    title: String,
}

async fn create_todo(ctx: Context) -> Result<Response, rill::JsonRejection> {
    let rill::Json(todo) = rill::Json::<NewTodo>::from_context(&ctx)?;
    Ok(Response::json(&serde_json::json!({"title": todo.title}))
        .with_status(rill::http::StatusCode::CREATED))
}

#[tokio::test]
async fn json_bodies_are_typed_and_rejected_with_their_status() {
    let server = start(Router::new().post("/todos/{list}", create_todo)).await;
    let post = |content_type: &str, body: &str| {
        format!(
            "POST /todos/mine HTTP/1.1\r\nHost: x\r\n{content_type}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    let json = "Content-Type: application/json; charset=utf-8\r\n";
    let (response, body) = text(&server, &post(json, r#"{"title":"milk"}"#)).await;
    assert_eq!(response.status, 201, "{body}");
    assert_eq!(body, r#"{"title":"milk"}"#);
    assert_eq!(response.header("content-type"), Some("application/json"));
    let (response, body) = text(&server, &post("", r#"{"title":"milk"}"#)).await;
    assert_eq!(response.status, 415, "{body}");
    let (response, body) = text(&server, &post(json, "{not json")).await;
    assert_eq!(response.status, 400, "{body}");
    let (response, body) = text(&server, &post(json, r#"{"name":"milk"}"#)).await;
    assert_eq!(response.status, 422, "{body}");
    assert!(body.contains("title"), "{body}");
    let (response, _) = text(
        &server,
        &post(
            "Content-Type: application/problem+json\r\n",
            r#"{"title":"x"}"#,
        ),
    )
    .await;
    assert_eq!(response.status, 201);
    server.shutdown().await.unwrap();
}

/// State given to `Router::with_state` reaches the actions that ask for it,
/// a clone per request, next to actions that take the context alone.
#[tokio::test]
async fn typed_state_reaches_actions() {
    use rill::State;
    use std::sync::atomic::{AtomicU64, Ordering};

    async fn hit(State(hits): State<Arc<AtomicU64>>, ctx: Context) -> String {
        let n = hits.fetch_add(1, Ordering::Relaxed) + 1;
        format!("{} {n}\n", ctx.param("who").unwrap_or_default())
    }
    async fn plain(_ctx: Context) -> &'static str {
        "plain\n"
    }
    let hits = Arc::new(AtomicU64::new(0));
    let service = Router::with_state(hits.clone())
        .get("/hit/{who}", hit)
        .post("/hit/{who}", hit)
        .get("/plain", plain)
        .into_service();
    for (method, path, want) in [
        ("GET", "/hit/ann", "ann 1\n"),
        ("POST", "/hit/bob", "bob 2\n"),
        ("GET", "/plain", "plain\n"),
    ] {
        let request = http::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "t")
            .body(String::new())
            .unwrap();
        let response = service.handle(request).await.into_http();
        let body = http_body_util::BodyExt::collect(response.into_body())
            .await
            .unwrap()
            .to_bytes();
        assert_eq!(body, want, "{method} {path}");
    }
    assert_eq!(hits.load(Ordering::Relaxed), 2);
}
