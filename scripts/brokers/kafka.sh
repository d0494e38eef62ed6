# Kafka 4.4.0, single KRaft node (broker + controller), from Maven Central jars. Sourced by brokers.sh.
#   client 127.0.0.1:9092, controller 127.0.0.1:9093
#   .mqkit/kafka/{kafka.log, kafka.pid, server.properties, data/}
# shellcheck shell=bash

KAFKA_PORT=9092
KAFKA_CLUSTER_ID="MkU3OEVBNTcwNTJENDM2Qk"   # any 22-char base64 UUID; fixed so `format` runs once
KAFKA_HEAP="${MQKIT_KAFKA_HEAP:--Xms128m -Xmx512m}"
KAFKA_CONF="$MQ_BROKERS_DIR/kafka"

kafka_timeout() { echo 120; }          # warm start 6-10 s, up to 40 s on busy CPUs
kafka_apt_packages() { :; }
kafka_endpoint_json() { echo "{\"brokers\":\"127.0.0.1:$KAFKA_PORT\"}"; }
kafka_endpoint_text() { echo "127.0.0.1:$KAFKA_PORT"; }
kafka_logs() { echo "$MQ_RUN/kafka/kafka.log"; }

kafka_pids() { mq_pid_from_file "$MQ_RUN/kafka/kafka.pid" "-Dmqkit.broker=kafka" || true; }

kafka_install() {
  mq_java_ensure || return 1
  KAFKA_LIBS="$(mq_maven_libs kafka "$KAFKA_CONF/pom.xml")" || return 1
}

kafka_start() { # timeout_s
  local dir pid rc log java_opts
  dir="$(mq_dir kafka)"
  log="$dir/kafka.log"
  mq_require_free_ports kafka "$KAFKA_PORT" $((KAFKA_PORT + 1)) || return 1
  mkdir -p "$dir/data"
  sed "s#__DATA_DIR__#$dir/data#" "$KAFKA_CONF/server.properties" > "$dir/server.properties"
  java_opts=(-Dmqkit.broker=kafka "-Dlog4j2.configurationFile=$KAFKA_CONF/log4j2.properties"
             -Djava.awt.headless=true -cp "$KAFKA_LIBS/*")
  # format the storage once (a restart keeps the data)
  if [ ! -f "$dir/data/meta.properties" ]; then
    if ! java -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC "${java_opts[@]}" kafka.tools.StorageTool format \
          -t "$KAFKA_CLUSTER_ID" -c "$dir/server.properties" --ignore-formatted > "$dir/format.log" 2>&1; then
      mq_show_log "$dir/format.log"; return 1
    fi
  fi
  [ -f "$log" ] && mv -f "$log" "$log.prev"
  : > "$log"
  # shellcheck disable=SC2086
  mq_clean_exec nohup java $KAFKA_HEAP -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError \
    "${java_opts[@]}" kafka.Kafka "$dir/server.properties" >> "$log" 2>&1 < /dev/null &
  pid=$!
  echo "$pid" > "$dir/kafka.pid"
  # ready = readiness line in the log + a Metadata round trip that lists the broker
  rc=0
  mq_wait_until "$1" "$pid" mq_log_has "$log" "Kafka Server started" || rc=$?
  [ "$rc" = 0 ] && { mq_wait_until 30 "$pid" python3 "$MQ_BROKERS_DIR/helpers.py" kafka-ready 127.0.0.1 "$KAFKA_PORT" || rc=$?; }
  if [ "$rc" != 0 ]; then
    if [ "$rc" = 2 ]; then mq_err "kafka: process $pid exited"; else mq_err "kafka: not ready after $1 s"; fi
    mq_show_log "$log"
    return 1
  fi
}

kafka_stop() {
  local pids
  pids="$(kafka_pids)"
  [ -n "$pids" ] || return 0
  # shellcheck disable=SC2086
  mq_stop_pids 30 kafka $pids   # SIGTERM = controlled shutdown
  rm -f "$MQ_RUN/kafka/kafka.pid"
}

kafka_kill() {
  # shellcheck disable=SC2046
  mq_kill_pids kafka $(kafka_pids)
}
