#!/usr/bin/env bash
# Runs a command with the local cluster up: starts it when it is down, and stops it afterwards only if
# this script started it (so `make test` leaves a developer's running cluster alone). A cluster it started is
# also stopped when the command is interrupted (Ctrl-C, SIGTERM) or `cluster.sh up` fails half-way.
set -euo pipefail
here=$(dirname "$0")
if "$here/cluster.sh" status; then
  exec "$@"
fi
stop_cluster() {
  trap '' INT TERM   # a second Ctrl-C must not interrupt the teardown
  "$here/cluster.sh" down || true
}
trap stop_cluster EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
"$here/cluster.sh" up
status=0
"$@" || status=$?
if [ "$status" != 0 ]; then "$here/cluster.sh" report || true; fi
exit "$status"
