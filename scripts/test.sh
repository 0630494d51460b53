#!/usr/bin/env bash
# Runs every test of the workspace: unit, integration (real servers on
# 127.0.0.1:0), the example app's tests, and the doctests of the guides.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-test-deps.sh
cargo test --workspace --all-features "$@"
# A short, bounded fuzz run of every parser a client's bytes reach (~2 min).
bash scripts/fuzz.sh 15
# The loom models: the writer→body pipe, a WebSocket's shared state, the broker's hand-off (~1 min).
bash scripts/loom.sh
