//! The Autobahn testsuite's cases 1–7, 9 and 10 (framing, pings, reserved
//! bits, opcodes, fragmentation, UTF-8, close handling, large messages,
//! auto-fragmentation) against the example's raw echo endpoint
//! `GET /ws/echo`, run by the PyPI package `kosoku` (pinned 0.1.0, installed
//! in `.test-deps/venv` by `bash scripts/setup-test-deps.sh`).
//!
//! A case passes when its `behavior` is OK, NON-STRICT or INFORMATIONAL and
//! its `behaviorClose` is OK or INFORMATIONAL, as Autobahn's own reports
//! grade them.

use std::{path::Path, process::Stdio, time::Duration};
use tokio::process::Command;

const KOSOKU: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../.test-deps/venv/bin/kosoku");
const CASES: [&str; 9] = [
    "1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "9.*", "10.*",
];
/// The whole run is bounded; on this machine it takes about a minute.
const LIMIT: Duration = Duration::from_secs(900);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autobahn_cases_pass_against_the_echo_endpoint() {
    assert!(
        Path::new(KOSOKU).is_file(),
        "{KOSOKU} is missing: run `bash scripts/setup-test-deps.sh` first"
    );
    let server = rill::Server::bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.serve(controllers_example::app()));

    let report = std::env::temp_dir().join(format!("rill-autobahn-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&report);
    let mut command = Command::new(KOSOKU);
    command.arg(format!("ws://{addr}/ws/echo"));
    for case in CASES {
        command.args(["-i", case]);
    }
    let mut child = command
        .arg("-o")
        .arg(&report)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start kosoku");
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let output = tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        let (mut out, mut err) = (String::new(), String::new());
        let (mut stdout, mut stderr) = (stdout, stderr);
        let _ = tokio::join!(
            stdout.read_to_string(&mut out),
            stderr.read_to_string(&mut err)
        );
        format!("{out}\n{err}")
    });
    let status = match tokio::time::timeout(LIMIT, child.wait()).await {
        Ok(status) => status.unwrap(),
        Err(_) => {
            child.kill().await.unwrap();
            panic!("kosoku ran over {LIMIT:?}: {}", output.await.unwrap());
        }
    };
    let output = output.await.unwrap();

    let index = std::fs::read_to_string(report.join("index.json"))
        .unwrap_or_else(|e| panic!("no report ({e}); kosoku said ({status}): {output}"));
    let index: serde_json::Value = serde_json::from_str(&index).unwrap();
    let agents = index.as_object().expect("an object of agents");
    assert_eq!(agents.len(), 1, "{index}");
    let cases = agents.values().next().unwrap().as_object().unwrap();
    let failed: Vec<String> = cases
        .iter()
        .filter(|(_, result)| {
            let behavior = result["behavior"].as_str().unwrap_or("");
            let close = result["behaviorClose"].as_str().unwrap_or("");
            !matches!(behavior, "OK" | "NON-STRICT" | "INFORMATIONAL")
                || !matches!(close, "OK" | "INFORMATIONAL")
        })
        .map(|(case, result)| format!("{case}: {result}"))
        .collect();
    // 1.* to 7.*, 9.* and 10.* hold 301 cases.
    assert_eq!(cases.len(), 301, "cases run: {}", cases.len());
    assert!(failed.is_empty(), "failing cases:\n{}", failed.join("\n"));
    let _ = std::fs::remove_dir_all(&report);
}
