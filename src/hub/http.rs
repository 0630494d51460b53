//! [`Hub::mount`]: a hub's HTTP endpoints on a router in one line.

use http::StatusCode;
use serde_json::Value;

use super::{Filter, Hub, Subscription};
use crate::broker::PublishError;
use crate::{context::Context, response::Response, router::Router, sse::Event};

impl Hub {
    /// Mounts the hub's endpoints under `path`:
    ///
    /// * `GET <path>?channel=a&channel=b` — subscribe (SSE); `presence=1`
    ///   asks for presence events; other query parameters become metadata
    ///   only with
    ///   [`metadata_from_query`](super::HubBuilder::metadata_from_query);
    /// * `GET <path>/stats` — [`HubStats`](super::HubStats) as JSON, with
    ///   subscribers per channel for the busiest channels; on a shared
    ///   backend (Redis) summed over every process, with `"nodes"`
    ///   ([`Hub::cluster_stats`]); `?local=1` for this process alone;
    /// * `POST <path>/broadcast` — only with
    ///   [`http_broadcast(true)`](super::HubBuilder::http_broadcast): a JSON
    ///   body `{"channel": "…", "event": "…", "data": …, "filter": {"k": "v"}}`
    ///   (`event` and `filter` optional; `data` a string, or any JSON value,
    ///   sent as compact JSON). Answers `200 {"id": "<epoch>-<offset>"}`,
    ///   `400` with the reason for a bad body, `503` past the channel cap or
    ///   when the backend fails, `403` when
    ///   [`authorize_broadcast`](super::HubBuilder::authorize_broadcast)
    ///   refuses.
    ///
    /// ```
    /// use rill::{hub::Hub, Router};
    ///
    /// let hub = Hub::builder().http_broadcast(true).build();
    /// let router = hub.mount(Router::new(), "/hub");
    /// ```
    ///
    /// # Panics
    ///
    /// When `path` does not start with `/` (see [`Router::route`]).
    pub fn mount<S: Clone + Send + Sync + 'static>(
        &self,
        router: Router<S>,
        path: &str,
    ) -> Router<S> {
        let base = path.trim_end_matches('/');
        let subscribe_path = if base.is_empty() { "/" } else { base };
        let hub = self.clone();
        let mut router = router
            .get(subscribe_path, move |ctx: Context| {
                let hub = hub.clone();
                async move { hub.subscribe(ctx, Subscription::new()) }
            })
            .get(&format!("{base}/stats"), {
                let hub = self.clone();
                move |ctx: Context| {
                    let hub = hub.clone();
                    let local = ctx.query("local").is_some_and(|v| v == "1" || v == "true");
                    async move {
                        if hub.inner.broker.backend().shared() && !local {
                            // Every process's figures, summed.
                            return match hub.cluster_stats(true).await {
                                Ok(stats) => Response::json(&stats),
                                Err(error) => Response::json(
                                    &serde_json::json!({ "error": error.to_string() }),
                                )
                                .with_status(StatusCode::SERVICE_UNAVAILABLE),
                            };
                        }
                        // Walking many channels is CPU work: off the
                        // runtime's threads.
                        match tokio::task::spawn_blocking(move || hub.stats(true).to_json()).await {
                            Ok(json) => Response::json_string(json),
                            Err(_) => Response::text("stats failed\n")
                                .with_status(StatusCode::INTERNAL_SERVER_ERROR),
                        }
                    }
                }
            });
        if self.inner.http_broadcast {
            let hub = self.clone();
            router = router.post(&format!("{base}/broadcast"), move |ctx: Context| {
                let hub = hub.clone();
                async move { hub.broadcast_request(&ctx).await }
            });
        }
        router
    }

    async fn broadcast_request(&self, ctx: &Context) -> Response {
        let request = match BroadcastRequest::parse(ctx.body()) {
            Ok(request) => request,
            Err(reason) => return bad_request(&reason),
        };
        if let Some(authorize) = &self.inner.authorize_broadcast {
            if !authorize(ctx, &request.channel) {
                return Response::text("forbidden\n").with_status(StatusCode::FORBIDDEN);
            }
        }
        let mut event = Event::data(request.data);
        if let Some(name) = request.event {
            event = event.event(name);
        }
        match self
            .publish_filtered(&request.channel, event, request.filter)
            .await
        {
            Ok(id) => {
                Response::json_string(serde_json::json!({ "id": id.to_string() }).to_string())
            }
            Err(error) => error.into(),
        }
    }
}

