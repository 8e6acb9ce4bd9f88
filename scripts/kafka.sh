#!/usr/bin/env bash
# scripts/kafka.sh — a real single-node Apache Kafka 4.x broker (KRaft,
# combined broker+controller) on loopback, for the integration suite and CI.
#
# Usage: scripts/kafka.sh COMMAND [ARGS]
#   start           start the broker (idempotent); waits until it answers
#                   requests, then prints the bootstrap host:port as the LAST
#                   line on stdout (all progress goes to stderr)
#   stop            SIGTERM, then SIGKILL after KAFKA_STOP_TIMEOUT s (idempotent)
#   restart         stop + start, same data directory and port
#   kill            SIGKILL the broker (crash tests); data is kept
#   status          prints "running ..." (exit 0) or "stopped" (exit 3)
#   bootstrap       prints host:port (does not start anything)
#   classpath       resolves Kafka if needed and prints the java classpath
#   tool CLASS ...  runs one of Kafka's tools with java -cp, e.g.
#                     scripts/kafka.sh tool TopicCommand --list
#                   (short names are looked up under org.apache.kafka.tools,
#                   e.g. ConsoleConsumer = ...tools.consumer.ConsoleConsumer;
#                   --bootstrap-server is NOT added for you)
#   logs [N]        last N (default 100) lines of the broker log
#   clean           stop and delete the state directory (data, log, config)
#
# Requirements: Java 17+ and Maven 3.8+ (only for the first, cold run; the
# jars are then cached and no network is needed).
#
# Environment (all optional):
#   KAFKA_VERSION          Apache Kafka version              (default 4.4.0)
#   KAFKA_HOST             listen/advertised address          (default 127.0.0.1)
#   KAFKA_PORT             client port                        (default 19092)
#   KAFKA_CONTROLLER_PORT  KRaft controller port              (default KAFKA_PORT+1)
#   KAFKA_HEAP             broker heap flags                  (default -Xms256m -Xmx512m)
#   KAFKA_JVM_OPTS         extra broker JVM flags
#   KAFKA_START_TIMEOUT    seconds start waits for an answer  (default 90)
#   KAFKA_STOP_TIMEOUT     seconds stop waits before SIGKILL  (default 30)
#   KAFKA_CLUSTER_ID       cluster id used when formatting    (default: generated)
#   BOLTRELAY_CACHE        cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/boltrelay);
#                          jars go to $BOLTRELAY_CACHE/kafka-$KAFKA_VERSION
#   KAFKA_LIBS_DIR         use these jars instead of resolving with Maven
#   BOLTRELAY_STATE        state root (default ${XDG_STATE_HOME:-$HOME/.local/state}/boltrelay)
#   KAFKA_STATE_DIR        state directory (default $BOLTRELAY_STATE/kafka-$KAFKA_PORT)
#   JAVA_HOME / JAVA       which java to run;  MVN  which mvn to run
#   KAFKA_MVN_OPTS         extra arguments for mvn (e.g. -o, -s settings.xml)
set -euo pipefail

SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
CONF_DIR="$SCRIPT_DIR/kafka"
SERVER_TEMPLATE="$CONF_DIR/server.properties"
LOG4J_CONF="$CONF_DIR/log4j2.properties"

KAFKA_VERSION="${KAFKA_VERSION:-4.4.0}"
KAFKA_HOST="${KAFKA_HOST:-127.0.0.1}"
KAFKA_PORT="${KAFKA_PORT:-19092}"
KAFKA_HEAP="${KAFKA_HEAP:--Xms256m -Xmx512m}"
KAFKA_JVM_OPTS="${KAFKA_JVM_OPTS:-}"
KAFKA_START_TIMEOUT="${KAFKA_START_TIMEOUT:-90}"
KAFKA_STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"
KAFKA_MVN_OPTS="${KAFKA_MVN_OPTS:-}"
# Pinned so Maven needs no plugin-metadata lookup (and is reproducible).
DEPENDENCY_PLUGIN="org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
# slf4j 1.x binding for log4j 2, matching the log4j-core Kafka depends on.
LOG4J_VERSION="${KAFKA_LOG4J_VERSION:-2.25.5}"

die() { printf 'kafka.sh: %s\n' "$*" >&2; exit 1; }
say() { printf 'kafka.sh: %s\n' "$*" >&2; }

