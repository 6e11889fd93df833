#!/usr/bin/env bash
# A throw-away PostgreSQL cluster for the hub's tests and benchmarks.
#
#   scripts/pg_test_cluster.sh start DIR   # prints the URL (postgres://...) on stdout
#   scripts/pg_test_cluster.sh stop DIR    # stops it and removes DIR
#   scripts/pg_test_cluster.sh restart DIR [SECONDS]
#                                          # a real server restart: fast shutdown (every
#                                          # connection cut), SECONDS (default 1) down, then up
#                                          # again on the same port (the hub's outage tests)
#
# DIR must not exist yet (start creates it). The cluster runs as an
# unprivileged user (`nobody` when started as root, else the caller) on a free
# port of 127.0.0.1, with password authentication, so tests can also try a
# wrong password. PostgreSQL comes from the distribution's packages: when no
# server binaries are installed and we are root, it is apt-get installed.
#
# PG_TEST_DURABLE=1 keeps fsync on (benchmarks); by default the throw-away
# cluster runs with fsync=off, which only matters if the machine crashes.
# PG_TEST_OPTIONS adds server settings, e.g. "-c max_wal_size=8GB".
# Every failure exits non-zero with a message on stderr: CI must not skip the
# PostgreSQL half of the suite silently.
set -euo pipefail

die() { echo "pg_test_cluster: $*" >&2; exit 1; }

find_bindir() {
    local dir
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [[ -x "$dir/initdb" && -x "$dir/pg_ctl" ]]; then echo "$dir"; return 0; fi
    done
    if command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then
        dirname "$(command -v initdb)"; return 0
    fi
    return 1
}

install_postgres() {
    [[ $(id -u) -eq 0 ]] || die "PostgreSQL server binaries (initdb, pg_ctl) are missing; install them (Debian: sudo apt-get install postgresql) and retry"
    echo "pg_test_cluster: installing PostgreSQL from the distribution's packages" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q postgresql >&2 || { apt-get update -q >&2 && apt-get install -y -q postgresql >&2; } \
        || die "apt-get install postgresql failed"
}

# Runs a command as the cluster's owner.
as_owner() {
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u nobody -- "$@"
    else
        "$@"
    fi
}

port_free() {
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

start() {
    local dir=$1
    [[ -e $dir ]] && die "$dir already exists; give a new directory (it is removed again by stop)"
    local bindir
    bindir=$(find_bindir) || { install_postgres; bindir=$(find_bindir) || die "no initdb after installing postgresql"; }
    mkdir -p "$dir"
    local password
    password=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
    printf '%s\n' "$password" >"$dir/pwfile"
    if [[ $(id -u) -eq 0 ]]; then
        chown -R nobody "$dir"
        chmod 700 "$dir"
    fi
    as_owner "$bindir/initdb" -D "$dir/data" -U postgres --pwfile="$dir/pwfile" --auth-local=trust \
        --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; die "initdb failed in $dir/data"; }
    local fsync=off
    [[ ${PG_TEST_DURABLE:-0} == 1 ]] && fsync=on
    local attempt port
    for attempt in 1 2 3 4 5 6 7 8; do
        port=$((20000 + RANDOM % 40000))
        port_free "$port" || continue
        local options="-p $port -c listen_addresses=127.0.0.1 -k $dir -c max_connections=400 -c fsync=$fsync \
                -c full_page_writes=$fsync -c shared_buffers=256MB ${PG_TEST_OPTIONS:-}"
        if as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 -o "$options" start >/dev/null 2>&1; then
            echo "$port" >"$dir/port"
            printf '%s\n' "$options" >"$dir/options"
            echo "postgres://postgres:$password@127.0.0.1:$port/postgres"
            return 0
        fi
        echo "pg_test_cluster: could not start on port $port (attempt $attempt); trying another" >&2
    done
    cat "$dir/server.log" >&2 2>/dev/null || true
    die "PostgreSQL did not start (log above)"
}

stop() {
    local dir=$1
    [[ -d $dir/data ]] || { rm -rf "$dir"; return 0; }
    local bindir
    bindir=$(find_bindir) || die "no pg_ctl to stop $dir/data"
    as_owner "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$dir"
}

restart() {
    local dir=$1 pause=${2:-1}
    [[ -f $dir/options ]] || die "$dir is not a running cluster started by this script"
    local bindir
    bindir=$(find_bindir) || die "no pg_ctl to restart $dir/data"
    as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null 2>&1 || die "could not stop $dir/data (see $dir/server.log)"
    sleep "$pause"
    as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 -o "$(cat "$dir/options")" start >/dev/null 2>&1 \
        || { tail -20 "$dir/server.log" >&2; die "PostgreSQL did not start again in $dir/data"; }
}

case ${1:-} in
    start) [[ -n ${2:-} ]] || die "usage: $0 start DIR"; start "$2" ;;
    stop) [[ -n ${2:-} ]] || die "usage: $0 stop DIR"; stop "$2" ;;
    restart) [[ -n ${2:-} ]] || die "usage: $0 restart DIR [SECONDS]"; restart "$2" "${3:-1}" ;;
    *) die "usage: $0 start DIR | stop DIR | restart DIR [SECONDS]" ;;
esac
