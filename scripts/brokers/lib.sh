# Common helpers for scripts/brokers/*.sh. Sourced by brokers.sh, never run directly.
# Layout:
#   <repo>/.mqkit/<name>/        logs, data, pid files of one broker (git-ignored)
#   <repo>/.mqkit/endpoints.json endpoints of the brokers that were started (merged per broker)
#   ${MQKIT_CACHE:-~/.cache/mqkit}/jars/<name>-<pom hash>/   jars copied from the Maven local repo
#   ${MQKIT_CACHE:-~/.cache/mqkit}/venv/<name>/              python venvs (moto)
# shellcheck shell=bash

MQ_BROKERS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
MQ_ROOT="$(cd "$MQ_BROKERS_DIR/../.." && pwd)"
MQ_RUN="${MQKIT_RUN_DIR:-$MQ_ROOT/.mqkit}"
MQ_CACHE="${MQKIT_CACHE:-$HOME/.cache/mqkit}"
MQ_ENDPOINTS="$MQ_RUN/endpoints.json"
# shellcheck disable=SC2034  # used by brokers.sh
MQ_ALL_BROKERS=(kafka rabbitmq rocketmq sqs postgres redis)

# ---------- output / time ----------
mq_now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
mq_secs_since() { # start_ms -> "12.3"
  local d=$(( $(mq_now_ms) - $1 ))
  printf '%d.%d' $(( d / 1000 )) $(( (d % 1000) / 100 ))
}
mq_log() { echo "$*"; }
mq_err() { echo "ERROR: $*" >&2; }
mq_die() { mq_err "$*"; exit 1; }

mq_dir() { # name -> .mqkit/<name> (created)
  mkdir -p "$MQ_RUN/$1"
  echo "$MQ_RUN/$1"
}

# tail of a log file on stderr, for failed starts
mq_show_log() { # file [lines]
  local f="$1" n="${2:-40}"
  if [ -f "$f" ]; then
    echo "----- last $n lines of $f -----" >&2
    tail -n "$n" "$f" >&2
    echo "-----" >&2
  else
    echo "(no log file $f)" >&2
  fi
}

# ---------- locks ----------
# mq_with_lock <lockfile> <timeout_s> cmd args...   (runs cmd in a subshell holding an flock on fd 9)
# Daemons are started through mq_clean_exec, or they would inherit the lock and hold it forever.
MQ_LOCKS="$MQ_RUN/locks"
mq_with_lock() {
  local lock="$1" t="$2"; shift 2
  mkdir -p "$(dirname "$lock")"
  (
    exec 9>"$lock"
    flock -w "$t" 9 || { mq_err "could not take lock $lock within ${t}s"; exit 1; }
    "$@"
  )
}

# ---------- processes ----------
# exec a command with every file descriptor above 2 closed: daemons must not inherit our locks
# (fd 9) or pipes (a `| sed` prefixer would never see EOF). It replaces the current shell, so call it
# in a subshell: `mq_clean_exec java ... > log 2>&1 < /dev/null &` (then $! is the java pid)
# or `(mq_clean_exec redis-server conf)` for programs that daemonize themselves.
mq_clean_exec() {
  local f fd
  for f in /proc/"$BASHPID"/fd/*; do
    fd="${f##*/}"
    [ "$fd" -gt 2 ] && eval "exec $fd>&-" 2>/dev/null
  done
  # A session of its own: a Ctrl-C (SIGINT to the terminal's process group) in the test run or
  # the shell that (re)started a broker must not take the broker down with it. setsid execs in
  # place (same pid, which the pid file records) unless we lead a process group, when it would fork.
  if command -v setsid > /dev/null 2>&1 && [ "$(ps -o pgid= -p "$BASHPID" | tr -d ' ')" != "$BASHPID" ]; then
    exec setsid "$@"
  fi
  exec "$@"
}

