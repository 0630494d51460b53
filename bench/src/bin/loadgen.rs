//! The benchmark suite: starts rill's `bench_server`, `axum_server` and
//! `hyper_server` in alternation, runs every scenario, prints medians and
//! ratios, and writes `bench/results/latest.json`.
//!
//! Run with: `bash scripts/bench.sh [--quick] [--rounds N] [--only burst,live]`.

use rill_bench::report::{print_table, to_json, ScenarioResult};
use rill_bench::scenarios::{client_ceiling, run, Config, SCENARIOS};
use rill_bench::servers::{raise_nofile, Server};
use serde_json::json;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const USAGE: &str =
    "loadgen [--quick] [--rounds N] [--only ID,ID] [--idle-conns N] [--cpu-secs N] \
[--cable-subs N] [--cable-events N] [--cable-interval-ms N] [--state-subs N] [--state-updates N] \
[--state-items N] [--release-dir DIR] [--out FILE]\n\
scenarios: burst live idle disconnect fanout paced backlog\n\
           ws_fanout ws_idle ws_disconnect ws_echo ws_oneway cable_fanout state_fanout";

struct Args {
    quick: bool,
    rounds: usize,
    only: Option<Vec<String>>,
    cfg: Config,
    release_dir: PathBuf,
    out: PathBuf,
}