is_uint() { [[ "$1" =~ ^[0-9]+$ ]]; }
is_uint "$KAFKA_PORT" || die "KAFKA_PORT must be a number, got '$KAFKA_PORT'"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-$((KAFKA_PORT + 1))}"
is_uint "$KAFKA_CONTROLLER_PORT" || die "KAFKA_CONTROLLER_PORT must be a number"
is_uint "$KAFKA_START_TIMEOUT" || die "KAFKA_START_TIMEOUT must be a number of seconds"
is_uint "$KAFKA_STOP_TIMEOUT" || die "KAFKA_STOP_TIMEOUT must be a number of seconds"
BOOTSTRAP="$KAFKA_HOST:$KAFKA_PORT"

CACHE_ROOT="${BOLTRELAY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/boltrelay}"
KAFKA_HOME_DIR="$CACHE_ROOT/kafka-$KAFKA_VERSION"
LIBS_DIR="${KAFKA_LIBS_DIR:-$KAFKA_HOME_DIR/libs}"

STATE_ROOT="${BOLTRELAY_STATE:-${XDG_STATE_HOME:-$HOME/.local/state}/boltrelay}"
STATE_DIR="${KAFKA_STATE_DIR:-$STATE_ROOT/kafka-$KAFKA_PORT}"
DATA_DIR="$STATE_DIR/data"
PID_FILE="$STATE_DIR/kafka.pid"
LOG_FILE="$STATE_DIR/kafka.log"
RENDERED_PROPS="$STATE_DIR/server.properties"
CLIENT_PROPS="$STATE_DIR/client.properties"
LOCK_FILE="$STATE_DIR/kafka.sh.lock"

if [[ -n "${JAVA:-}" ]]; then :
elif [[ -n "${JAVA_HOME:-}" && -x "${JAVA_HOME}/bin/java" ]]; then JAVA="$JAVA_HOME/bin/java"
else JAVA=java
fi
MVN="${MVN:-mvn}"

# ---------------------------------------------------------------- helpers

check_java() {
  command -v "$JAVA" >/dev/null 2>&1 || die "java not found (install Java 17+ or set JAVA_HOME)"
  local v major
  v="$("$JAVA" -version 2>&1 | awk -F'"' '/version/ {print $2; exit}')"
  major="${v%%.*}"
  [[ "$major" == 1 ]] && major="$(cut -d. -f2 <<<"$v")"
  if is_uint "${major:-x}" && ((major < 17)); then
    die "Kafka $KAFKA_VERSION needs Java 17+, '$JAVA' is $v"
  fi
}

# Resolve kafka_2.13 + kafka-tools (+ a log4j slf4j binding) with their runtime
# dependencies into $LIBS_DIR, once. A marker file makes later runs offline.
resolve_kafka() {
  if [[ -n "${KAFKA_LIBS_DIR:-}" ]]; then
    compgen -G "$LIBS_DIR/kafka_2.13-*.jar" >/dev/null || die "KAFKA_LIBS_DIR=$LIBS_DIR has no kafka_2.13 jar"
    return 0
  fi
  [[ -f "$KAFKA_HOME_DIR/.resolved" ]] && compgen -G "$LIBS_DIR/kafka_2.13-*.jar" >/dev/null && return 0

  command -v "$MVN" >/dev/null 2>&1 || die "mvn not found: needed once to fetch Apache Kafka $KAFKA_VERSION into $KAFKA_HOME_DIR"
  mkdir -p "$KAFKA_HOME_DIR"
  local pom="$KAFKA_HOME_DIR/pom.xml" tmp="$KAFKA_HOME_DIR/libs.tmp.$$"
  cat >"$pom" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!-- Generated by boltrelay scripts/kafka.sh: runtime jars of Apache Kafka $KAFKA_VERSION. -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.boltrelay</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>$KAFKA_VERSION</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>$KAFKA_VERSION</version>
    </dependency>
    <dependency>
      <!-- StorageTool helpers, TopicCommand, console producer/consumer, ... -->
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka-tools</artifactId>
      <version>$KAFKA_VERSION</version>
      <exclusions>
        <!-- Kafka Connect (Jetty, Jersey) is only needed by connect-plugin-path. -->
        <exclusion><groupId>org.apache.kafka</groupId><artifactId>connect-runtime</artifactId></exclusion>
      </exclusions>
    </dependency>
    <dependency>
      <!-- Kafka logs through slf4j 1.7; route it to log4j 2 like the distribution. -->
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>$LOG4J_VERSION</version>
    </dependency>
  </dependencies>
</project>
EOF
  say "resolving Apache Kafka $KAFKA_VERSION with Maven into $LIBS_DIR (first run only)"
  rm -rf "$tmp"
  # shellcheck disable=SC2086 # KAFKA_MVN_OPTS is a list of words on purpose
  if ! "$MVN" -B -q -Dstyle.color=never -f "$pom" $KAFKA_MVN_OPTS \
      "$DEPENDENCY_PLUGIN:copy-dependencies" \
      -DincludeScope=runtime -DoutputDirectory="$tmp" 2>&1 | sed $'s/\x1b\\[[0-9;]*m//g' >&2; then
    rm -rf "$tmp"
    die "Maven could not resolve org.apache.kafka:kafka_2.13:$KAFKA_VERSION (try another KAFKA_VERSION)"
  fi
  compgen -G "$tmp/kafka_2.13-$KAFKA_VERSION.jar" >/dev/null || { rm -rf "$tmp"; die "no kafka_2.13-$KAFKA_VERSION.jar after resolution"; }
  rm -rf "$LIBS_DIR"
  mv "$tmp" "$LIBS_DIR"
  printf '%s\n' "$KAFKA_VERSION" >"$KAFKA_HOME_DIR/.resolved"
}

