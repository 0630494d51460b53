//! The Redis backend's publisher: one task that sends publications in the
//! order `publish` was called, pipelined.
//!
//! `publish` hands its job to this task before it returns its future, so
//! the order of calls — a loop of `Broker::publish_detached`, an
//! ActionCable `broadcast` — is the order Redis assigns offsets in, however
//! the callers' futures are later polled. The task takes every job waiting
//! (up to [`BATCH`]) and sends them as one pipeline: one round trip for a
//! burst. Consecutive jobs of one channel (up to [`PER_CALL`]) share one
//! `EVALSHA` of the publish script, which numbers them in their order —
//! Redis runs one script call where it would run one per publication. A
//! script cache emptied by a Redis restart answers `NOSCRIPT`: the task
//! loads the script and sends again, in order, the jobs that failed — only
//! a suffix of the batch can have failed, as only a `SCRIPT FLUSH` between
//! two commands splits a batch.

use redis::{aio::ConnectionManager, Value};
use tokio::sync::{mpsc, oneshot};

use super::{position, RedisConfig};
use crate::broker::{error::BackendError, message::Position};

/// Publications sent in one pipeline at most.
const BATCH: usize = 256;

/// Publications of one channel placed by one script call at most (Redis
/// runs nothing else meanwhile).
const PER_CALL: usize = 64;

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
        let calls = calls(batch);
        let answers = match pipeline(config, connection, script, batch, &calls).await {
            Ok(answers) => answers,
            Err(error) => {
                for job in batch.drain(..) {
                    fail(job, &error);
                }
                return Err(error);
            }
        };
        let mut retry = Vec::new();
        let mut jobs = batch.drain(..);
        for (&count, answer) in calls.iter().zip(answers) {
            let call = jobs.by_ref().take(count);
            match answer {
                Value::ServerError(error) if error.code() == "NOSCRIPT" && !loaded => {
                    retry.extend(call);
                }
                answer => match placed(answer) {
                    Ok(first) => {
                        for (i, job) in call.enumerate() {
                            let offset = first.offset() + i as u64;
                            let position = Position::new(first.epoch().clone(), offset);
                            let _ = job.reply.send(Ok(position));
                        }
                    }
                    Err(error) => {
                        let error = error.to_string();
                        for job in call {
                            fail(job, &error);
                        }
                    }
                },
            }
        }
        drop(jobs);
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

/// How many jobs each script call places: runs of consecutive jobs of one
/// channel, at most [`PER_CALL`] each, in the batch's order.
fn calls(batch: &[Job]) -> Vec<usize> {
    let mut calls: Vec<usize> = Vec::new();
    let mut previous: Option<&str> = None;
    for job in batch {
        match calls.last_mut() {
            Some(count) if previous == Some(job.channel.as_str()) && *count < PER_CALL => {
                *count += 1;
            }
            _ => calls.push(1),
        }
        previous = Some(&job.channel);
    }
    calls
}

async fn pipeline(
    config: &RedisConfig,
    connection: &mut ConnectionManager,
    script: &redis::Script,
    batch: &[Job],
    calls: &[usize],
) -> Result<Vec<Value>, String> {
    let meta_ttl = config.meta_ttl.max(config.history_age);
    let mut pipe = redis::pipe();
    pipe.ignore_errors();
    let mut rest = batch;
    for &count in calls {
        let (call, after) = rest.split_at(count.min(rest.len()));
        rest = after;
        let Some((job, more)) = call.split_first() else {
            continue;
        };
        let command = pipe
            .cmd("EVALSHA")
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
        for job in more {
            command.arg(&job.body);
        }
    }
    match tokio::time::timeout(config.timeout, pipe.query_async::<Vec<Value>>(connection)).await {
        Ok(Ok(answers)) if answers.len() == calls.len() => Ok(answers),
        Ok(Ok(answers)) => Err(format!(
            "Redis answered {} of {} publish calls",
            answers.len(),
            calls.len()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn jobs(channels: &[&str]) -> Vec<Job> {
        channels
            .iter()
            .map(|channel| Job {
                channel: (*channel).to_owned(),
                body: String::new(),
                epoch: String::new(),
                reply: oneshot::channel().0,
            })
            .collect()
    }

    #[test]
    fn a_call_places_a_run_of_one_channel_in_order() {
        assert_eq!(calls(&jobs(&["a", "a", "b", "a", "a", "a"])), [2, 1, 3]);
        assert_eq!(calls(&jobs(&["a"])), [1]);
        assert!(calls(&[]).is_empty());
    }

    #[test]
    fn a_long_run_is_split_at_per_call() {
        let run = vec!["hot"; PER_CALL * 2 + 3];
        assert_eq!(calls(&jobs(&run)), [PER_CALL, PER_CALL, 3]);
    }
}
