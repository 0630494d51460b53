//! The Redis backend's publisher: one task that sends publications in the
//! order `publish` was called, pipelined.
//!
//! `publish` hands its job to this task before it returns its future, so
//! the order of calls — a loop of `Broker::publish_detached`, an
//! ActionCable `broadcast` — is the order Redis assigns offsets in, however
//! the callers' futures are later polled. The task takes every job waiting
//! (up to [`BATCH`]) and sends them as one pipeline of `EVALSHA`s: one round
//! trip for a burst. A script cache emptied by a Redis restart answers
//! `NOSCRIPT`: the task loads the script and sends again, in order, the
//! jobs that failed — only a suffix of the batch can have failed, as only a
//! `SCRIPT FLUSH` between two commands splits a batch.

use redis::{aio::ConnectionManager, Value};
use tokio::sync::{mpsc, oneshot};

use super::{position, RedisConfig};
use crate::broker::{error::BackendError, message::Position};

/// Publications sent in one pipeline at most.
const BATCH: usize = 256;

/// One publication waiting for its position.
pub(super) struct Job {
    pub(super) channel: String,
    pub(super) body: String,
    pub(super) epoch: String,
    pub(super) reply: oneshot::Sender<Result<Position, BackendError>>,
}

pub(super) async fn run(
    config: RedisConfig,
    mut connection: ConnectionManager,
    script: redis::Script,
    mut jobs: mpsc::UnboundedReceiver<Job>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    while let Some(job) = jobs.recv().await {
        batch.push(job);
        while batch.len() < BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if let Err(error) = send(&config, &mut connection, &script, &mut batch).await {
            // Redis is unreachable: what queued up meanwhile fails at once
            // too, rather than wait its turn for the same error.
            while let Ok(job) = jobs.try_recv() {
                fail(job, &error);
            }
        }
    }
}

fn fail(job: Job, error: &str) {
    let _ = job
        .reply
        .send(Err(BackendError::Unavailable(error.to_owned().into())));
}

/// Sends `batch` (emptying it): every job gets its position or an error;
/// `Err` when Redis could not be reached at all.
async fn send(
    config: &RedisConfig,
    connection: &mut ConnectionManager,
    script: &redis::Script,
    batch: &mut Vec<Job>,
) -> Result<(), String> {
    let mut loaded = false;
    while !batch.is_empty() {
        let answers = match pipeline(config, connection, script, batch).await {
            Ok(answers) => answers,
            Err(error) => {
                for job in batch.drain(..) {
                    fail(job, &error);
                }
                return Err(error);
            }
        };
        let mut retry = Vec::new();
        for (job, answer) in batch.drain(..).zip(answers) {
            match answer {
                Value::ServerError(error) if error.code() == "NOSCRIPT" && !loaded => {
                    retry.push(job);
                }
                answer => {
                    let _ = job.reply.send(placed(answer));
                }
            }
        }
        if retry.is_empty() {
            return Ok(());
        }
        // Redis lost its script cache (a restart): load, then resend the
        // failed suffix in its order.
        let load = tokio::time::timeout(config.timeout, script.load_async(connection)).await;
        if !matches!(load, Ok(Ok(_))) {
            let error = "the publish script could not be loaded";
            for job in retry {
                fail(job, error);
            }
            return Err(error.to_owned());
        }
        loaded = true;
        *batch = retry;
    }
    Ok(())
}

async fn pipeline(
    config: &RedisConfig,
    connection: &mut ConnectionManager,
    script: &redis::Script,
    batch: &[Job],
) -> Result<Vec<Value>, String> {
    let meta_ttl = config.meta_ttl.max(config.history_age);
    let mut pipe = redis::pipe();
    pipe.ignore_errors();
    for job in batch {
        pipe.cmd("EVALSHA")
            .arg(script.get_hash())
            .arg(2)
            .arg(config.key(&job.channel, "meta"))
            .arg(config.key(&job.channel, "log"))
            .arg(config.pubsub_channel(&job.channel))
            .arg(&job.body)
            .arg(&job.epoch)
            .arg(config.history)
            .arg(seconds(config.history_age))
            .arg(seconds(meta_ttl));
    }
    match tokio::time::timeout(config.timeout, pipe.query_async::<Vec<Value>>(connection)).await {
        Ok(Ok(answers)) if answers.len() == batch.len() => Ok(answers),
        Ok(Ok(answers)) => Err(format!(
            "Redis answered {} of {} publications",
            answers.len(),
            batch.len()
        )),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err("Redis did not answer in time".to_owned()),
    }
}

/// The position the publish script answered, or why there is none.
fn placed(answer: Value) -> Result<Position, BackendError> {
    let text = |value: &Value| match value {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        Value::SimpleString(text) => Some(text.clone()),
        Value::Int(n) => Some(n.to_string()),
        _ => None,
    };
    match &answer {
        Value::Array(items) if items.len() == 2 => {
            let (Some(epoch), Some(offset)) = (text(&items[0]), text(&items[1])) else {
                return Err(invalid(&answer));
            };
            position(&epoch, &offset).ok_or_else(|| invalid(&answer))
        }
        Value::ServerError(error) => Err(BackendError::Unavailable(error.to_string().into())),
        _ => Err(invalid(&answer)),
    }
}

fn invalid(answer: &Value) -> BackendError {
    BackendError::Unavailable(format!("Redis answered an invalid position {answer:?}").into())
}

/// Whole seconds for EXPIRE, at least 1 for a non-zero duration.
pub(super) fn seconds(duration: std::time::Duration) -> u64 {
    duration.as_secs().max(u64::from(!duration.is_zero()))
}
