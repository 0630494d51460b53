#!/usr/bin/env bash
# Runs every fuzz target in fuzz/ for a short, bounded time (default 15 s
# each; about 90 s in all), starting from the committed corpora in
# fuzz/corpus/. New inputs go to a scratch directory, so the committed corpora
# stay as they are; a crash fails the script and leaves its input in
# fuzz/artifacts/<target>/.
#
#   bash scripts/fuzz.sh              # all targets, 15 s each
#   bash scripts/fuzz.sh 60 router    # one target, 60 s
#
# Installs cargo-fuzz (pinned) when it is missing. Runs on the stable
# toolchain: `-s none` builds without a sanitizer, which needs nightly; the
# targets are safe Rust, and debug assertions (overflow checks) stay on.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_FUZZ_VERSION=0.13.2
seconds=${1:-15}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(sse_encoder router query last_event_id hub_broadcast content_length cable_command state_ops)
fi

say() { echo "fuzz: $*"; }

if ! cargo fuzz --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
    say "installing cargo-fuzz $CARGO_FUZZ_VERSION"
    cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi

cd fuzz
say "building targets"
cargo fuzz build -s none
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for target in "${targets[@]}"; do
    say "$target for ${seconds}s"
    mkdir -p "$scratch/$target" "corpus/$target"
    dict=()
    [ -f "$target.dict" ] && dict=("-dict=$target.dict")
    log="$scratch/$target.log"
    status=0
    cargo fuzz run -s none "$target" "$scratch/$target" "corpus/$target" -- \
        -max_total_time="$seconds" "${dict[@]}" >"$log" 2>&1 || status=$?
    grep -E '^Done ' "$log" || true
    if [ "$status" -ne 0 ]; then
        tail -n 40 "$log"
        say "$target FAILED (exit $status); the input is in fuzz/artifacts/$target/"
        exit 1
    fi
done
say "all targets passed"
