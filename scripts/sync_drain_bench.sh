#!/usr/bin/env bash
# The sync drain bench with the hub in its own process on its own core, as a
# real hub runs on its own machine: the hub on CPU 1, the station on CPU 0.
# The plain `cargo bench --bench sync_drain` runs both in one process on the
# same two cores, which measures the worst case.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --no-default-features --features hub
cargo bench --no-default-features --features hub --bench sync_drain --no-run
dir=$(mktemp -d)
trap 'kill $hub_pid 2>/dev/null; rm -rf "$dir"' EXIT
key=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
HUB_API_KEY=$key taskset -c 1 target/release/badgestation --data-dir "$dir" hub --listen 127.0.0.1:0 > "$dir/out" 2>/dev/null &
hub_pid=$!
for _ in $(seq 50); do grep -q listening "$dir/out" 2>/dev/null && break; sleep 0.1; done
url=$(sed -n 's/^listening on //p' "$dir/out")
bench=$(ls -t target/release/deps/sync_drain-* | grep -v '\.d$' | head -1)
SYNC_BENCH_HUB_URL=$url SYNC_BENCH_HUB_KEY=$key taskset -c 0 "$bench" --bench
