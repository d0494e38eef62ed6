# RocketMQ 5.3.3 from Maven Central jars: NameServer 127.0.0.1:9876 + Proxy in local mode (broker
# embedded), gRPC endpoint 127.0.0.1:8081 (remoting 8080, broker 10911/10909/10912).
#   .mqkit/rocketmq/{namesrv.log, proxy.log, *.pid, broker.conf, rmq-proxy.json, store/, home/logs/rocketmqlogs/}
# Topics are typed (message.type): a fresh store is seeded with ROCKETMQ_SEED_TOPICS; more at runtime with
#   brokers.sh rocketmq-topic NAME:NORMAL|FIFO|DELAY|TRANSACTION ...
# shellcheck shell=bash

ROCKETMQ_NAMESRV="127.0.0.1:9876"
ROCKETMQ_GRPC_PORT=8081
ROCKETMQ_CONF="$MQ_BROKERS_DIR/rocketmq"
ROCKETMQ_READINESS_TOPIC="mqkit-readiness"
# seeded into a fresh store (no mqadmin JVM needed); mqkit-readiness takes the start-up probe messages
ROCKETMQ_SEED_TOPICS="${MQKIT_ROCKETMQ_TOPICS:-mqkit-smoke:NORMAL mqkit-smoke-fifo:FIFO mqkit-smoke-delay:DELAY mqkit-smoke-tx:TRANSACTION} $ROCKETMQ_READINESS_TOPIC:NORMAL"
ROCKETMQ_SEED_FIFO_GROUPS="${MQKIT_ROCKETMQ_FIFO_GROUPS:-mqkit-smoke-fifo-group}"
ROCKETMQ_NAMESRV_OPTS="${MQKIT_ROCKETMQ_NAMESRV_OPTS:--Xms64m -Xmx128m -XX:MaxDirectMemorySize=64m}"
ROCKETMQ_PROXY_OPTS="${MQKIT_ROCKETMQ_PROXY_OPTS:--Xms256m -Xmx512m -XX:MaxDirectMemorySize=256m}"
ROCKETMQ_TOOLS_OPTS="-Xms32m -Xmx128m -XX:+UseSerialGC -XX:TieredStopAtLevel=1"

rocketmq_timeout() { echo 180; }   # warm 16-24 s on 2 busy cores
rocketmq_apt_packages() { :; }
rocketmq_endpoint_json() { echo "{\"endpoints\":\"127.0.0.1:$ROCKETMQ_GRPC_PORT\",\"namesrv\":\"$ROCKETMQ_NAMESRV\"}"; }
rocketmq_endpoint_text() { echo "127.0.0.1:$ROCKETMQ_GRPC_PORT (namesrv $ROCKETMQ_NAMESRV)"; }
rocketmq_logs() { local d="$MQ_RUN/rocketmq"; echo "$d/proxy.log $d/namesrv.log $d/home/logs/rocketmqlogs/"; }

rocketmq_namesrv_pid() { mq_pid_from_file "$MQ_RUN/rocketmq/namesrv.pid" "-Dmqkit.broker=rocketmq-namesrv" || true; }
rocketmq_proxy_pid() { mq_pid_from_file "$MQ_RUN/rocketmq/proxy.pid" "-Dmqkit.broker=rocketmq-proxy" || true; }
rocketmq_pids() { rocketmq_proxy_pid; rocketmq_namesrv_pid; }
rocketmq_running() { [ -n "$(rocketmq_proxy_pid)" ] && [ -n "$(rocketmq_namesrv_pid)" ]; }

rocketmq_install() {
  mq_java_ensure || return 1
  ROCKETMQ_LIBS="$(mq_maven_libs rocketmq "$ROCKETMQ_CONF/pom.xml")" || return 1
}

rocketmq_java_common() { # marker
  local dir="$MQ_RUN/rocketmq"
  echo "-Dmqkit.broker=$1 -Duser.home=$dir/home -XX:+UseG1GC -XX:-OmitStackTraceInFastThrow -Djava.awt.headless=true"
}

# mqadmin <subcommand> args...  (one JVM per call, ~4 s)
rocketmq_admin() {
  [ -n "${ROCKETMQ_LIBS:-}" ] || rocketmq_install || return 1
  local dir; dir="$(mq_dir rocketmq)"
  # shellcheck disable=SC2086
  ROCKETMQ_HOME="$dir/home" java $ROCKETMQ_TOOLS_OPTS -Duser.home="$dir/home" \
    -Drmq.logback.configurationFile=rmq.tools.logback.xml -cp "$ROCKETMQ_LIBS/*" \
    org.apache.rocketmq.tools.command.MQAdminStartup "$@" < /dev/null
}

