#!/usr/bin/env bash
# Runs the real station window under Xvfb for a few seconds, types a badge
# into it the way a keyboard-wedge reader does (xdotool: ten digits at 10 ms
# per key, then Enter), takes a screenshot, and fails unless
#   - the window rendered (the screenshot has more than a handful of colours), and
#   - the scan reached the database through the wedge path (source badge).
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
printf 'SHOW_FULL_SCREEN=true\nADMIN_PIN=2468\nSTATION_NAME="CI Gate"\n' > "$data/.env"
badge=0004372425

export bin data out badge
xvfb-run -a -s "-screen 0 1280x800x24" bash -euc '
    "$bin" --data-dir "$data" > "$out/gui.log" 2>&1 &
    pid=$!
    wid=$(timeout 60 xdotool search --sync --name "^BadgeStation$" | head -n1)
    # Wait for the first frame, so the keys reach a running event loop.
    for _ in $(seq 100); do grep -q "first frame drawn" "$out/gui.log" && break; sleep 0.1; done
    xdotool mousemove --window "$wid" 400 300
    xdotool windowfocus --sync "$wid" || true
    xdotool type --delay 10 "$badge"
    xdotool key Return
    for _ in $(seq 100); do
        "$bin" --data-dir "$data" scans list 2>/dev/null | grep -q "$badge" && break
        sleep 0.1
    done
    sleep 0.5
    import -window root "$out/gui.png"
    kill -TERM "$pid"
    wait "$pid" || true
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
grep -E "first frame drawn" "$out/gui.log" | sed 's/^/gui smoke test: /' || true
echo "gui smoke test: passed: window rendered, badge $badge typed through the keyboard wedge and stored"
