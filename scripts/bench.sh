#!/usr/bin/env bash
# Runs the whole benchmark suite (issue 5): builds the three servers and the
# load generator in release mode, runs rill / axum / raw hyper in alternation,
# writes bench/results/latest.json and renders bench/results/latest.png.
#
#   bash scripts/bench.sh            # full suite, 3 rounds (~10 minutes)
#   bash scripts/bench.sh --quick    # smoke run, 1 round, small sizes
#   bash scripts/bench.sh --rounds 5 --only burst,live
set -euo pipefail
cd "$(dirname "$0")/.."

# One build at a time: the two commands share the target directory.
cargo build --release -p rill-bench --bins
cargo build --release --example bench_server

target/release/loadgen "$@"

if ! python3 -c 'import matplotlib' 2>/dev/null; then
    echo "installing matplotlib for the chart (pip --user)"
    pip install --user --quiet matplotlib || pip install --user --quiet --break-system-packages matplotlib
fi
python3 bench/chart.py bench/results/latest.json bench/results/latest.png

echo
echo "JSON:  $(pwd)/bench/results/latest.json"
echo "chart: $(pwd)/bench/results/latest.png"
