#!/usr/bin/env bash
# Runs the real station window under Xvfb for a few seconds, with a broken
# READERS value (an unknown reader profile) in its .env, types a badge into
# it the way a keyboard-wedge reader does (xdotool: ten digits at 10 ms per
# key, then Enter), takes a screenshot, stops it with SIGTERM as systemd
# does, and fails unless
#   - the window rendered (the screenshot has more than a handful of colours),
#   - the station started despite the broken READERS (the log names it),
#   - the scan reached the database through the wedge path (source badge), and
#   - SIGTERM ran the quit flow and the process exited 0.
# Artifacts: target/ci-artifacts/gui.png and gui.log.
#
# Installs xvfb, xauth, xdotool and imagemagick with apt-get when missing
# (as root, or with sudo). Skips, saying so, only when not on Linux.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(uname -s)" != "Linux" ]; then
    echo "gui smoke test: SKIPPED: needs Linux (Xvfb); this is $(uname -s)"
    exit 0
fi

missing=()
command -v xvfb-run >/dev/null || missing+=(xvfb)
command -v xauth >/dev/null || missing+=(xauth)
command -v xdotool >/dev/null || missing+=(xdotool)
{ [ -x /usr/bin/import ] && [ -x /usr/bin/identify ]; } || missing+=(imagemagick)
if [ ${#missing[@]} -gt 0 ]; then
    echo "gui smoke test: installing ${missing[*]}"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

cargo build --quiet --bin badgestation
bin="$PWD/target/debug/badgestation"
out="$PWD/target/ci-artifacts"
mkdir -p "$out"
rm -f "$out/gui.png" "$out/gui.log"
data="$(mktemp -d)"
trap 'rm -rf "$data"' EXIT
printf 'SHOW_FULL_SCREEN=true\nADMIN_PIN=2468\nSTATION_NAME=CI Gate\nREADERS=nosuchprofile:/dev/ttyUSB9\n' > "$data/.env"
badge=0004372425

export bin data out badge
xvfb-run -a -s "-screen 0 1280x800x24" bash -euc '
    "$bin" --data-dir "$data" > "$out/gui.log" 2>&1 &
    pid=$!
    wid=$(timeout 60 xdotool search --sync --name "^BadgeStation$" | head -n1)
    # Wait for the first frame, so the keys reach a running event loop.
    for _ in $(seq 100); do grep -q "first frame drawn" "$out/gui.log" && break; sleep 0.1; done
    # Focus can fail right after the window maps (X BadMatch); type again
    # until the scan is stored, at most three times.
    for attempt in 1 2 3; do
        xdotool mousemove --window "$wid" 400 300
        xdotool windowfocus --sync "$wid" || true
        xdotool type --delay 10 "$badge"
        xdotool key Return
        stored=no
        for _ in $(seq 50); do
            if "$bin" --data-dir "$data" scans list 2>/dev/null | grep -q "$badge"; then stored=yes; break; fi
            sleep 0.1
        done
        [ "$stored" = yes ] && break
        echo "gui smoke test: attempt $attempt: the badge was not stored yet; typing again"
    done
    sleep 1
    import -window root "$out/gui.png"
    kill -TERM "$pid"
    status=0
    wait "$pid" || status=$?
    echo "$status" > "$out/gui.exit"
'

colours=$(identify -format %k "$out/gui.png")
echo "gui smoke test: screenshot $out/gui.png has $colours colours"
if [ "$colours" -lt 32 ]; then
    echo "gui smoke test: FAILED: the window did not render (screenshot is nearly one colour); log: $out/gui.log"
    exit 1
fi
scans="$("$bin" --data-dir "$data" scans list)"
if ! grep -Eq "$badge +badge " <<<"$scans"; then
    echo "gui smoke test: FAILED: the typed badge never reached the database; log: $out/gui.log"
    echo "$scans"
    exit 1
fi
if ! grep -q 'no reader profile "nosuchprofile"' "$out/gui.log"; then
    echo "gui smoke test: FAILED: the broken READERS entry was not reported; log: $out/gui.log"
    exit 1
fi
status="$(cat "$out/gui.exit")"
if [ "$status" != 0 ] || ! grep -q "shutdown flow started" "$out/gui.log"; then
    echo "gui smoke test: FAILED: SIGTERM did not run the quit flow and exit 0 (exit status $status); log: $out/gui.log"
    exit 1
fi
grep -E "first frame drawn" "$out/gui.log" | sed 's/^/gui smoke test: /' || true
echo "gui smoke test: passed: window rendered with a broken READERS banner, badge $badge typed through the keyboard wedge and stored, SIGTERM ran the quit flow and exited 0"