# topics.json / subscriptionGroup.json for a fresh store (the recipe's fast path)
rocketmq_seed_store() {
  local cfg="$MQ_RUN/rocketmq/store/config" now sep spec t ty g q=8
  [ -f "$cfg/topics.json" ] && return 0
  mkdir -p "$cfg"
  now="$(date +%s)000"
  { printf '{"dataVersion":{"counter":1,"stateVersion":0,"timestamp":%s},"topicConfigTable":{' "$now"; sep=""
    for spec in $ROCKETMQ_SEED_TOPICS; do t=${spec%%:*}; ty=${spec##*:}
      printf '%s"%s":{"topicName":"%s","readQueueNums":%s,"writeQueueNums":%s,"perm":6,"topicFilterType":"SINGLE_TAG","topicSysFlag":0,"order":false,"attributes":{"message.type":"%s"}}' \
        "$sep" "$t" "$t" "$q" "$q" "$ty"; sep=","
    done; printf '}}\n'; } > "$cfg/topics.json"
  { printf '{"dataVersion":{"counter":1,"stateVersion":0,"timestamp":%s},"forbiddenTable":{},"subscriptionGroupTable":{' "$now"; sep=""
    for g in $ROCKETMQ_SEED_FIFO_GROUPS; do
      printf '%s"%s":{"groupName":"%s","consumeEnable":true,"consumeFromMinEnable":false,"consumeBroadcastEnable":false,"consumeMessageOrderly":true,"retryQueueNums":1,"retryMaxTimes":16,"brokerId":0,"whichBrokerWhenConsumeSlowly":1,"notifyConsumerIdsChangedEnable":true,"groupSysFlag":0,"consumeTimeoutMinute":15,"attributes":{}}' \
        "$sep" "$g" "$g"; sep=","
    done; printf '}}\n'; } > "$cfg/subscriptionGroup.json"
}

rocketmq_probe_send() { # a real send through NameServer route + broker
  rocketmq_admin sendMessage -n "$ROCKETMQ_NAMESRV" -t "$ROCKETMQ_READINESS_TOPIC" -p "mqkit readiness probe" -c readiness \
    2>&1 | grep -q SEND_OK
}

rocketmq_start() { # timeout_s
  local dir npid ppid rc=0 deadline
  dir="$(mq_dir rocketmq)"
  deadline=$(( $(date +%s) + $1 ))
  mkdir -p "$dir/home"
  sed "s|__RUN_DIR__|$dir|g" "$ROCKETMQ_CONF/broker.conf.template" > "$dir/broker.conf"
  cp "$ROCKETMQ_CONF/namesrv.conf" "$ROCKETMQ_CONF/rmq-proxy.json" "$dir/"
  rocketmq_seed_store
  export ROCKETMQ_HOME="$dir/home"    # must be set, the broker exits -2 without it

  npid="$(rocketmq_namesrv_pid)"
  if [ -z "$npid" ]; then
    mq_require_free_ports rocketmq 9876 || return 1
    [ -f "$dir/namesrv.log" ] && mv -f "$dir/namesrv.log" "$dir/namesrv.log.prev"
    # shellcheck disable=SC2046,SC2086
    mq_clean_exec nohup java $ROCKETMQ_NAMESRV_OPTS $(rocketmq_java_common rocketmq-namesrv) \
      -Drmq.logback.configurationFile=rmq.namesrv.logback.xml -cp "$ROCKETMQ_LIBS/*" \
      org.apache.rocketmq.namesrv.NamesrvStartup -c "$dir/namesrv.conf" > "$dir/namesrv.log" 2>&1 < /dev/null &
    npid=$!
    echo "$npid" > "$dir/namesrv.pid"
  fi
  ppid="$(rocketmq_proxy_pid)"
  if [ -z "$ppid" ]; then
    mq_require_free_ports rocketmq "$ROCKETMQ_GRPC_PORT" 8080 10911 10909 10912 || return 1
    [ -f "$dir/proxy.log" ] && mv -f "$dir/proxy.log" "$dir/proxy.log.prev"
    : > "$dir/proxy.log"
    # the proxy's broker registers with the NameServer (it retries until the NameServer listens)
    # shellcheck disable=SC2046,SC2086
    mq_clean_exec nohup java $ROCKETMQ_PROXY_OPTS $(rocketmq_java_common rocketmq-proxy) \
      -Drmq.logback.configurationFile=rmq.proxy.logback.xml -cp "$ROCKETMQ_LIBS/*" \
      org.apache.rocketmq.proxy.ProxyStartup -pm local -pc "$dir/rmq-proxy.json" -bc "$dir/broker.conf" \
      -n "$ROCKETMQ_NAMESRV" > "$dir/proxy.log" 2>&1 < /dev/null &
    ppid=$!
    echo "$ppid" > "$dir/proxy.pid"
  fi

  # NameServer: "The Name Server boot success" and its port answering
  mq_wait_until $(( deadline - $(date +%s) )) "$npid" mq_log_has "$dir/namesrv.log" "boot success" || rc=$?
  [ "$rc" = 0 ] || { mq_err "rocketmq: NameServer not up (rc $rc)"; mq_show_log "$dir/namesrv.log"; return 1; }
  # Proxy: readiness line (printed after the embedded broker registered and gRPC listens)
  mq_wait_until $(( deadline - $(date +%s) )) "$ppid" mq_log_has "$dir/proxy.log" "rocketmq-proxy startup successfully" || rc=$?
  [ "$rc" = 0 ] && { mq_port_open "$ROCKETMQ_GRPC_PORT" || rc=1; }
  # a real send (route from the NameServer, stored by the broker)
  [ "$rc" = 0 ] && { mq_wait_until $(( deadline - $(date +%s) )) "$ppid" rocketmq_probe_send || rc=$?; }
  if [ "$rc" != 0 ]; then
    if [ "$rc" = 2 ]; then mq_err "rocketmq: proxy process exited"; else mq_err "rocketmq: not ready in time"; fi
    mq_show_log "$dir/proxy.log"
    mq_show_log "$dir/home/logs/rocketmqlogs/broker.log" 20
    return 1
  fi
}

rocketmq_stop() {
  local p n
  p="$(rocketmq_proxy_pid)"; n="$(rocketmq_namesrv_pid)"
  # proxy first (its broker unregisters from the NameServer); its SIGTERM shutdown takes 15-20 s
  [ -z "$p" ] || mq_stop_pids 30 rocketmq-proxy "$p"
  [ -z "$n" ] || mq_stop_pids 10 rocketmq-namesrv "$n"
  rm -f "$MQ_RUN/rocketmq/proxy.pid" "$MQ_RUN/rocketmq/namesrv.pid"
}

rocketmq_kill() {
  # shellcheck disable=SC2046
  mq_kill_pids rocketmq $(rocketmq_pids)
}

# brokers.sh rocketmq-topic NAME:TYPE ...   (parallel mqadmin updateTopic, retried)
rocketmq_create_topics() {
  local spec t ty pids=() rc=0 dir
  [ -n "$(rocketmq_proxy_pid)" ] || { mq_err "rocketmq is not running (brokers.sh up rocketmq)"; return 1; }
  rocketmq_install || return 1
  dir="$(mq_dir rocketmq)/admin"; mkdir -p "$dir"
  for spec in "$@"; do
    t="${spec%%:*}"; ty="${spec##*:}"
    [ "$t" != "$spec" ] || ty=NORMAL
    case "$ty" in NORMAL|FIFO|DELAY|TRANSACTION) ;; *) mq_err "bad topic type '$ty' in '$spec' (NORMAL|FIFO|DELAY|TRANSACTION)"; return 2 ;; esac
    _rocketmq_retry 3 "$dir/topic-$t.log" updateTopic -n "$ROCKETMQ_NAMESRV" -c DefaultCluster -t "$t" \
      -r 8 -w 8 -a "+message.type=$ty" &
    pids+=($!)
  done
  for spec in "${pids[@]}"; do wait "$spec" || rc=1; done
  for spec in "$@"; do
    t="${spec%%:*}"
    if grep -q "success" "$dir/topic-$t.log"; then mq_log "rocketmq topic $spec: created/updated"
    else mq_err "rocketmq topic $spec failed:"; tail -n 5 "$dir/topic-$t.log" >&2; rc=1; fi
  done
  return $rc
}

