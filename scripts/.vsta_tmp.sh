#!/usr/bin/env bash
# Our hub against the TrackAttendance API, side by side on one PostgreSQL, from one Rust client
# (the `vs-ta` case of benches/hub_ingest.rs). Not part of CI: it needs a checkout of
# https://github.com/Jarkius/trackattendance-api and Node.js with npm.
#
#   scripts/bench_vs_trackattendance.sh /path/to/trackattendance-api [more hub_ingest cases]
#
# What it does, all on 127.0.0.1 and removed again at the end:
#   1. starts a throw-away PostgreSQL cluster with fsync on (scripts/pg_test_cluster.sh);
#   2. creates the database `trackattendance` and applies the checkout's Postgres-schema.sql;
#   3. builds the API as its Dockerfile does (npm ci, npm run build) unless dist/server.js exists,
#      and starts `node dist/server.js` with its production settings (pool of 20, request
#      logging to a file) except RATE_LIMIT_MAX, raised so that its rate limiter (60 requests a
#      minute per address by default) does not decide the result;
#   4. runs `cargo bench --bench hub_ingest` with HUB_BENCH_PG_CASES=vs-ta (or the cases given
#      after the checkout, e.g. `vs-ta,fresh,replicas,preload`).
# HUB_BENCH_SCANS and HUB_BENCH_THREADS are passed through (defaults 200000 and 8).
set -euo pipefail

die() { echo "bench_vs_trackattendance: $*" >&2; exit 1; }

checkout=${1:-}
cases=${2:-vs-ta}
[[ -n $checkout && -f $checkout/server.ts && -f $checkout/Postgres-schema.sql ]] \
    || die "usage: $0 /path/to/trackattendance-api [cases]; the directory must hold server.ts and Postgres-schema.sql (git clone https://github.com/Jarkius/trackattendance-api)"
checkout=$(cd "$checkout" && pwd)
command -v node >/dev/null && command -v npm >/dev/null || die "node and npm are needed to run the TrackAttendance API (Debian: apt-get install nodejs npm)"

root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
# The cluster runs as an unprivileged user, so it lives outside the private work directory.
cluster=$(mktemp -u -d)
api_pid=""
cleanup() {
    [[ -n $api_pid ]] && kill "$api_pid" 2>/dev/null && wait "$api_pid" 2>/dev/null
    "$root/scripts/pg_test_cluster.sh" stop "$cluster" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

admin=$(PG_TEST_DURABLE=1 "$root/scripts/pg_test_cluster.sh" start "$cluster") || die "PostgreSQL did not start"
ta_db=${admin%/*}/trackattendance
psql_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r | head -1)/psql
[[ -x $psql_bin ]] || psql_bin=$(command -v psql) || die "psql not found"
"$psql_bin" -q -v ON_ERROR_STOP=1 "$admin" -c "CREATE DATABASE trackattendance" >/dev/null
"$psql_bin" -q -v ON_ERROR_STOP=1 "$ta_db" -f "$checkout/Postgres-schema.sql" >/dev/null

if [[ ! -f $checkout/dist/server.js ]]; then
    echo "bench_vs_trackattendance: building the TrackAttendance API (npm ci, npm run build)" >&2
    (cd "$checkout" && npm ci --no-audit --no-fund >&2 && npm run build >&2) || die "could not build $checkout"
fi
# fastify-static serves dist/public; the Dockerfile copies it there.
[[ -d $checkout/dist/public ]] || cp -r "$checkout/public" "$checkout/dist/public"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ta_key=bench-trackattendance-key-0123456789abcdef
(cd "$checkout" && exec env DATABASE_URL="$ta_db" API_KEY="$ta_key" PORT="$port" RATE_LIMIT_MAX=100000000 \
    NODE_ENV=production node dist/server.js) >"$work/trackattendance-api.log" 2>&1 &
api_pid=$!
for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$port/healthz" 2>/dev/null | grep -q '"ok":true' && break
    kill -0 "$api_pid" 2>/dev/null || { tail -20 "$work/trackattendance-api.log" >&2; die "the TrackAttendance API exited at start"; }
    sleep 0.2
done
curl -fsS "http://127.0.0.1:$port/healthz" | grep -q '"ok":true' || die "the TrackAttendance API did not answer /healthz on port $port"
pg_port=${admin##*:}
echo "bench_vs_trackattendance: TrackAttendance API (pid $api_pid) on port $port, PostgreSQL on port ${pg_port%%/*}" >&2

cd "$root"
HUB_BENCH_PG_URL="$admin" HUB_BENCH_PG_CASES="$cases" HUB_BENCH_SQLITE=0 \
    HUB_BENCH_TA_URL="http://127.0.0.1:$port" HUB_BENCH_TA_KEY="$ta_key" HUB_BENCH_TA_DATABASE="$ta_db" \
    "$BENCH_BIN" --bench
