//! Run with: cargo run -p controllers-example -- --addr 127.0.0.1:3000
//!
//! Prints `listening on http://IP:PORT` as its first line on stdout, then
//! serves until Ctrl-C or SIGTERM, when it shuts down gracefully.
//!
//! The server's limits can be set from the command line (see `--help`); the
//! attack suite uses them to run its deadlines in seconds, not minutes.

use std::{io::Write, process::ExitCode, time::Duration};

const USAGE: &str = "usage: controllers-example [--addr IP:PORT] [--header-read-timeout DUR]
       [--idle-timeout DUR] [--body-read-timeout DUR] [--body-idle-timeout DUR]
       [--max-connections N] [--shutdown-deadline DUR] [--cable-secret KEY]
       [--redis URL] [--redis-prefix PREFIX] [--redis-presence-ttl DUR] [--redis-history N]
DUR is a number of seconds or milliseconds: 30s, 500ms
--redis (or REDIS_URL): the hub, the cable and the state store on Redis, shared by every
process started with the same URL and prefix (default prefix: rill:)
--redis-presence-ttl: how long the members of a process that died stay present on Redis
(default 60s); each process refreshes its own every third of it
--redis-history: publications kept per channel on Redis for resuming clients (default 1000)";

/// The command line.
#[derive(Debug, Default)]
struct Options {
    addr: Option<String>,
    header_read_timeout: Option<Duration>,
    idle_timeout: Option<Duration>,
    body_read_timeout: Option<Duration>,
    body_idle_timeout: Option<Duration>,
    max_connections: Option<usize>,
    shutdown_deadline: Option<Duration>,
    /// The key cable tokens are signed with (a random one per start without).
    cable_secret: Option<String>,
    /// Redis for the hub's, the cable's and the state store's brokers (`--redis`, `REDIS_URL`).
    redis: Option<String>,
    /// Their key prefix.
    redis_prefix: Option<String>,
    /// Their presence TTL (`RedisConfig::presence_ttl`; 60 s without).
    redis_presence_ttl: Option<Duration>,
    /// Their history length (`RedisConfig::history`; 1,000 without).
    redis_history: Option<usize>,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Colours only for a terminal, not for a log file or a pipe.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();

    let options = match parse_args(std::env::args().skip(1)) {
        Ok(Some(options)) => options,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("{message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };

    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(options: Options) -> Result<(), rill::ServeError> {
    let addr = options.addr.as_deref().unwrap_or("127.0.0.1:3000");
    let mut server = rill::Server::bind(addr).await?;
    if let Some(timeout) = options.header_read_timeout {
        server = server.header_read_timeout(timeout);
    }
    if let Some(timeout) = options.idle_timeout {
        server = server.idle_timeout(timeout);
    }
    if let Some(max) = options.max_connections {
        server = server.max_connections(max);
    }
    if let Some(deadline) = options.shutdown_deadline {
        server = server.shutdown_deadline(deadline);
    }
    if let Some(timeout) = options.body_read_timeout {
        server = server.body_read_timeout(timeout);
    }
    if let Some(timeout) = options.body_idle_timeout {
        server = server.body_idle_timeout(timeout);
    }
    let secret = match &options.cable_secret {
        Some(key) => controllers_example::cable_token::CableSecret::new(key),
        None => controllers_example::cable_token::CableSecret::random(),
    };
    let backends = match &options.redis {
        Some(url) => {
            let redis = controllers_example::RedisOptions {
                prefix: options
                    .redis_prefix
                    .clone()
                    .unwrap_or_else(|| "rill:".to_owned()),
                presence_ttl: options.redis_presence_ttl,
                history: options.redis_history,
            };
            match controllers_example::Backends::redis(url, &redis).await {
                Ok(backends) => {
                    let prefix = &redis.prefix;
                    eprintln!("the hub and the cable on Redis at {url} (prefix {prefix})");
                    backends
                }
                Err(error) => {
                    return Err(rill::ServeError::Io(std::io::Error::other(format!(
                        "Redis at {url}: {error}"
                    ))))
                }
            }
        }
        None => controllers_example::Backends::default(),
    };
    let app = controllers_example::app_on(secret, backends);
    println!("listening on http://{}", server.local_addr()?);
    let _ = std::io::stdout().flush();
    server
        .serve_with_shutdown(app, rill::shutdown_signal())
        .await
}

/// The options, or `None` for `--help`.
fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Options>, String> {
    let mut options = Options::default();
    while let Some(arg) = args.next() {
        if arg == "--help" || arg == "-h" {
            return Ok(None);
        }
        let (name, value) = match arg.split_once('=') {
            Some((name, value)) => (name.to_owned(), value.to_owned()),
            None => {
                let value = args.next().ok_or_else(|| format!("{arg} needs a value"))?;
                (arg, value)
            }
        };
        match name.as_str() {
            "--addr" => options.addr = Some(value),
            "--cable-secret" if value.is_empty() => {
                return Err("--cable-secret: the key must not be empty".to_owned())
            }
            "--cable-secret" => options.cable_secret = Some(value),
            "--redis" => options.redis = Some(value),
            "--redis-prefix" => options.redis_prefix = Some(value),
            "--redis-presence-ttl" => options.redis_presence_ttl = Some(duration(&value)?),
            "--header-read-timeout" => options.header_read_timeout = Some(duration(&value)?),
            "--idle-timeout" => options.idle_timeout = Some(duration(&value)?),
            "--body-read-timeout" => options.body_read_timeout = Some(duration(&value)?),
            "--body-idle-timeout" => options.body_idle_timeout = Some(duration(&value)?),
            "--shutdown-deadline" => options.shutdown_deadline = Some(duration(&value)?),
            "--redis-history" => {
                options.redis_history = Some(
                    value
                        .parse()
                        .map_err(|_| format!("--redis-history: {value:?} is not a count"))?,
                )
            }
            "--max-connections" => {
                options.max_connections = Some(
                    value
                        .parse()
                        .map_err(|_| format!("--max-connections: {value:?} is not a count"))?,
                )
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if options.redis.is_none() {
        options.redis = std::env::var("REDIS_URL")
            .ok()
            .filter(|url| !url.is_empty());
    }
    Ok(Some(options))
}

/// `30s`, `500ms` or a bare number of seconds.
fn duration(value: &str) -> Result<Duration, String> {
    let bad = || format!("{value:?} is not a duration (30s, 500ms)");
    if let Some(ms) = value.strip_suffix("ms") {
        return ms.parse().map(Duration::from_millis).map_err(|_| bad());
    }
    let secs = value.strip_suffix('s').unwrap_or(value);
    secs.parse().map(Duration::from_secs).map_err(|_| bad())
}
