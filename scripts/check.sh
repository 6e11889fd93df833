#!/usr/bin/env bash
# Runs locally what CI runs.
exec "$(dirname "$0")/../.ci/run" "$@"