classpath() { printf '%s/*' "$LIBS_DIR"; }

# JVM flags for Kafka's short-lived command-line tools: small, fast to start,
# logging WARN to stderr so their stdout stays parseable.
tool_jvm() {
  TOOL_JVM=(-Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true
    -Dlog4j2.configurationFile="$LOG4J_CONF" -Dlog4j2.shutdownHookEnabled=false
    -Dboltrelay.kafka.log.level=WARN -Dboltrelay.kafka.log.target=SYSTEM_ERR
    -cp "$(classpath)")
}

# Run a Kafka tool class in the foreground. Short names are looked up under
# org.apache.kafka.tools (TopicCommand, ConsoleProducer, consumer.ConsoleConsumer).
run_tool() {
  local cls="$1"; shift
  case "$cls" in
    org.* | kafka.* | com.* | io.*) ;;
    StorageTool) cls="kafka.tools.StorageTool" ;;
    ConsoleConsumer | ConsoleShareConsumer) cls="org.apache.kafka.tools.consumer.$cls" ;;
    ConsumerGroupCommand | ShareGroupCommand) cls="org.apache.kafka.tools.consumer.group.$cls" ;;
    ReassignPartitionsCommand) cls="org.apache.kafka.tools.reassign.$cls" ;;
    StreamsGroupCommand) cls="org.apache.kafka.tools.streams.$cls" ;;
    *) cls="org.apache.kafka.tools.$cls" ;;
  esac
  tool_jvm
  "$JAVA" "${TOOL_JVM[@]}" "$cls" "$@"
}

render_config() {
  mkdir -p "$DATA_DIR"
  [[ -f "$SERVER_TEMPLATE" ]] || die "missing $SERVER_TEMPLATE"
  local esc_dir
  esc_dir="$(printf '%s' "$DATA_DIR" | sed 's/[\\&|]/\\&/g')"
  sed -e "s|@@KAFKA_HOST@@|$KAFKA_HOST|g" \
      -e "s|@@KAFKA_PORT@@|$KAFKA_PORT|g" \
      -e "s|@@KAFKA_CONTROLLER_PORT@@|$KAFKA_CONTROLLER_PORT|g" \
      -e "s|@@KAFKA_DATA_DIR@@|$esc_dir|g" \
      "$SERVER_TEMPLATE" >"$RENDERED_PROPS.tmp"
  if grep -q '@@[A-Z_]*@@' "$RENDERED_PROPS.tmp"; then
    die "unrendered placeholder in $SERVER_TEMPLATE: $(grep -o '@@[A-Z_]*@@' "$RENDERED_PROPS.tmp" | head -1)"
  fi
  mv "$RENDERED_PROPS.tmp" "$RENDERED_PROPS"
  cat >"$CLIENT_PROPS" <<EOF
request.timeout.ms=5000
default.api.timeout.ms=10000
EOF
}