# alive = exists and is not a zombie (a killed child may linger as a zombie without a reaping init)
mq_alive() {
  [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null || return 1
  local state
  state="$(sed -E 's/^.*\) (.).*$/\1/' "/proc/$1/stat" 2>/dev/null || true)"
  [ "$state" != Z ]
}

# pid from a pid file if that process is alive and its command line contains <marker>
mq_pid_from_file() { # pidfile marker
  local f="$1" m="$2" pid
  [ -f "$f" ] || return 1
  pid="$(head -n1 "$f" 2>/dev/null | tr -dc '0-9')"
  [ -n "$pid" ] || return 1
  mq_alive "$pid" || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$m" || return 1
  echo "$pid"
}

mq_wait_gone() { # timeout_s pid...
  local t="$1"; shift
  local deadline=$(( $(date +%s) + t )) p alive
  while :; do
    alive=0
    for p in "$@"; do mq_alive "$p" && alive=1; done
    [ "$alive" = 0 ] && return 0
    [ "$(date +%s)" -ge "$deadline" ] && return 1
    sleep 0.1
  done
}

# SIGTERM, wait up to grace seconds, then SIGKILL; waits until the processes are gone
mq_stop_pids() { # grace_s label pid...
  local grace="$1" label="$2"; shift 2
  local p
  [ $# -gt 0 ] || return 0
  for p in "$@"; do kill -TERM "$p" 2>/dev/null || true; done
  if ! mq_wait_gone "$grace" "$@"; then
    local left=()
    for p in "$@"; do mq_alive "$p" && left+=("$p"); done
    mq_log "$label: pid ${left[*]} still running ${grace}s after SIGTERM, sending SIGKILL"
    for p in "$@"; do kill -KILL "$p" 2>/dev/null || true; done
    mq_wait_gone 30 "$@" || true
  fi
}

mq_kill_pids() { # label pid...   SIGKILL and wait until gone
  local label="$1"; shift
  local p
  for p in "$@"; do kill -KILL "$p" 2>/dev/null || true; done
  mq_wait_gone 30 "$@" || mq_err "$label: pid(s) $* still alive 30 s after SIGKILL"
}

# descendants of a pid (children, grandchildren...), for process trees such as postgres
mq_descendants() { # pid
  local c
  for c in $(ps -o pid= --ppid "$1" 2>/dev/null); do
    echo "$c"
    mq_descendants "$c"
  done
}

mq_rss_mb() { # pid... -> total RSS in MiB
  local total=0 r p
  for p in "$@"; do
    r="$(ps -o rss= -p "$p" 2>/dev/null | tr -d ' ')"
    total=$(( total + ${r:-0} ))
  done
  echo $(( total / 1024 ))
}

# ---------- ports ----------
mq_port_open() { # port [host]
  (exec 3<>"/dev/tcp/${2:-127.0.0.1}/$1") 2>/dev/null
}

# fail if a port we are about to bind is taken by some other process
mq_require_free_ports() { # label port...
  local label="$1"; shift
  local p who
  for p in "$@"; do
    if mq_port_open "$p"; then
      who="$(ss -Hltnp "sport = :$p" 2>/dev/null | grep -o 'users:.*' | head -n1)"
      mq_err "$label: port $p is already in use by another process ${who:-}"
      return 1
    fi
  done
}

# wait until <cmd...> succeeds; fail early if pid dies, or after timeout
mq_wait_until() { # timeout_s pid(or "") cmd args...
  local t="$1" pid="$2"; shift 2
  local deadline=$(( $(date +%s) + t ))
  until "$@" >/dev/null 2>&1; do
    if [ -n "$pid" ] && ! mq_alive "$pid"; then return 2; fi
    [ "$(date +%s)" -ge "$deadline" ] && return 1
    sleep 0.2
  done
}

mq_log_has() { grep -qF -- "$2" "$1" 2>/dev/null; } # file text

# ---------- installers ----------
mq_apt_missing() { # pkg... -> prints the packages that are not installed
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
  done
}

# Install Debian packages if missing. MQKIT_APT_WANT (set by brokers.sh) lists every package the
# current command needs, so the first broker to get here installs all of them in one apt run.
# Services are kept from auto-starting (policy-rc.d), the brokers run as our own processes.
mq_apt_ensure() { # pkg...
  [ -n "$(mq_apt_missing "$@")" ] || return 0
  mq_with_lock "$MQ_LOCKS/apt.lock" 900 _mq_apt_install "$@"
}
_mq_apt_install() {
  local missing rc=0 policy_created=0
  # shellcheck disable=SC2086
  missing="$(mq_apt_missing "$@" ${MQKIT_APT_WANT:-} | sort -u | tr '\n' ' ')"
  [ -n "${missing// /}" ] || return 0
  [ "$(id -u)" = 0 ] || { mq_err "need root to apt-get install $missing"; return 1; }
  mq_log "apt: installing $missing"
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\n# temporary, from mqkit scripts/brokers: keep services from auto-starting\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    policy_created=1
  fi
  # apt-get update only when a needed package is missing, and at most once per 30 minutes
  if [ -z "$(find "$MQ_RUN/.apt-updated" -mmin -30 2>/dev/null)" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq || rc=$?
    [ "$rc" = 0 ] && touch "$MQ_RUN/.apt-updated"
  fi
  if [ "$rc" = 0 ]; then
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing \
      > "$MQ_RUN/.apt-install.log" 2>&1 || rc=$?
    [ "$rc" = 0 ] || mq_show_log "$MQ_RUN/.apt-install.log" 30
  fi
  [ "$policy_created" = 1 ] && rm -f /usr/sbin/policy-rc.d
  return "$rc"
}

# Copy the runtime jars of <pom> into a cached folder (once); prints the folder.
# The jars come through the Maven local repository (~/.m2 unless MQKIT_MVN_ARGS says otherwise).
mq_maven_libs() { # name pom.xml
  local name="$1" pom="$2" hash dir
  hash="$(sha256sum "$pom" | cut -c1-12)"
  dir="$MQ_CACHE/jars/$name-$hash"
  if [ ! -f "$dir/.complete" ]; then
    mq_with_lock "$MQ_CACHE/jars/.$name.lock" 900 _mq_maven_fetch "$name" "$pom" "$dir" >&2 || return 1
  fi
  echo "$dir"
}
_mq_maven_fetch() {
  local name="$1" pom="$2" dir="$3" work t0
  [ -f "$dir/.complete" ] && return 0
  mq_java_ensure || return 1
  command -v mvn >/dev/null || mq_apt_ensure maven || return 1
  t0=$(mq_now_ms)
  mq_log "$name: downloading jars with Maven (cached afterwards in $dir)"
  work="$(mktemp -d "$MQ_CACHE/jars/.$name-XXXXXX")"
  cp "$pom" "$work/pom.xml"
  # shellcheck disable=SC2086
  if ! (cd "$work" && mvn -q -B -Dstyle.color=never ${MQKIT_MVN_ARGS:-} dependency:copy-dependencies \
          -DoutputDirectory="$work/libs" -DincludeScope=runtime > "$work/mvn.log" 2>&1); then
    mq_show_log "$work/mvn.log" 30
    rm -rf "$work"
    return 1
  fi
  rm -rf "$dir"
  mv "$work/libs" "$dir"
  touch "$dir/.complete"
  rm -rf "$work"
  mq_log "$name: jars ready in $(mq_secs_since "$t0") s ($(du -sm "$dir" | cut -f1) MB)"
}

# JDK 17+ for Kafka 4.x, RocketMQ, ElasticMQ
mq_java_ensure() {
  command -v java >/dev/null && return 0
  mq_apt_ensure openjdk-17-jre-headless
}

# A python venv with pinned pip packages (once); prints the venv folder.
mq_python_venv() { # name pip-spec...
  local name="$1"; shift
  local dir="$MQ_CACHE/venv/$name"
  if [ ! -f "$dir/.complete" ]; then
    mq_with_lock "$MQ_CACHE/venv/.$name.lock" 900 _mq_venv_create "$dir" "$@" >&2 || return 1
  fi
  echo "$dir"
}
_mq_venv_create() {
  local dir="$1"; shift
  local t0 py
  [ -f "$dir/.complete" ] && return 0
  t0=$(mq_now_ms)
  py="$(command -v python3 || true)"
  if [ -z "$py" ] || ! "$py" -c 'import venv, ensurepip' 2>/dev/null; then
    mq_apt_ensure python3 python3-venv || return 1
    py="$(command -v python3)"
  fi
  mq_log "creating python venv $dir ($*)"
  rm -rf "$dir"
  "$py" -m venv "$dir" || return 1
  if ! "$dir/bin/pip" install -q --disable-pip-version-check "$@" > "$dir.pip.log" 2>&1; then
    mq_show_log "$dir.pip.log" 30
    rm -rf "$dir"
    return 1
  fi
  rm -f "$dir.pip.log"
  touch "$dir/.complete"
  mq_log "venv ready in $(mq_secs_since "$t0") s"
}

# ---------- endpoints.json ----------

mq_write_endpoint() { # name json-object
  mkdir -p "$MQ_RUN"
  mq_with_lock "$MQ_LOCKS/endpoints.lock" 30 \
    python3 "$MQ_BROKERS_DIR/helpers.py" endpoints-merge "$MQ_ENDPOINTS" "$1" "$2"
}
