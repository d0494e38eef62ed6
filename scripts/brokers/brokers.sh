#!/usr/bin/env bash
# mqkit local brokers without Docker: `pnpm brokers <command> [NAME...]`
#
#   up [NAME...]          install what is missing, start, wait until really serving (all six by default)
#   down [NAME...]        graceful stop (all six by default)
#   status [NAME...]      one line per broker: running/stopped, pid(s), endpoint (exit 3 if one is stopped)
#   kill NAME...          SIGKILL the broker's process(es), for fault tests
#   restart NAME...       start again on the same data (after a kill or a graceful stop), wait until ready
#   logs NAME             print the path of the main log file(s)
#   rocketmq-topic NAME:TYPE...         create RocketMQ typed topics (TYPE = NORMAL|FIFO|DELAY|TRANSACTION)
#   rocketmq-group NAME[:FIFO]...       create RocketMQ consumer groups (FIFO = orderly consumption)
#   rabbitmqctl ARGS...                 rabbitmqctl against the mqkit node
#
# NAME: kafka rabbitmq rocketmq sqs postgres redis  (sqs = ElasticMQ :9324 + moto :4566 for SNS)
# Data, logs, pids: <repo>/.mqkit/<name>/; endpoints: <repo>/.mqkit/endpoints.json
# Env: MQKIT_CACHE (jar folders + venvs, default ~/.cache/mqkit), MQKIT_MVN_ARGS (extra mvn args,
#      e.g. -Dmaven.repo.local=/tmp/m2), MQKIT_START_TIMEOUT (seconds, overrides each broker's default),
#      MQKIT_RUN_DIR (instead of <repo>/.mqkit). Details: scripts/brokers/README.md
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
for _b in "${MQ_ALL_BROKERS[@]}"; do
  # shellcheck disable=SC1090
  source "$MQ_BROKERS_DIR/$_b.sh"
done

usage() {
  awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "${BASH_SOURCE[0]}" >&2
  exit 2
}

is_broker() { local b; for b in "${MQ_ALL_BROKERS[@]}"; do [ "$b" = "$1" ] && return 0; done; return 1; }