impl From<PublishError> for Response {
    /// What a publish that failed answers, as `POST <path>/broadcast` does:
    /// `400 {"error": …}` for an invalid event or channel name, `503` past
    /// the channel cap or when the backend fails (the cause logged, not
    /// shown). So `?` works in an action returning `Result<Response, Response>`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use rill::{hub::Hub, sse::Event, Response};
    ///
    /// async fn announce(hub: &Hub, room: &str) -> Result<Response, Response> {
    ///     let id = hub.publish(room, Event::data("hello")).await?;
    ///     Ok(Response::json(&serde_json::json!({ "id": id.to_string() })))
    /// }
    /// let refused = announce(&Hub::new(), "").await.unwrap_err();
    /// assert_eq!(refused.status(), rill::http::StatusCode::BAD_REQUEST);
    /// # }
    /// ```
    fn from(error: PublishError) -> Response {
        match error {
            PublishError::TooManyChannels { max } => Response::json(
                &serde_json::json!({ "error": format!("too many channels (at most {max})") }),
            )
            .with_status(StatusCode::SERVICE_UNAVAILABLE),
            PublishError::Backend(error) => {
                tracing::warn!(%error, "publish failed");
                Response::json(&serde_json::json!({ "error": "backend unavailable" }))
                    .with_status(StatusCode::SERVICE_UNAVAILABLE)
            }
            error => bad_request(&format!("invalid event: {error}")),
        }
    }
}

fn bad_request(reason: &str) -> Response {
    Response::json_string(serde_json::json!({ "error": reason }).to_string())
        .with_status(StatusCode::BAD_REQUEST)
}

/// A validated `POST <path>/broadcast` body.
struct BroadcastRequest {
    channel: String,
    event: Option<String>,
    data: String,
    filter: Filter,
}

impl BroadcastRequest {
    fn parse(body: &[u8]) -> Result<BroadcastRequest, String> {
        let value: Value =
            serde_json::from_slice(body).map_err(|e| format!("body is not valid JSON: {e}"))?;
        let Value::Object(mut fields) = value else {
            return Err("body must be a JSON object".into());
        };
        let channel = match fields.remove("channel") {
            Some(Value::String(channel)) if !channel.is_empty() => channel,
            Some(Value::String(_)) => return Err("field channel must not be empty".into()),
            Some(_) => return Err("field channel must be a string".into()),
            None => return Err("field channel is missing".into()),
        };
        let event = match fields.remove("event") {
            None | Some(Value::Null) => None,
            Some(Value::String(event)) => Some(event),
            Some(_) => return Err("field event must be a string".into()),
        };
        let data = match fields.remove("data") {
            Some(Value::String(data)) => data,
            Some(Value::Null) | None => return Err("field data is missing".into()),
            Some(other) => other.to_string(),
        };
        let filter = match fields.remove("filter") {
            None | Some(Value::Null) => Filter::new(),
            Some(Value::Object(pairs)) => {
                let mut filter = Filter::new();
                for (name, value) in pairs {
                    match value {
                        Value::String(value) => filter = filter.eq(name, value),
                        _ => return Err(format!("filter value of {name} must be a string")),
                    }
                }
                filter
            }
            Some(_) => return Err("field filter must be an object of strings".into()),
        };
        if let Some(unknown) = fields.keys().next() {
            return Err(format!("unknown field {unknown}"));
        }
        Ok(BroadcastRequest {
            channel,
            event,
            data,
            filter,
        })
    }
}
