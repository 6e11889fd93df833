#!/usr/bin/env bash
# Measures the real station window (release build) under Xvfb on a data
# directory of ROWS scans (default 1 000 000), for BENCHMARKS.md:
#   - time from start to the first frame (the window's own log line, and as
#     seen from outside: launch until that line appears),
#   - idle CPU over IDLE_SECS (default 30) with nothing happening, and how
#     many frames were drawn meanwhile (no continuous repaint: expect 0),
#   - resident memory (VmRSS) when idle,
#   - CPU per frame while a scan's feedback is shown: a badge typed through
#     the keyboard wedge, then SHOW_SECS (default 3) of the feedback; UI
#     thread and whole process (llvmpipe renders on the CPU here).
# Needs Linux with Xvfb, xdotool (scripts/gui_smoke.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
rows="${ROWS:-1000000}"
idle_secs="${IDLE_SECS:-30}"
show_secs="${SHOW_SECS:-3}"

cargo build --quiet --release --bin badgestation
bin="$PWD/target/release/badgestation"
data="$(mktemp -d)"
trap 'rm -rf "$data"' EXIT
cargo bench --quiet --bench gui -- "prepare=$data" "rows=$rows"

export bin data idle_secs show_secs
xvfb-run -a -s "-screen 0 1280x800x24" bash -euc '
    log="$data/gui.log"
    tck=$(getconf CLK_TCK)
    # CPU nanoseconds of the UI (main) thread and of the whole process.
    ui_ns() { cut -d" " -f1 "/proc/$pid/schedstat"; }
    all_ns() { cat /proc/$pid/task/*/schedstat | awk "{s+=\$1} END {printf \"%d\", s}"; }
    frames() { grep -c "frame drawn" "$log" || true; }
    t0=$(date +%s%N)
    RUST_LOG=info,badgestation::gui::frames=debug NO_COLOR=1 "$bin" --data-dir "$data" > "$log" 2>&1 &
    pid=$!
    until grep -q "first frame drawn" "$log"; do sleep 0.005; done
    t1=$(date +%s%N)
    echo "first frame: $(grep -o "millis=[0-9]*" "$log" | head -n1 | cut -d= -f2) ms after main() (log); $(( (t1 - t0) / 1000000 )) ms from launch (outside)"
    wid=$(xdotool search --name "^BadgeStation$" | head -n1)
    xdotool mousemove --window "$wid" 400 300
    xdotool windowfocus --sync "$wid" || true
    sleep 5
    f0=$(frames); c0=$(all_ns); u0=$(ui_ns)
    sleep "$idle_secs"
    f1=$(frames); c1=$(all_ns); u1=$(ui_ns)
    echo "idle ${idle_secs} s: $((f1 - f0)) frames; process CPU $(( (c1 - c0) / 1000000 )) ms = $(awk "BEGIN {printf \"%.3f\", ($c1 - $c0) / ($idle_secs * 1e7)}")% of a core; UI thread $(( (u1 - u0) / 1000000 )) ms"
    echo "resident memory (idle): $(grep VmRSS /proc/$pid/status | tr -s " " | cut -d" " -f2-)"
    f0=$(frames); c0=$(all_ns); u0=$(ui_ns)
    xdotool type --delay 10 4372425
    xdotool key Return
    sleep "$show_secs"
    f1=$(frames); c1=$(all_ns); u1=$(ui_ns)
    n=$((f1 - f0))
    echo "scan shown (${show_secs} s incl. typing and recording): $n frames; per frame: UI thread $(awk "BEGIN {printf \"%.2f\", ($u1 - $u0) / 1e6 / $n}") ms, whole process $(awk "BEGIN {printf \"%.2f\", ($c1 - $c0) / 1e6 / $n}") ms"
    grep -q "Welcome\|recorded" "$log" || true
    echo "resident memory (after the scan): $(grep VmRSS /proc/$pid/status | tr -s " " | cut -d" " -f2-)"
    kill -TERM "$pid"; wait "$pid" || true
'
"$bin" --data-dir "$data" status | sed -n '1,4p'
