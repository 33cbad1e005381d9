#!/usr/bin/env bash
# Throwaway PostgreSQL server for tests (Debian's postgresql package).
#
#   scripts/postgres-test-server.sh start   # installs postgresql if needed, starts it, prints the DATABASE_URL
#   scripts/postgres-test-server.sh stop    # stops it and deletes its data directory
#   scripts/postgres-test-server.sh url     # prints the DATABASE_URL
#   scripts/postgres-test-server.sh running # exit status 0 when it is running
#
# Typical use (CI):  export TEST_DATABASE_URL="$(bash scripts/postgres-test-server.sh start)"
# Only the URL goes to stdout; progress goes to stderr. `start` is idempotent.
#
# Settings (environment): PGTEST_DIR (default /tmp/llm2rec-pg), PGTEST_PORT (55432), PGTEST_DB (llm2rec_test).
# The server listens on 127.0.0.1 only, with trust authentication: for tests, never for real data.
set -euo pipefail

PGTEST_DIR="${PGTEST_DIR:-/tmp/llm2rec-pg}"
PGTEST_PORT="${PGTEST_PORT:-55432}"
PGTEST_DB="${PGTEST_DB:-llm2rec_test}"
DATA="$PGTEST_DIR/data"
LOGFILE="$PGTEST_DIR/server.log"
URL="postgresql://postgres@127.0.0.1:${PGTEST_PORT}/${PGTEST_DB}"

log() { echo "postgres-test-server: $*" >&2; }

as_postgres() {
  if [ "$(id -un)" = postgres ]; then "$@"; else runuser -u postgres -- "$@"; fi
}

pg_bindir() {
  local dir
  dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
  [ -n "$dir" ] && [ -x "$dir/pg_ctl" ] && echo "$dir"
}

ensure_installed() {
  if pg_bindir >/dev/null; then return; fi
  if [ "$(id -u)" -ne 0 ]; then
    log "postgresql is not installed and installing it needs root (apt-get install -y postgresql)"
    exit 1
  fi
  log "installing Debian's postgresql (apt-get)..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update >&2
  apt-get install -y --no-install-recommends postgresql >&2
  pg_bindir >/dev/null || { log "postgresql installed but no pg_ctl found under /usr/lib/postgresql"; exit 1; }
}

is_running() {
  local bin="$1"
  [ -f "$DATA/PG_VERSION" ] && as_postgres "$bin/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

start() {
  ensure_installed
  local bin
  bin="$(pg_bindir)"
  if [ "$(id -u)" -eq 0 ]; then
    mkdir -p "$PGTEST_DIR"
    chown postgres:postgres "$PGTEST_DIR"
  fi
  if [ ! -f "$DATA/PG_VERSION" ]; then
    log "initdb $DATA"
    as_postgres "$bin/initdb" -D "$DATA" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >&2 \
      || as_postgres "$bin/initdb" -D "$DATA" -U postgres --auth=trust --encoding=UTF8 --no-locale >&2
  fi
  if is_running "$bin"; then
    log "already running (port $PGTEST_PORT)"
  else
    log "starting on 127.0.0.1:$PGTEST_PORT (log $LOGFILE)"
    # unix_socket_directories: the data dir, so no /var/run/postgresql is needed; fsync off: throwaway data.
    as_postgres "$bin/pg_ctl" -D "$DATA" -l "$LOGFILE" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $PGTEST_PORT -c unix_socket_directories='$DATA' -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
      start >&2
  fi
  local exists
  exists="$(as_postgres "$bin/psql" -h 127.0.0.1 -p "$PGTEST_PORT" -U postgres -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = '$PGTEST_DB'")"
  if [ "$exists" != 1 ]; then
    log "creating database $PGTEST_DB"
    as_postgres "$bin/createdb" -h 127.0.0.1 -p "$PGTEST_PORT" -U postgres "$PGTEST_DB" >&2
  fi
  echo "$URL"
}

stop() {
  local bin
  if bin="$(pg_bindir)" && is_running "$bin"; then
    log "stopping"
    as_postgres "$bin/pg_ctl" -D "$DATA" -m fast -w stop >&2
  else
    log "not running"
  fi
  rm -rf "$PGTEST_DIR"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  url) echo "$URL" ;;
  running) bin="$(pg_bindir)" && is_running "$bin" ;;
  *) echo "usage: $0 start|stop|url|running" >&2; exit 2 ;;
esac
