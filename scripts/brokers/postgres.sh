# PostgreSQL 15 (Debian postgresql-15 binaries), 127.0.0.1:5432, trust auth, database mqkit.
# Runs as the `postgres` user (initdb refuses root).
#   .mqkit/postgres/{data/, sock/, postgres.log}   (owned by postgres)
# If user postgres cannot reach <repo>/.mqkit (e.g. a clone under /root, mode 700), the folder lives
# in /var/tmp/mqkit-postgres-<hash of the repo path> and .mqkit/postgres is a symlink to it.
# fsync/full_page_writes/synchronous_commit are off: fast for tests, not crash-safe for the OS
# (a SIGKILL of postgres itself is still recovered from the WAL).
# shellcheck shell=bash

PG_PORT=5432
PG_DB=mqkit
PG_VERSION=15

pg_bin() {
  local d="/usr/lib/postgresql/$PG_VERSION/bin"
  [ -x "$d/postgres" ] && echo "$d"
}

postgres_timeout() { echo 60; }
postgres_apt_packages() { pg_bin >/dev/null || echo "postgresql-$PG_VERSION postgresql-client-$PG_VERSION"; }
postgres_endpoint_json() { echo "{\"url\":\"postgres://postgres@127.0.0.1:$PG_PORT/$PG_DB\"}"; }
postgres_endpoint_text() { echo "postgres://postgres@127.0.0.1:$PG_PORT/$PG_DB"; }
postgres_logs() { echo "$MQ_RUN/postgres/postgres.log"; }

# the real folder (postgres cannot follow a symlink that sits in a folder it may not enter)
pg_base() { readlink -f "$MQ_RUN/postgres" 2>/dev/null || echo "$MQ_RUN/postgres"; }

postgres_pids() {
  # first line of postmaster.pid = postmaster pid; its command line names the data dir
  local base; base="$(pg_base)"
  mq_pid_from_file "$base/data/postmaster.pid" "-D $base/data" || true
}

postgres_install() {
  pg_bin >/dev/null || mq_apt_ensure "postgresql-$PG_VERSION" "postgresql-client-$PG_VERSION" || return 1
  id postgres >/dev/null 2>&1 || { mq_err "postgres: no 'postgres' user (the Debian package creates it)"; return 1; }
}

# Make .mqkit/postgres a folder the postgres user can use.
pg_prepare_base() {
  local base="$MQ_RUN/postgres" alt
  if [ -L "$base" ]; then
    alt="$(readlink "$base")"
    mkdir -p "$alt"
  elif [ ! -d "$base" ]; then
    mkdir -p "$MQ_RUN"
    # test -x needs search permission on every path component
    if ! runuser -u postgres -- test -x "$MQ_RUN" 2>/dev/null; then
      alt="/var/tmp/mqkit-postgres-$(echo -n "$MQ_ROOT" | sha256sum | cut -c1-12)"
      mq_log "postgres: user postgres cannot reach $MQ_RUN; data lives in $alt (symlinked)"
      mkdir -p "$alt"
      ln -s "$alt" "$base"
    else
      mkdir -p "$base"
    fi
  fi
  base="$(pg_base)"
  chown postgres:postgres "$base"
  chmod 700 "$base"
  install -d -o postgres -g postgres -m 700 "$base/sock"
}

pg_as() { runuser -u postgres -- "$@"; }

pg_ready() {
  pg_as "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d "$PG_DB" -tAc 'select 1' 2>/dev/null | grep -qx 1
}

postgres_start() { # timeout_s
  local base rc=0 pid
  PG_BIN="$(pg_bin)" || { mq_err "postgres $PG_VERSION binaries not found"; return 1; }
  mq_require_free_ports postgres "$PG_PORT" || return 1
  pg_prepare_base || return 1
  base="$(pg_base)"
  if [ ! -s "$base/data/PG_VERSION" ]; then
    rm -rf "$base/data"
    if ! pg_as "$PG_BIN/initdb" -D "$base/data" -U postgres -A trust -E UTF8 --no-sync > "$base/initdb.log" 2>&1; then
      mq_show_log "$base/initdb.log"; return 1
    fi
  fi
  # a postmaster.pid left by a SIGKILL: postgres would refuse to start while kill(pid, 0) succeeds,
  # which is also the case for an unreaped zombie (containers whose init does not reap orphans)
  # (the socket lock file .s.PGSQL.<port>.lock names the same pid)
  local f old
  for f in "$base/data/postmaster.pid" "$base/sock/.s.PGSQL.$PG_PORT.lock"; do
    old="$(head -n1 "$f" 2>/dev/null | tr -dc '0-9')"
    if [ -n "$old" ] && ! mq_alive "$old"; then rm -f "$f"; fi
  done
  # pg_ctl -w waits until the server accepts connections
  if ! (mq_clean_exec runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$base/data" -l "$base/postgres.log" -w -t "$1" \
        -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $base/sock -c fsync=off -c full_page_writes=off -c synchronous_commit=off -c max_connections=200" \
        start > "$base/pg_ctl.log" 2>&1 < /dev/null); then
    cat "$base/pg_ctl.log" >&2
    mq_show_log "$base/postgres.log"
    return 1
  fi
  if ! pg_as "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname='$PG_DB'" | grep -qx 1; then
    pg_as "$PG_BIN/psql" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -c "CREATE DATABASE $PG_DB" || return 1
  fi
  pid="$(postgres_pids)"
  mq_wait_until 30 "$pid" pg_ready || rc=$?
  if [ "$rc" != 0 ]; then mq_err "postgres: SELECT 1 on $PG_DB failed"; mq_show_log "$base/postgres.log"; return 1; fi
}

postgres_stop() {
  PG_BIN="$(pg_bin)" || return 1
  pg_as "$PG_BIN/pg_ctl" -D "$(pg_base)/data" -m fast -w -t 30 stop >/dev/null 2>&1 || true
  local pids; pids="$(postgres_pids)"
  # shellcheck disable=SC2046
  [ -z "$pids" ] || mq_stop_pids 10 postgres "$pids" $(mq_descendants "$pids")
}

postgres_kill() {
  local pid
  pid="$(postgres_pids)"
  [ -n "$pid" ] || return 0
  # the postmaster and all its backends/auxiliary processes
  # shellcheck disable=SC2046
  mq_kill_pids postgres "$pid" $(mq_descendants "$pid")
}