fn parse_args() -> Result<Args, String> {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let root = manifest.parent().map_or(manifest.clone(), PathBuf::from);
    let raw: Vec<String> = std::env::args().skip(1).collect();
    let quick = raw.iter().any(|a| a == "--quick");
    let mut args = Args {
        quick,
        rounds: if quick { 1 } else { 3 },
        only: None,
        cfg: if quick {
            Config::quick()
        } else {
            Config::full()
        },
        release_dir: root.join("target/release"),
        out: root.join("bench/results/latest.json"),
    };
    let mut it = raw.into_iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        let number = |v: String| v.parse::<usize>().map_err(|e| format!("{v}: {e}"));
        match arg.as_str() {
            "--quick" => {}
            "--rounds" => args.rounds = number(value("--rounds")?)?.max(1),
            "--only" => args.only = Some(value("--only")?.split(',').map(str::to_owned).collect()),
            "--idle-conns" => args.cfg.idle_conns = number(value("--idle-conns")?)?,
            "--cpu-secs" => args.cfg.cpu_secs = number(value("--cpu-secs")?)? as u64,
            "--cable-subs" => args.cfg.cable_subs = number(value("--cable-subs")?)?.max(1),
            "--cable-events" => args.cfg.cable_events = number(value("--cable-events")?)?.max(1),
            "--cable-interval-ms" => {
                args.cfg.cable_interval_ms = number(value("--cable-interval-ms")?)?.max(1) as u64;
            }
            "--state-subs" => args.cfg.state_subs = number(value("--state-subs")?)?.max(1),
            "--state-updates" => {
                args.cfg.state_updates = number(value("--state-updates")?)?.max(1);
            }
            "--state-items" => args.cfg.state_items = number(value("--state-items")?)?.max(1),
            "--release-dir" => args.release_dir = PathBuf::from(value("--release-dir")?),
            "--out" => args.out = PathBuf::from(value("--out")?),
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    Ok(args)
}

/// With `--only`, the scenarios not run this time are carried over from the
/// existing report, so one scenario can be re-measured on its own.
fn keep_other_scenarios(report: &mut serde_json::Value, out: &std::path::Path) {
    let Ok(text) = std::fs::read_to_string(out) else {
        return;
    };
    let Ok(old) = serde_json::from_str::<serde_json::Value>(&text) else {
        return;
    };
    let Some(old_scenarios) = old["scenarios"].as_array() else {
        return;
    };
    let fresh: Vec<serde_json::Value> = report["scenarios"].as_array().cloned().unwrap_or_default();
    let mut merged = Vec::new();
    for scenario in SCENARIOS {
        let pick =
            |list: &[serde_json::Value]| list.iter().find(|s| s["id"] == scenario.id).cloned();
        if let Some(s) = pick(&fresh).or_else(|| pick(old_scenarios)) {
            merged.push(s);
        }
    }
    report["scenarios"] = serde_json::Value::Array(merged);
    report["meta"]["merged_from_previous"] = old["meta"].clone();
}

fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    // Client sockets plus the servers' (which inherit this limit): each
    // process holds one end of every connection of the largest run.
    let most = [
        args.cfg.idle_conns,
        args.cfg.ws_idle_conns,
        args.cfg.cable_subs,
        args.cfg.state_subs,
    ];
    let want = (most.into_iter().max().unwrap_or(0) + 2048) as u64;
    let nofile = raise_nofile(want).unwrap_or_else(|e| {
        eprintln!("cannot raise RLIMIT_NOFILE: {e}");
        0
    });
    if nofile < want {
        eprintln!("warning: RLIMIT_NOFILE is {nofile}, the largest run wants {want}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tokio runtime: {e}");
            std::process::exit(1);
        }
    };
    let started = Instant::now();

    println!(
        "client ceiling (parser alone, {} × {} B)…",
        args.cfg.burst_n, args.cfg.burst_size
    );
    let ceiling = client_ceiling(args.cfg.burst_n, args.cfg.burst_size);
    let ceiling_json = match &ceiling {
        Ok((plain, chunked)) => {
            println!(
                "  content-length body: {:.1} M events/s; one chunk per event: {:.1} M events/s",
                plain / 1e6,
                chunked / 1e6
            );
            json!({"parse_only_events_per_s": plain.round(), "parse_only_chunk_per_event_events_per_s": chunked.round()})
        }
        Err(e) => json!({"error": e}),
    };

    let mut results = Vec::new();
    for scenario in SCENARIOS {
        if let Some(only) = &args.only {
            if !only.iter().any(|o| o == scenario.id) {
                continue;
            }
        }
        let mut result = ScenarioResult::new(*scenario);
        for round in 0..args.rounds {
            for &kind in scenario.servers {
                let t0 = Instant::now();
                let outcome = match Server::start(kind, &args.release_dir) {
                    Ok(server) => {
                        // Let the previous server's sockets settle out of the way.
                        std::thread::sleep(Duration::from_millis(100));
                        let out = runtime.block_on(run(scenario, &server, &args.cfg));
                        drop(server);
                        out
                    }
                    Err(e) => Err(e),
                };
                let shown = match &outcome {
                    Ok(v) => format!("{v:.3?}"),
                    Err(e) => format!("ERROR {e}"),
                };
                println!(
                    "{:<10} round {round} {:<5} {shown} ({:.1} s)",
                    scenario.id,
                    kind.name(),
                    t0.elapsed().as_secs_f64()
                );
                result.record(kind, round, outcome);
            }
        }
        results.push(result);
    }
    print_table(&results);

    let client_vs_hyper = results
        .iter()
        .find(|r| r.scenario.id == "burst")
        .map(|r| r.median(rill_bench::servers::Kind::Hyper, 0))
        .filter(|x| x.is_finite());
    if let Some(x) = client_vs_hyper {
        println!(
            "\nclient ceiling over loopback (raw hyper, pre-encoded body): {:.1} M events/s",
            x / 1e6
        );
    }
    let meta = json!({
        "quick": args.quick,
        "rounds": args.rounds,
        "config": format!("{:?}", args.cfg),
        "cores": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "rlimit_nofile": nofile,
        "unix_time": SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        "elapsed_s": started.elapsed().as_secs(),
        "client": {
            "ceiling": ceiling_json,
            "loopback_raw_hyper_burst_events_per_s": client_vs_hyper,
        },
    });
    let mut report = to_json(&results, meta);
    if args.only.is_some() {
        keep_other_scenarios(&mut report, &args.out);
    }
    if let Some(dir) = args.out.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    match serde_json::to_string_pretty(&report).map(|s| std::fs::write(&args.out, s + "\n")) {
        Ok(Ok(())) => println!("wrote {}", args.out.display()),
        Ok(Err(e)) => eprintln!("cannot write {}: {e}", args.out.display()),
        Err(e) => eprintln!("cannot encode the report: {e}"),
    }
}
