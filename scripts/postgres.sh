#!/usr/bin/env bash
# A PostgreSQL server on loopback for Pulumi's postgres:// state backend (a team's shared backend, tested here):
# the machine's PostgreSQL binaries, a data directory inside the checkout, a free port on 127.0.0.1, no Unix
# socket, trust authentication for loopback only (a test bed, not a production setup: docs/teams.md).
#
# Usage: scripts/postgres.sh install|up|url|stop|start|status|down
#   install  apt-get install postgresql when its binaries are missing (as root; otherwise says what to install)
#   up       initialise (first time), start, create database `pulumi`; a no-op when already running
#   url      print the postgres:// URL that `pulumi login` / PULUMI_BACKEND_URL accept
#   stop     stop the server, keeping its data (fault injection: the backend going away mid-update)
#   start    start it again on the same port, with the same data
#   status   exit 0 when the server accepts connections
#   down     stop it and remove its data directory and everything else `up` created
# Files: .state/postgres/ (GATEWAY_CANARY_PG_DIR places a private server elsewhere, as a test that stops its
# server does). PostgreSQL refuses to run as root, so as root the server runs as the `postgres` user the
# package creates (the data directory is owned by it).
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

PG_DIR="${GATEWAY_CANARY_PG_DIR:-$REPO/.state/postgres}"
DATA="$PG_DIR/data"
PORT_FILE="$PG_DIR/port"
LOG="$PG_DIR/server.log"
DATABASE=pulumi
PG_USER=postgres

pg_bin() {
  local dir
  for dir in /usr/lib/postgresql/15/bin "$(dirname "$(command -v pg_ctl 2>/dev/null || echo /nonexistent/x)")"; do
    if [ -x "$dir/pg_ctl" ] && [ -x "$dir/initdb" ] && [ -x "$dir/postgres" ]; then echo "$dir"; return 0; fi
  done
  return 1
}

install() {
  if pg_bin >/dev/null; then log "PostgreSQL binaries: $(pg_bin)"; return 0; fi
  [ "$(id -u)" = 0 ] || die "PostgreSQL is not installed: run 'apt-get install postgresql' as root"
  log "installing PostgreSQL (apt-get install postgresql)"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  pg_bin >/dev/null || die "apt-get install postgresql did not provide pg_ctl, initdb and postgres"
}

# as_owner CMD...: run as the server's owner (the postgres user when we are root, else ourselves).
as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u "$PG_USER" -- "$@"; else "$@"; fi
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

port() { cat "$PORT_FILE" 2>/dev/null || die "no PostgreSQL server set up in $PG_DIR (run scripts/postgres.sh up)"; }

url() { echo "postgres://$PG_USER@127.0.0.1:$(port)/$DATABASE?sslmode=disable"; }

status() {
  [ -f "$PORT_FILE" ] || return 1
  "$(pg_bin)/pg_isready" -q -h 127.0.0.1 -p "$(port)" -U "$PG_USER" -d postgres
}

start() {
  local bin; bin=$(pg_bin) || die "PostgreSQL is not installed (scripts/postgres.sh install)"
  [ -d "$DATA" ] || die "no data directory $DATA (run scripts/postgres.sh up)"
  status && return 0
  as_owner "$bin/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 -s \
    -o "-c listen_addresses=127.0.0.1 -c port=$(port) -c unix_socket_directories=''" start \
    || die "PostgreSQL did not start; its log ($LOG):
$(tail -20 "$LOG" 2>/dev/null)"
}

up() {
  local bin; bin=$(pg_bin) || die "PostgreSQL is not installed (scripts/postgres.sh install)"
  if status; then log "PostgreSQL already running: $(url)"; return 0; fi
  if [ ! -d "$DATA" ]; then
    mkdir -p "$PG_DIR"
    [ "$(id -u)" = 0 ] && chown "$PG_USER:" "$PG_DIR"
    as_owner "$bin/initdb" -D "$DATA" -U "$PG_USER" --auth=trust --encoding=UTF8 --no-instructions >/dev/null \
      || die "initdb failed"
    # Loopback TCP only (no socket): trust for 127.0.0.1/::1, nothing else is accepted.
    as_owner sh -c "printf 'host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n' >'$DATA/pg_hba.conf'"
  fi
  local tries
  for tries in 1 2 3; do
    [ -f "$PORT_FILE" ] || free_port >"$PORT_FILE"
    if start 2>/dev/null; then break; fi
    log "PostgreSQL did not start on port $(port) (try $tries): picking another port"
    rm -f "$PORT_FILE"
  done
  status || { free_port >"$PORT_FILE"; start; }
  "$bin/psql" -q -h 127.0.0.1 -p "$(port)" -U "$PG_USER" -d postgres -v ON_ERROR_STOP=1 -tAc \
    "SELECT 1 FROM pg_database WHERE datname = '$DATABASE'" | grep -q 1 \
    || "$bin/createdb" -h 127.0.0.1 -p "$(port)" -U "$PG_USER" "$DATABASE"
  log "PostgreSQL up: $(url)"
}

stop() {
  local bin; bin=$(pg_bin) || return 0
  [ -f "$DATA/postmaster.pid" ] || return 0
  as_owner "$bin/pg_ctl" -D "$DATA" -w -t 60 -s -m fast stop || true
}

down() {
  stop
  if [ -f "$DATA/postmaster.pid" ]; then
    local pid; pid=$(head -1 "$DATA/postmaster.pid")
    log "PostgreSQL (pid $pid) did not stop: killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -rf "$PG_DIR"
  log "PostgreSQL down: $PG_DIR removed"
}

case "${1:-}" in
  install) install ;;
  up) up ;;
  url) url ;;
  stop) stop ;;
  start) start ;;
  status) status ;;
  down) down ;;
  *) echo "usage: $0 install|up|url|stop|start|status|down" >&2; exit 2 ;;
esac
