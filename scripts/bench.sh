#!/usr/bin/env bash
# Runs the whole benchmark suite (issue 5): builds the three servers and the
# load generator in release mode, runs rill / axum / raw hyper in alternation,
# writes bench/results/latest.json and renders bench/results/latest.png.
# Then the Redis broker benchmark (issue 13, target/release/redis_bench, its
# own redis-server): bench/results/redis.json.
#
#   bash scripts/bench.sh            # full suite, 3 rounds (~10 minutes)
#   bash scripts/bench.sh --quick    # smoke run, 1 round, small sizes
#   bash scripts/bench.sh --rounds 5 --only burst,live
#   bash scripts/bench.sh --only redis   # the Redis broker benchmark alone
set -euo pipefail
cd "$(dirname "$0")/.."

# redis_bench takes --quick alone; it runs unless --only leaves it out.
redis_args=()
run_redis=1
only_redis=0
previous=""
for arg in "$@"; do
    if [[ "$arg" == "--quick" ]]; then
        redis_args+=(--quick)
    fi
    if [[ "$previous" == "--only" ]]; then
        [[ ",$arg," == *",redis,"* ]] || run_redis=0
        [[ "$arg" == "redis" ]] && only_redis=1
    fi
    previous="$arg"
done

# One build at a time: the two commands share the target directory.
cargo build --release -p rill-bench --bins
cargo build --release --example bench_server

if [[ $only_redis == 0 ]]; then
    target/release/loadgen "$@"

    if ! python3 -c 'import matplotlib' 2>/dev/null; then
        echo "installing matplotlib for the chart (pip --user)"
        pip install --user --quiet matplotlib || pip install --user --quiet --break-system-packages matplotlib
    fi
    python3 bench/chart.py bench/results/latest.json bench/results/latest.png

    echo
    echo "JSON:  $(pwd)/bench/results/latest.json"
    echo "chart: $(pwd)/bench/results/latest.png"
fi

if [[ $run_redis == 1 ]]; then
    if command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null; then
        echo
        echo "Redis broker benchmark (bench/results/redis.json)"
        target/release/redis_bench "${redis_args[@]}"
    else
        echo
        echo "SKIPPED the Redis broker benchmark: redis-server and redis-benchmark are needed"
        echo "(scripts/setup-test-deps.sh installs them)"
    fi
fi
