#!/usr/bin/env bash
# Lets a user open the badge readers BadgeStation knows, without root:
# installs hardware/udev/99-badgestation.rules (serial readers -> group
# dialout; HID readers' hidraw and input nodes -> group plugdev), adds the user
# to both groups, and reloads udev.
#
# Usage: scripts/install_udev_rules.sh [--dry-run] [USER]
#   USER defaults to the user who ran sudo, else $USER.
#   --dry-run prints the commands instead of running them.
set -euo pipefail

dry_run=false
if [ "${1:-}" = "--dry-run" ]; then
  dry_run=true
  shift
fi
root="$(cd "$(dirname "$0")/.." && pwd)"
rules="$root/hardware/udev/99-badgestation.rules"
target=/etc/udev/rules.d/99-badgestation.rules
user="${1:-${SUDO_USER:-${USER:-}}}"

run() {
  if $dry_run; then
    echo "+ $*"
  else
    "$@"
  fi
}

if [ ! -f "$rules" ]; then
  echo "error: $rules is missing; run this script from a BadgeStation checkout" >&2
  exit 1
fi
if ! $dry_run && [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null; then
    echo "error: run this script as root (sudo is not installed)" >&2
    exit 1
  fi
  exec sudo "$0" "$user"
fi

run install -m 0644 "$rules" "$target"
for group in dialout plugdev; do
  if ! getent group "$group" >/dev/null; then
    run groupadd --system "$group"
  fi
done
if [ -n "$user" ] && [ "$user" != root ]; then
  run usermod -aG dialout,plugdev "$user"
  echo "added $user to the dialout and plugdev groups: log out and back in (or reboot) for that to apply"
fi
if command -v udevadm >/dev/null; then
  run udevadm control --reload-rules
  run udevadm trigger --subsystem-match=tty --subsystem-match=hidraw --subsystem-match=input
  echo "installed $target; unplug and replug the readers if they still cannot be opened"
else
  echo "installed $target; udevadm is not available here, so the rules apply after a reboot"
fi
if $dry_run; then
  echo "(dry run: nothing was changed)"
fi
