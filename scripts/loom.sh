#!/usr/bin/env bash
# Runs the loom models: the pipe's (src/pipe/loom_tests.rs: every
# interleaving of writer, body and closer, against the invariants written in
# src/pipe/mod.rs) and a WebSocket's shared state's (src/ws/loom_tests.rs:
# senders, driver and handler, against src/ws/shared.rs) and the broker's
# hand-off to fan-out tasks (src/broker/loom_tests.rs, against
# src/broker/handoff.rs) and a cable connection's outbox
# (src/cable/loom_tests.rs, against src/cable/outbox.rs).
#
# `--cfg loom` goes to rill alone (through `cargo rustc`), not to its
# dependencies: tokio compiled with it drops the network and signal modules
# the server needs. The models are built optimised, in their own target
# directory: loom explores thousands of executions.
#
#   bash scripts/loom.sh                          # all models
#   bash scripts/loom.sh pipe::loom_tests::feed   # the pipe's models named feed…
#   bash scripts/loom.sh ws::loom_tests           # the WebSocket models
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}/loom"
export CARGO_PROFILE_TEST_OPT_LEVEL=3
export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-3}"
binary=$(cargo rustc -p rill --lib --profile test --message-format=json-render-diagnostics -- --cfg loom |
    python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "rill":
        print(m["executable"])')
[ -n "$binary" ] || { echo "loom: no test binary was built" >&2; exit 1; }
"$binary" "${1:-loom_tests::}" --test-threads=2