# brokers.sh rocketmq-group NAME[:FIFO] ...   (FIFO = orderly consumption, needed for FIFO topics)
rocketmq_create_groups() {
  local spec g o pids=() rc=0 dir
  [ -n "$(rocketmq_proxy_pid)" ] || { mq_err "rocketmq is not running (brokers.sh up rocketmq)"; return 1; }
  rocketmq_install || return 1
  dir="$(mq_dir rocketmq)/admin"; mkdir -p "$dir"
  for spec in "$@"; do
    g="${spec%%:*}"; o=false
    [ "${spec##*:}" = FIFO ] && [ "$g" != "$spec" ] && o=true
    _rocketmq_retry 3 "$dir/group-$g.log" updateSubGroup -n "$ROCKETMQ_NAMESRV" -c DefaultCluster -g "$g" -o "$o" &
    pids+=($!)
  done
  for spec in "${pids[@]}"; do wait "$spec" || rc=1; done
  for spec in "$@"; do
    g="${spec%%:*}"
    if grep -q "success" "$dir/group-$g.log"; then mq_log "rocketmq group $spec: created/updated"
    else mq_err "rocketmq group $spec failed:"; tail -n 5 "$dir/group-$g.log" >&2; rc=1; fi
  done
  return $rc
}

_rocketmq_retry() { # attempts logfile mqadmin-args...
  local n="$1" log="$2" _; shift 2
  for _ in $(seq 1 "$n"); do
    rocketmq_admin "$@" > "$log" 2>&1 && grep -q success "$log" && return 0
    sleep 2
  done
  return 1
}
