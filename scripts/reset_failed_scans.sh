#!/usr/bin/env bash
# Puts scans the hub rejected back to pending, so the next sync sends them again.
# A thin wrapper over `badgestation reset-failed`; pass --dry-run to only list them,
# and --data-dir DIR if the station does not use the default data directory.
#
#   scripts/reset_failed_scans.sh [--dry-run] [--data-dir DIR]
set -euo pipefail
bin="${BADGESTATION_BIN:-badgestation}"
if ! command -v "$bin" >/dev/null 2>&1; then
    here="$(cd "$(dirname "$0")/.." && pwd)"
    for candidate in "$here/target/release/badgestation" "$here/target/debug/badgestation"; do
        if [ -x "$candidate" ]; then bin="$candidate"; break; fi
    done
fi
if ! command -v "$bin" >/dev/null 2>&1 && [ ! -x "$bin" ]; then
    echo "badgestation not found: put it on PATH, set BADGESTATION_BIN, or build it with 'cargo build --release'" >&2
    exit 1
fi
exec "$bin" reset-failed "$@"
