//! Run with: cargo run -p controllers-example -- --addr 127.0.0.1:3000
//!
//! Prints `listening on http://IP:PORT` as its first line on stdout, then
//! serves until Ctrl-C, when it shuts down gracefully.

use std::{io::Write, process::ExitCode};

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();

    let addr = match parse_addr(std::env::args().skip(1)) {
        Ok(addr) => addr,
        Err(message) => {
            eprintln!("{message}\nusage: controllers-example [--addr IP:PORT]");
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
    match runtime.block_on(run(&addr)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(addr: &str) -> Result<(), rill::ServeError> {
    let server = rill::Server::bind(addr).await?;
    println!("listening on http://{}", server.local_addr()?);
    let _ = std::io::stdout().flush();
    server
        .serve_with_shutdown(controllers_example::app(), async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
}

fn parse_addr(mut args: impl Iterator<Item = String>) -> Result<String, String> {
    let mut addr = String::from("127.0.0.1:3000");
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--addr" => addr = args.next().ok_or("--addr needs a value")?,
            other => match other.strip_prefix("--addr=") {
                Some(value) => addr = value.to_owned(),
                None => return Err(format!("unknown argument {other:?}")),
            },
        }
    }
    Ok(addr)
}