format_storage() {
  [[ -f "$DATA_DIR/meta.properties" ]] && return 0
  local cid="${KAFKA_CLUSTER_ID:-}"
  if [[ -z "$cid" ]]; then
    cid="$(run_tool kafka.tools.StorageTool random-uuid | tail -n1)"
  fi
  [[ -n "$cid" ]] || die "could not generate a cluster id"
  say "formatting KRaft storage in $DATA_DIR (cluster id $cid)"
  run_tool kafka.tools.StorageTool format --standalone -t "$cid" -c "$RENDERED_PROPS" >&2 \
    || die "StorageTool format failed"
}

# The pid of our broker if it is alive, else nothing. Guards against stale pid
# files, reused pids and zombies by checking the command line.
broker_pid() {
  [[ -f "$PID_FILE" ]] || return 0
  local pid cmd
  pid="$(tr -dc '0-9' <"$PID_FILE" 2>/dev/null || true)"
  [[ -n "$pid" ]] || return 0
  kill -0 "$pid" 2>/dev/null || return 0
  if [[ -r "/proc/$pid/cmdline" ]]; then
    cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)"
  else
    cmd="$(ps -p "$pid" -o args= 2>/dev/null || true)"
  fi
  [[ "$cmd" == *kafka.Kafka*"$RENDERED_PROPS"* ]] && printf '%s\n' "$pid"
  return 0
}

port_open() { (exec 3<>"/dev/tcp/$KAFKA_HOST/$1") 2>/dev/null; }

# True once the broker answers an ApiVersions request on the client listener
# (a bare TCP connect is not enough: the socket opens before requests are served).
answers() {
  port_open "$KAFKA_PORT" || return 1
  tool_jvm
  timeout 30 "$JAVA" "${TOOL_JVM[@]}" org.apache.kafka.tools.BrokerApiVersionsCommand \
    --bootstrap-server "$BOOTSTRAP" --command-config "$CLIENT_PROPS" >/dev/null 2>&1
}

log_tail() {
  if [[ -f "$LOG_FILE" ]]; then
    printf -- '--- last lines of %s ---\n' "$LOG_FILE" >&2
    tail -n "${1:-60}" "$LOG_FILE" >&2
    printf -- '--- end ---\n' >&2
  fi
}

wait_until_answers() {
  local pid="$1" deadline=$((SECONDS + KAFKA_START_TIMEOUT))
  while ((SECONDS < deadline)); do
    if [[ -z "$(broker_pid)" ]]; then
      say "broker (pid $pid) exited during startup"
      log_tail 80
      return 1
    fi
    answers && return 0
    sleep 0.5
  done
  say "broker (pid $pid) did not answer on $BOOTSTRAP within ${KAFKA_START_TIMEOUT}s"
  log_tail 80
  return 1
}

with_lock() {
  mkdir -p "$STATE_DIR"
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$LOCK_FILE"
    flock -w 300 9 || die "could not lock $LOCK_FILE"
  fi
}

# ---------------------------------------------------------------- commands

