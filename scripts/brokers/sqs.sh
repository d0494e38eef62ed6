# SQS + SNS emulators. The name `sqs` starts/stops/kills both:
#   ElasticMQ 1.7.1 (Maven Central jars) SQS on http://127.0.0.1:9324  - SQS tests and benchmarks
#   moto 5.2.5 (PyPI, cached venv)  SNS (+ its own SQS) on http://127.0.0.1:4566 - SNS and SNS->SQS fan-out
#   .mqkit/sqs/{elasticmq.log, elasticmq.pid, elasticmq-h2.mv.db, moto.log, moto.pid}
# ElasticMQ keeps queues and messages in H2 (restart keeps them, not crash-safe); moto is in-memory
# (a restart loses its topics/queues/messages). SDK config: region us-east-1, credentials test/test.
# shellcheck shell=bash

SQS_PORT=9324
SNS_PORT=4566
SQS_REGION=us-east-1
SQS_CONF="$MQ_BROKERS_DIR/sqs"
MOTO_VERSION=5.2.5
# default JIT (C2): better for benchmarks; add -XX:TieredStopAtLevel=1 for a ~2 s faster start
ELASTICMQ_JAVA_OPTS="${MQKIT_ELASTICMQ_JAVA_OPTS:--Xms64m -Xmx768m -XX:+UseSerialGC}"

sqs_timeout() { echo 90; }
sqs_apt_packages() { :; }
sqs_endpoint_json() {
  echo "{\"endpoint\":\"http://127.0.0.1:$SQS_PORT\",\"snsEndpoint\":\"http://127.0.0.1:$SNS_PORT\",\"region\":\"$SQS_REGION\"}"
}
sqs_endpoint_text() { echo "http://127.0.0.1:$SQS_PORT (sns http://127.0.0.1:$SNS_PORT, $SQS_REGION)"; }
sqs_logs() { echo "$MQ_RUN/sqs/elasticmq.log $MQ_RUN/sqs/moto.log"; }

sqs_elasticmq_pid() { mq_pid_from_file "$MQ_RUN/sqs/elasticmq.pid" "-Dmqkit.broker=sqs-elasticmq" || true; }
sqs_moto_pid() { mq_pid_from_file "$MQ_RUN/sqs/moto.pid" "moto_server -H 127.0.0.1 -p $SNS_PORT" || true; }
sqs_pids() { sqs_elasticmq_pid; sqs_moto_pid; }
sqs_running() { [ -n "$(sqs_elasticmq_pid)" ] && [ -n "$(sqs_moto_pid)" ]; }

sqs_install() {
  # the two downloads are independent: run them side by side
  local venv_out rc=0
  mq_java_ensure || return 1
  command -v curl >/dev/null || mq_apt_ensure curl || return 1
  venv_out="$(mktemp)"
  ( mq_python_venv "moto-$MOTO_VERSION" "moto[server]==$MOTO_VERSION" > "$venv_out" ) &
  local vpid=$!
  ELASTICMQ_LIBS="$(mq_maven_libs elasticmq "$SQS_CONF/pom.xml")" || rc=1
  wait "$vpid" || rc=1
  MOTO_VENV="$(cat "$venv_out")"; rm -f "$venv_out"
  return $rc
}

# a real SQS JSON-protocol call; moto routes by the SigV4 credential scope (no header = S3)
sqs_list_queues() { # port
  curl -sf -o /dev/null --max-time 5 -X POST -H 'Content-Type: application/x-amz-json-1.0' \
    -H 'X-Amz-Target: AmazonSQS.ListQueues' \
    -H "Authorization: AWS4-HMAC-SHA256 Credential=test/20260101/$SQS_REGION/sqs/aws4_request, SignedHeaders=host, Signature=0" \
    -d '{}' "http://127.0.0.1:$1/"
}
sqs_sns_list_topics() {
  curl -sf --max-time 5 -X POST -H 'Content-Type: application/x-www-form-urlencoded' \
    -H "Authorization: AWS4-HMAC-SHA256 Credential=test/20260101/$SQS_REGION/sns/aws4_request, SignedHeaders=host, Signature=0" \
    -d 'Action=ListTopics&Version=2010-03-31' "http://127.0.0.1:$SNS_PORT/" | grep -q ListTopicsResponse
}

sqs_start() { # timeout_s
  local dir epid mpid rc=0 deadline
  dir="$(mq_dir sqs)"
  deadline=$(( $(date +%s) + $1 ))
  epid="$(sqs_elasticmq_pid)"
  if [ -z "$epid" ]; then
    mq_require_free_ports sqs "$SQS_PORT" || return 1
    [ -f "$dir/elasticmq.log" ] && mv -f "$dir/elasticmq.log" "$dir/elasticmq.log.prev"
    # -D overrides beat elasticmq.conf; messages-storage = H2 file, so a restart keeps queues + messages
    # shellcheck disable=SC2086
    mq_clean_exec nohup java $ELASTICMQ_JAVA_OPTS -Dmqkit.broker=sqs-elasticmq -Djava.awt.headless=true \
      -Dconfig.file="$SQS_CONF/elasticmq.conf" -Dlogback.configurationFile="$SQS_CONF/logback.xml" \
      -Dmessages-storage.enabled=true -Dmessages-storage.uri="jdbc:h2:$dir/elasticmq-h2" \
      -cp "$ELASTICMQ_LIBS/*" org.elasticmq.server.Main > "$dir/elasticmq.log" 2>&1 < /dev/null &
    epid=$!
    echo "$epid" > "$dir/elasticmq.pid"
  fi
  mpid="$(sqs_moto_pid)"
  if [ -z "$mpid" ]; then
    mq_require_free_ports sqs "$SNS_PORT" || return 1
    [ -f "$dir/moto.log" ] && mv -f "$dir/moto.log" "$dir/moto.log.prev"
    mq_clean_exec nohup "$MOTO_VENV/bin/python" "$MOTO_VENV/bin/moto_server" -H 127.0.0.1 -p "$SNS_PORT" \
      > "$dir/moto.log" 2>&1 < /dev/null &
    mpid=$!
    echo "$mpid" > "$dir/moto.pid"
  fi
  mq_wait_until $(( deadline - $(date +%s) )) "$epid" sqs_list_queues "$SQS_PORT" || rc=$?
  if [ "$rc" != 0 ]; then
    mq_err "sqs: ElasticMQ not answering ListQueues on $SQS_PORT (rc $rc)"; mq_show_log "$dir/elasticmq.log"; return 1
  fi
  mq_wait_until $(( deadline - $(date +%s) )) "$mpid" sqs_list_queues "$SNS_PORT" || rc=$?
  [ "$rc" = 0 ] && { mq_wait_until 10 "$mpid" sqs_sns_list_topics || rc=$?; }
  if [ "$rc" != 0 ]; then
    mq_err "sqs: moto not answering SQS ListQueues / SNS ListTopics on $SNS_PORT (rc $rc)"; mq_show_log "$dir/moto.log"; return 1
  fi
}

sqs_stop() {
  local e m
  e="$(sqs_elasticmq_pid)"; m="$(sqs_moto_pid)"
  # ElasticMQ's SIGTERM shutdown waits for in-flight long polls (WaitTimeSeconds up to 20 s)
  # shellcheck disable=SC2086
  mq_stop_pids 25 sqs $e $m
  rm -f "$MQ_RUN/sqs/elasticmq.pid" "$MQ_RUN/sqs/moto.pid"
}

sqs_kill() {
  # shellcheck disable=SC2046
  mq_kill_pids sqs $(sqs_pids)
}
