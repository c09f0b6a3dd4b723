#!/usr/bin/env bash
# Runs a command with the local cluster up: starts it when it is down, and stops it afterwards only if
# this script started it (so `make test` leaves a developer's running cluster alone).
set -euo pipefail
here=$(dirname "$0")
if "$here/cluster.sh" status; then
  exec "$@"
fi
"$here/cluster.sh" up
status=0
"$@" || status=$?
"$here/cluster.sh" down
exit "$status"