# validated, de-duplicated broker names; default = all six (if allowed)
NAMES=()
parse_names() { # allow_default names...
  local allow_default="$1" n; shift
  NAMES=()
  for n in "$@"; do
    is_broker "$n" || { mq_err "unknown broker '$n' (known: ${MQ_ALL_BROKERS[*]})"; exit 2; }
    [[ " ${NAMES[*]-} " == *" $n "* ]] || NAMES+=("$n")
  done
  if [ ${#NAMES[@]} -eq 0 ]; then
    [ "$allow_default" = 1 ] || { mq_err "name a broker (${MQ_ALL_BROKERS[*]})"; exit 2; }
    NAMES=("${MQ_ALL_BROKERS[@]}")
  fi
}

timeout_for() { echo "${MQKIT_START_TIMEOUT:-$("$1"_timeout)}"; }

# ---------- per-broker actions (run under the broker's lock) ----------
broker_up() { # name
  local n="$1" t0 pids
  t0=$(mq_now_ms)
  pids="$("$n"_pids | xargs)"
  if broker_running "$n"; then
    mq_log "$n: already running (pid $pids)"
    mq_write_endpoint "$n" "$("$n"_endpoint_json)"
    return 0
  fi
  "$n"_install || { mq_err "$n: install failed"; return 1; }
  local t1; t1=$(mq_now_ms)
  "$n"_start "$(timeout_for "$n")" || { mq_err "$n: start failed"; return 1; }
  mq_write_endpoint "$n" "$("$n"_endpoint_json)"
  pids="$("$n"_pids | xargs)"
  mq_log "$n: ready in $(mq_secs_since "$t0") s (start $(mq_secs_since "$t1") s), pid $pids, $("$n"_endpoint_text)"
}

broker_down() {
  local n="$1" pids t0
  t0=$(mq_now_ms)
  pids="$("$n"_pids | xargs)"
  if [ -z "$pids" ]; then mq_log "$n: not running"; return 0; fi
  "$n"_stop
  mq_log "$n: stopped in $(mq_secs_since "$t0") s"
}

broker_kill() {
  local n="$1" pids
  pids="$("$n"_pids | xargs)"
  if [ -z "$pids" ]; then mq_log "$n: not running"; return 0; fi
  "$n"_kill
  mq_log "$n: killed (SIGKILL pid $pids)"
}

broker_restart() {
  local n="$1" pids
  pids="$("$n"_pids | xargs)"
  if [ -n "$pids" ]; then
    mq_log "$n: running (pid $pids), stopping it first"
    "$n"_stop || return 1
  fi
  # a process killed from outside may take a moment to vanish
  mq_wait_until 30 "" broker_is_stopped "$n" || { mq_err "$n: old process still alive"; return 1; }
  broker_up "$n"
}

# running = every process of the broker is up (rocketmq: namesrv + proxy, sqs: elasticmq + moto)
broker_running() {
  if declare -F "$1"_running >/dev/null; then "$1"_running; else [ -n "$("$1"_pids | xargs)" ]; fi
}

broker_is_stopped() { [ -z "$("$1"_pids | xargs)" ]; }

broker_status_line() {
  local n="$1" pids
  pids="$("$n"_pids | xargs)"
  if broker_running "$n"; then
    printf '%-9s running  pid %-16s %s\n' "$n" "${pids// /,}" "$("$n"_endpoint_text)"
  elif [ -n "$pids" ]; then
    printf '%-9s partial  pid %-16s %s\n' "$n" "${pids// /,}" "$("$n"_endpoint_text) (some processes are down)"
    return 3
  else
    printf '%-9s stopped  %-20s %s\n' "$n" "" "$("$n"_endpoint_text)"
    return 3
  fi
}

locked() { # action name
  mq_with_lock "$MQ_LOCKS/$2.lock" 900 "broker_$1" "$2"
}

# run <action> for every name, in parallel when there are several; per-line "[name] " prefixes
run_all() { # action names...
  local action="$1"; shift
  if [ $# -eq 1 ]; then locked "$action" "$1"; return; fi
  local tmp n rc=0 t0
  t0=$(mq_now_ms)
  tmp="$(mktemp -d)"
  for n in "$@"; do
    ( set +e; locked "$action" "$n" 2>&1 | sed -u "s/^/[$n] /"; echo "${PIPESTATUS[0]}" > "$tmp/$n.rc" ) &
  done
  wait
  local failed=()
  for n in "$@"; do
    [ "$(cat "$tmp/$n.rc" 2>/dev/null || echo 1)" = 0 ] || failed+=("$n")
  done
  rm -rf "$tmp"
  if [ ${#failed[@]} -gt 0 ]; then
    mq_err "$action failed for: ${failed[*]}"
    rc=1
  else
    mq_log "$action $*: done in $(mq_secs_since "$t0") s"
  fi
  return $rc
}

cmd="${1:-}"
[ -n "$cmd" ] || usage
shift
mkdir -p "$MQ_RUN"
# python3 runs the readiness probes and writes endpoints.json
command -v python3 >/dev/null || mq_apt_ensure python3 || mq_die "python3 is needed"
case "$cmd" in
  up)
    parse_names 1 "$@"
    want=""
    for n in "${NAMES[@]}"; do want+=" $("$n"_apt_packages)"; done
    export MQKIT_APT_WANT="$want"
    run_all up "${NAMES[@]}"
    ;;
  down)
    parse_names 1 "$@"
    run_all down "${NAMES[@]}"
    ;;
  status)
    parse_names 1 "$@"
    rc=0
    for n in "${NAMES[@]}"; do broker_status_line "$n" || rc=3; done
    exit $rc
    ;;
  kill)
    parse_names 0 "$@"
    for n in "${NAMES[@]}"; do locked kill "$n"; done
    ;;
  restart)
    parse_names 0 "$@"
    export MQKIT_APT_WANT=""
    run_all restart "${NAMES[@]}"
    ;;
  logs)
    parse_names 1 "$@"
    for n in "${NAMES[@]}"; do printf '%-9s %s\n' "$n" "$("$n"_logs | xargs)"; done
    ;;
  rocketmq-topic)
    [ $# -gt 0 ] || usage
    rocketmq_create_topics "$@"
    ;;
  rocketmq-group)
    [ $# -gt 0 ] || usage
    rocketmq_create_groups "$@"
    ;;
  rabbitmqctl)
    rabbitmq_ctl "$@"
    ;;
  -h|--help|help) usage ;;
  *) mq_err "unknown command '$cmd'"; usage ;;
esac