cmd_start() {
  with_lock
  local pid
  pid="$(broker_pid)"
  if [[ -n "$pid" ]]; then
    say "already running (pid $pid), waiting for it to answer"
    wait_until_answers "$pid" || exit 1
    printf '%s\n' "$BOOTSTRAP"
    return 0
  fi
  rm -f "$PID_FILE"
  check_java
  resolve_kafka
  render_config
  for p in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
    port_open "$p" && die "$KAFKA_HOST:$p is already in use by another process (set KAFKA_PORT)"
  done
  format_storage

  # Keep the log bounded across many restarts.
  if [[ -f "$LOG_FILE" ]] && (($(wc -c <"$LOG_FILE") > 20 * 1024 * 1024)); then
    mv -f "$LOG_FILE" "$LOG_FILE.1"
  fi
  printf '==== kafka.sh start %s: Apache Kafka %s on %s ====\n' "$(date '+%F %T')" "$KAFKA_VERSION" "$BOOTSTRAP" >>"$LOG_FILE"

  say "starting Apache Kafka $KAFKA_VERSION on $BOOTSTRAP (state $STATE_DIR)"
  # The inner shell writes its own pid, then execs java in its place, in a new
  # session so the broker outlives this script and its terminal.
  # shellcheck disable=SC2086,SC2016 # heap/JVM opts are word lists; $$ is for the inner shell
  setsid nohup bash -c 'echo $$ >"$0"; exec "$@"' "$PID_FILE" \
    "$JAVA" $KAFKA_HEAP -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
    $KAFKA_JVM_OPTS \
    -Dlog4j2.configurationFile="$LOG4J_CONF" -Dboltrelay.kafka.log.level=INFO \
    -Dboltrelay.kafka.log.target=SYSTEM_OUT \
    -cp "$(classpath)" kafka.Kafka "$RENDERED_PROPS" \
    >>"$LOG_FILE" 2>&1 </dev/null 9>&- &
  local i
  for ((i = 0; i < 50; i++)); do
    [[ -s "$PID_FILE" ]] && break
    sleep 0.1
  done
  pid="$(tr -dc '0-9' <"$PID_FILE" 2>/dev/null || true)"
  [[ -n "$pid" ]] || { log_tail; die "broker did not start"; }
  local t0=$SECONDS
  if ! wait_until_answers "$pid"; then
    # Do not leave a half-started broker behind.
    if [[ -n "$(broker_pid)" ]]; then
      say "stopping the broker that did not come up (pid $pid)"
      kill -TERM "$pid" 2>/dev/null || true
      wait_gone "$pid" 10 || { kill -KILL "$pid" 2>/dev/null || true; wait_gone "$pid" 10 || true; }
    fi
    rm -f "$PID_FILE"
    exit 1
  fi
  say "broker pid $pid answers on $BOOTSTRAP (after $((SECONDS - t0))s)"
  printf '%s\n' "$BOOTSTRAP"
}

wait_gone() { # pid seconds
  local pid="$1" deadline=$((SECONDS + $2))
  while ((SECONDS < deadline)); do
    [[ -z "$(broker_pid)" ]] && return 0
    sleep 0.2
  done
  [[ -z "$(broker_pid)" ]]
}

cmd_stop() {
  with_lock
  local pid
  pid="$(broker_pid)"
  if [[ -z "$pid" ]]; then
    rm -f "$PID_FILE"
    say "not running"
    return 0
  fi
  say "stopping broker (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  if ! wait_gone "$pid" "$KAFKA_STOP_TIMEOUT"; then
    say "still running after ${KAFKA_STOP_TIMEOUT}s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    wait_gone "$pid" 15 || die "pid $pid survived SIGKILL"
  fi
  rm -f "$PID_FILE"
  say "stopped"
}

cmd_kill() {
  with_lock
  local pid
  pid="$(broker_pid)"
  if [[ -z "$pid" ]]; then
    rm -f "$PID_FILE"
    say "not running"
    return 0
  fi
  say "SIGKILL broker (pid $pid); data kept in $DATA_DIR"
  kill -KILL "$pid" 2>/dev/null || true
  wait_gone "$pid" 15 || die "pid $pid survived SIGKILL"
  rm -f "$PID_FILE"
  printf '==== kafka.sh kill %s: SIGKILL pid %s ====\n' "$(date '+%F %T')" "$pid" >>"$LOG_FILE"
}

cmd_status() {
  local pid
  pid="$(broker_pid)"
  if [[ -n "$pid" ]]; then
    printf 'running pid=%s bootstrap=%s version=%s state=%s\n' "$pid" "$BOOTSTRAP" "$KAFKA_VERSION" "$STATE_DIR"
    return 0
  fi
  printf 'stopped\n'
  return 3
}

cmd_clean() {
  cmd_stop
  say "removing $STATE_DIR"
  rm -rf "$STATE_DIR"
}

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//' >&2; }

main() {
  local cmd="${1:-}"
  [[ $# -gt 0 ]] && shift
  case "$cmd" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    restart) cmd_stop; exec 9>&-; cmd_start ;;
    kill) cmd_kill ;;
    status) cmd_status ;;
    bootstrap) printf '%s\n' "$BOOTSTRAP" ;;
    classpath) check_java; resolve_kafka; classpath; echo ;;
    tool)
      [[ $# -ge 1 ]] || die "usage: kafka.sh tool CLASS [ARGS...]"
      check_java; resolve_kafka; run_tool "$@" ;;
    logs) tail -n "${1:-100}" "$LOG_FILE" ;;
    clean) cmd_clean ;;
    -h | --help | help) usage ;;
    *) usage; exit 2 ;;
  esac
}

main "$@"
