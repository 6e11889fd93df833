#!/usr/bin/env bash
# The dashboard in a real browser (tests/it/hub/browser.rs): installs headless Chromium and
# chromedriver from the distribution's packages when missing, checks that Chromium starts, and
# runs the test with CI=true, so a browser that is missing or cannot start fails loudly instead of
# being skipped. The screenshot is left in target/ci-artifacts/dashboard.png.
set -euo pipefail
cd "$(dirname "$0")/.."

CHROMIUM=${BADGESTATION_CHROMIUM:-/usr/bin/chromium}
CHROMEDRIVER=${BADGESTATION_CHROMEDRIVER:-/usr/bin/chromedriver}

if [ ! -x "$CHROMIUM" ] || [ ! -x "$CHROMEDRIVER" ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
fi
if [ ! -x "$CHROMIUM" ] || [ ! -x "$CHROMEDRIVER" ]; then
    echo "FAILED: $CHROMIUM or $CHROMEDRIVER is missing after installing the packages chromium chromium-driver" >&2
    exit 1
fi

profile=$(mktemp -d "${TMPDIR:-/tmp}/badgestation-chromium.XXXXXX")
trap 'rm -rf "$profile"' EXIT
if ! timeout 60 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --user-data-dir="$profile/profile" --dump-dom about:blank >"$profile/dom" 2>"$profile/stderr" \
        || ! grep -q "<html" "$profile/dom"; then
    echo "FAILED: Chromium ($CHROMIUM) cannot start headless:" >&2
    tail -20 "$profile/stderr" >&2
    exit 1
fi
echo "$("$CHROMIUM" --version 2>/dev/null) · $("$CHROMEDRIVER" --version)"

CI=true cargo test --test it hub::browser:: -- --nocapture
test -s target/ci-artifacts/dashboard.png || { echo "FAILED: no screenshot in target/ci-artifacts/" >&2; exit 1; }
