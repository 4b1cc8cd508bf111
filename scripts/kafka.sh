#!/usr/bin/env bash
# kafka.sh - a throw-away Apache Kafka (KRaft) broker or 3-node cluster on
# 127.0.0.1 for the integration tests. No Docker, no Kafka install: the broker
# jars come from Maven Central through scripts/pom.xml and are cached in
# .cache/kafka/libs.
#
# Usage: scripts/kafka.sh COMMAND [ARGS]
#   fetch            download the broker jars (skipped when the cache matches the pom)
#   up [--brokers N] start N combined broker+controller nodes (default 1) and wait
#                    until every one serves requests; prints the bootstrap list
#   up3              same as: up --brokers 3
#   down | stop      stop every node of this state dir (TERM, then KILL) and
#                    delete the data dirs
#   kill ID          SIGKILL node ID          pause ID    SIGSTOP node ID
#   resume ID        SIGCONT node ID          restart ID  (re)start node ID on
#                    its old config and data, wait until it is ready
#   pid ID           print the pid of node ID (exit 1 if it is not running)
#   bootstrap        print the bootstrap list
#   status           one line per node: id pid state port controller-port data-dir;
#                    exit 0 if all run, 1 if one is dead or paused, 3 if none is up
#   log ID [N]       print the last N (default 50) lines of node ID's server log
#
# Only the bootstrap list (up, bootstrap) or the asked-for value goes to stdout;
# progress and errors go to stderr.
#
# Environment (all optional):
#   KAFKA_STATE_DIR           where pids, configs and logs live   (.cache/kafka/run)
#   KAFKA_CACHE_DIR           jar cache                            (.cache/kafka)
#   KAFKA_DATA_ROOT           parent of the per-node data dirs     ($TMPDIR or /tmp)
#   KAFKA_PORT / KAFKA_CONTROLLER_PORT    force the ports of a single node
#   KAFKA_PORTS / KAFKA_CONTROLLER_PORTS  force ports for N nodes, comma separated
#   KAFKA_PORT_RANGE          where free ports are picked          (20000-31999)
#   KAFKA_AUTO_CREATE_TOPICS  auto.create.topics.enable            (true)
#   KAFKA_NUM_PARTITIONS      num.partitions                       (1)
#   KAFKA_REPLICATION_FACTOR  default.replication.factor           (number of nodes, max 3)
#   KAFKA_MIN_ISR             min.insync.replicas                  (1 single node, 2 cluster)
#   KAFKA_BROKER_PROPS        extra server.properties lines, newline or space separated k=v
#   KAFKA_HEAP                JVM heap                             (512m)
#   KAFKA_START_TIMEOUT       seconds to wait for readiness        (90)
#   KAFKA_STOP_TIMEOUT        seconds between SIGTERM and SIGKILL  (10)
#   KAFKA_FETCH_TIMEOUT       seconds allowed for the Maven fetch  (900)
#   JAVA / JAVA_HOME          the java to run (17 or newer)
# shellcheck disable=SC2015 # "a && b || die" is meant: die when either fails
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
POM=$SCRIPT_DIR/pom.xml
CACHE_DIR=${KAFKA_CACHE_DIR:-$REPO_ROOT/.cache/kafka}
LIBS_DIR=$CACHE_DIR/libs
STATE_DIR=${KAFKA_STATE_DIR:-$CACHE_DIR/run}
DATA_ROOT=${KAFKA_DATA_ROOT:-${TMPDIR:-/tmp}}
START_TIMEOUT=${KAFKA_START_TIMEOUT:-90}
STOP_TIMEOUT=${KAFKA_STOP_TIMEOUT:-10}
FETCH_TIMEOUT=${KAFKA_FETCH_TIMEOUT:-900}
HEAP=${KAFKA_HEAP:-512m}
# Ports are picked at random in this range: by default below the kernel's
# ephemeral range (32768+), so that outgoing connections do not take a port
# between the check and the bind.
PORT_RANGE=${KAFKA_PORT_RANGE:-20000-31999}
# Marker put on every broker's java command line: lets us recognise our own
# processes (pid reuse, leftovers) without ever matching anybody else's.
MARK=aioproducer.kafka.node

log() { printf 'kafka.sh: %s\n' "$*" >&2; }
die() { printf 'kafka.sh: error: %s\n' "$*" >&2; exit 1; }

is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }
for v in START_TIMEOUT STOP_TIMEOUT FETCH_TIMEOUT; do
  is_uint "${!v}" || die "KAFKA_$v must be a whole number of seconds, got '${!v}'"
done
[[ $HEAP =~ ^[0-9]+[kKmMgG]?$ ]] || die "KAFKA_HEAP must look like 512m, got '$HEAP'"
[[ $PORT_RANGE =~ ^([0-9]+)-([0-9]+)$ ]] && PORT_LO=${BASH_REMATCH[1]} PORT_HI=${BASH_REMATCH[2]} &&
  ((PORT_LO >= 1024 && PORT_LO <= PORT_HI && PORT_HI <= 65535 && PORT_HI - PORT_LO < 32768)) ||
  die "KAFKA_PORT_RANGE must look like 20000-31999 (1024..65535), got '$PORT_RANGE'"

now() { date +%s; }

# ---------------------------------------------------------------- java & jars

JAVA_BIN=
find_java() {
  [[ -n $JAVA_BIN ]] && return 0
  local j=
  if [[ -n ${JAVA:-} ]]; then
    j=$JAVA
  elif [[ -n ${JAVA_HOME:-} && -x $JAVA_HOME/bin/java ]]; then
    j=$JAVA_HOME/bin/java
  else
    j=$(command -v java 2>/dev/null) || true
  fi
  if [[ -z $j ]] || ! command -v "$j" >/dev/null 2>&1; then
    die "java not found${j:+ ($j)}: install a JDK 17 or newer (e.g. apt-get install openjdk-17-jre-headless) or set JAVA / JAVA_HOME"
  fi
  local ver major
  ver=$("$j" -version 2>&1 | sed -n 's/.*version "\([^"]*\)".*/\1/p' | head -n1) || true
  [[ -n $ver ]] || die "could not run '$j -version'; is it a working java?"
  major=${ver%%.*}
  [[ $major == 1 ]] && major=$(cut -d. -f2 <<<"$ver")
  is_uint "$major" && ((major >= 17)) || die "Kafka 4 needs java 17 or newer; '$j' is $ver"
  JAVA_BIN=$j
}

libs_ok() {
  [[ -f $LIBS_DIR/.pom.sha256 ]] || return 1
  [[ $(cat "$LIBS_DIR/.pom.sha256") == "$(sha256sum "$POM" | cut -d' ' -f1)" ]] || return 1
  compgen -G "$LIBS_DIR/kafka_2.13-*.jar" >/dev/null
}

cmd_fetch() {
  mkdir -p "$CACHE_DIR"
  # Several kafka.sh may start at once (single broker and cluster): one fetches,
  # the others wait for it. The lock is a subshell's, so no broker inherits it.
  (
    flock -w "$FETCH_TIMEOUT" 8 || die "timed out waiting for another fetch (lock $CACHE_DIR/.fetch.lock)"
    if libs_ok; then
      log "jars up to date in $LIBS_DIR"
      exit 0
    fi
    command -v mvn >/dev/null 2>&1 || die "mvn not found: install Maven 3 (apt-get install maven) to fetch the Kafka jars"
    local tmp t0
    t0=$(now)
    tmp=$(mktemp -d "$CACHE_DIR/libs.tmp.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
    log "fetching Kafka jars with Maven (up to ${FETCH_TIMEOUT}s, log in $CACHE_DIR/fetch.log)"
    if ! timeout --kill-after=10 "$FETCH_TIMEOUT" mvn -B -q -f "$POM" \
        dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp" \
        </dev/null >"$CACHE_DIR/fetch.log" 2>&1; then
      tail -n 30 "$CACHE_DIR/fetch.log" >&2 || true
      die "Maven could not fetch the Kafka jars (see $CACHE_DIR/fetch.log)"
    fi
    compgen -G "$tmp/kafka_2.13-*.jar" >/dev/null || die "Maven finished but no kafka_2.13 jar arrived"
    sha256sum "$POM" | cut -d' ' -f1 >"$tmp/.pom.sha256"
    rm -rf "$LIBS_DIR"
    mv "$tmp" "$LIBS_DIR"
    trap - EXIT
    log "fetched $(find "$LIBS_DIR" -name "*.jar" | wc -l) jars in $(($(now) - t0))s"
  ) 8>"$CACHE_DIR/.fetch.lock"
}

ensure_libs() { libs_ok || cmd_fetch; }

# ------------------------------------------------------------------ processes

# proc_state PID: prints the kernel state letter (R S D T Z ...) or nothing.
proc_state() {
  local s
  s=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
  s=${s##*) }
  printf '%s' "${s%% *}"
}

# ours PID NODEDIR: PID is alive (not a zombie) and is our broker for NODEDIR.
ours() {
  local pid=$1 dir=$2 st
  is_uint "$pid" || return 1
  st=$(proc_state "$pid")
  [[ -n $st && $st != Z && $st != X ]] || return 1
  tr '\0' '\n' 2>/dev/null <"/proc/$pid/cmdline" | grep -qxF -- "-D$MARK=$dir"
}

node_pid() { cat "$STATE_DIR/node-$1/pid" 2>/dev/null || true; }

# wait_gone PID NODEDIR SECONDS: 0 once the process is gone.
wait_gone() {
  local pid=$1 dir=$2 end=$(($(now) + $3))
  while ours "$pid" "$dir"; do
    (($(now) >= end)) && return 1
    sleep 0.2
  done
}

# stop_pids TIMEOUT PID:DIR...: TERM all, wait up to TIMEOUT, then KILL the rest.
stop_pids() {
  local timeout=$1 e pid dir
  shift
  for e in "$@"; do
    pid=${e%%:*} dir=${e#*:}
    if ours "$pid" "$dir"; then
      kill -CONT "$pid" 2>/dev/null || true # a paused JVM cannot act on TERM
      kill -TERM "$pid" 2>/dev/null || true
    fi
  done
  local end=$(($(now) + timeout))
  for e in "$@"; do
    pid=${e%%:*} dir=${e#*:}
    local left=$((end - $(now)))
    ((left < 0)) && left=0
    if ! wait_gone "$pid" "$dir" "$left"; then
      log "pid $pid did not stop within ${timeout}s after SIGTERM: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      wait_gone "$pid" "$dir" 10 || log "warning: pid $pid still there after SIGKILL"
    fi
  done
}

# ------------------------------------------------------------------- ports

# port_busy PORT: something listens on PORT. Sockets of a dead broker left in
# TIME_WAIT do not count: Kafka binds with SO_REUSEADDR.
port_busy() {
  if command -v ss >/dev/null 2>&1; then
    [[ -n $(ss -Htln "( sport = :$1 )" 2>/dev/null) ]]
  else
    timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
  fi
}

PICKED=" "
PORT_OUT=
# pick_port: sets PORT_OUT to a free port not handed out before (no $(...):
# PICKED must survive the call).
pick_port() {
  local p i
  for ((i = 0; i < 500; i++)); do
    p=$((PORT_LO + RANDOM % (PORT_HI - PORT_LO + 1)))
    [[ $PICKED == *" $p "* ]] && continue
    port_busy "$p" && continue
    PICKED+="$p "
    PORT_OUT=$p
    return 0
  done
  die "found no free port on 127.0.0.1"
}

# ------------------------------------------------------------- node configs

write_node_files() { # ID PORT CPORT VOTERS DATADIR NODES
  local id=$1 port=$2 cport=$3 voters=$4 data=$5 n=$6
  local dir=$STATE_DIR/node-$id
  local rf=${KAFKA_REPLICATION_FACTOR:-$((n < 3 ? n : 3))}
  local minisr=${KAFKA_MIN_ISR:-$((n == 1 ? 1 : 2))}
  local irf=$((n < 3 ? n : 3)) imin=$((n == 1 ? 1 : 2))
  mkdir -p "$dir"
  cat >"$dir/server.properties" <<EOF
# written by scripts/kafka.sh
process.roles=broker,controller
node.id=$id
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$data
num.partitions=${KAFKA_NUM_PARTITIONS:-1}
default.replication.factor=$rf
min.insync.replicas=$minisr
auto.create.topics.enable=${KAFKA_AUTO_CREATE_TOPICS:-true}
offsets.topic.replication.factor=$irf
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=$irf
transaction.state.log.min.isr=$imin
transaction.state.log.num.partitions=10
share.coordinator.state.topic.replication.factor=$irf
share.coordinator.state.topic.min.isr=$imin
group.initial.rebalance.delay.ms=0
log.segment.bytes=16777216
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
EOF
  if [[ -n ${KAFKA_BROKER_PROPS:-} ]]; then
    local kv
    for kv in $KAFKA_BROKER_PROPS; do
      [[ $kv == *=* ]] || die "KAFKA_BROKER_PROPS: '$kv' is not key=value"
      echo "$kv" >>"$dir/server.properties"
    done
  fi
  cat >"$dir/log4j2.properties" <<EOF
status = warn
name = kafka-test-broker
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = $dir/server.log
appender.file.append = true
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.request.name = kafka.request.logger
logger.request.level = WARN
EOF
  cat >"$dir/tool-log4j2.properties" <<EOF
status = warn
appender.err.type = Console
appender.err.name = STDERR
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.err.ref = STDERR
EOF
  cat >"$dir/node.env" <<EOF
NODE_ID=$id
PORT=$port
CONTROLLER_PORT=$cport
DATA_DIR=$data
EOF
}

node_env() { # ID VAR
  sed -n "s/^$2=//p" "$STATE_DIR/node-$1/node.env" 2>/dev/null | head -n1
}

format_node() { # ID CLUSTER_ID
  local dir=$STATE_DIR/node-$1
  if ! "$JAVA_BIN" -Xmx256m -XX:-UsePerfData -Dlog4j2.configurationFile="$dir/tool-log4j2.properties" \
      -cp "$LIBS_DIR/*" kafka.tools.StorageTool format -t "$2" -c "$dir/server.properties" \
      </dev/null >"$dir/format.log" 2>&1; then
    cat "$dir/format.log" >&2
    return 1
  fi
}

start_node() { # ID
  local id=$1 dir=$STATE_DIR/node-$1 pid
  # readiness looks only at what this start writes to the log
  stat -c %s "$dir/server.log" 2>/dev/null >"$dir/log.offset" || echo 0 >"$dir/log.offset"
  echo "=== start $(date '+%F %T')" >>"$dir/stdout.log"
  # setsid: the broker gets its own session, so a Ctrl-C aimed at whoever ran
  # us does not reach it; `down` (or a trap) stops it. All fds go to files:
  # a caller reading our stdout/stderr through a pipe must not wait for the
  # broker to exit.
  (
    cd "$dir"
    exec setsid "$JAVA_BIN" -Xms"$HEAP" -Xmx"$HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
      -XX:+ExitOnOutOfMemoryError -XX:-UsePerfData -Djava.awt.headless=true \
      -Dlog4j2.configurationFile="$dir/log4j2.properties" -Dkafka.logs.dir="$dir" \
      -D"$MARK=$dir" -cp "$LIBS_DIR/*" kafka.Kafka "$dir/server.properties"
  ) </dev/null >>"$dir/stdout.log" 2>&1 8>&- 9>&- &
  pid=$!
  echo "$pid" >"$dir/pid"
  STARTED+=("$id")
}

# probe PORT: one ApiVersions v0 request; any well-formed answer carrying our
# correlation id means the broker serves requests.
probe() {
  local hex
  # shellcheck disable=SC2016 # expanded by the inner bash
  hex=$(timeout 3 bash -c '
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf "\x00\x00\x00\x0f\x00\x12\x00\x00\x00\x00\x2a\x2a\x00\x05probe" >&3
    head -c 10 <&3 | od -An -tx1 | tr -d " \n"
  ' _ "$1" 2>/dev/null) || return 1
  [[ ${hex:8:8} == 00002a2a ]]
}

node_ready() { # ID
  local dir=$STATE_DIR/node-$1 off
  off=$(cat "$dir/log.offset" 2>/dev/null || echo 0)
  tail -c +"$((off + 1))" "$dir/server.log" 2>/dev/null | grep -q 'Kafka Server started' || return 1
  probe "$(node_env "$1" PORT)"
}

show_failure() { # ID
  local dir=$STATE_DIR/node-$1
  log "---- node $1: last lines of $dir/server.log"
  tail -n 40 "$dir/server.log" >&2 2>/dev/null || true
  if [[ -s $dir/stdout.log ]]; then
    log "---- node $1: last lines of $dir/stdout.log"
    tail -n 15 "$dir/stdout.log" >&2 || true
  fi
}

# wait_ready DEADLINE ID...: 0 when all are ready; 1 on timeout or death
# (FAILED_NODE says which).
FAILED_NODE=
FAIL_REASON=
wait_ready() {
  local deadline=$1 id pending
  shift
  pending=("$@")
  while ((${#pending[@]})); do
    local still=()
    for id in "${pending[@]}"; do
      if ! ours "$(node_pid "$id")" "$STATE_DIR/node-$id"; then
        FAILED_NODE=$id FAIL_REASON="exited during start-up"
        return 1
      fi
      node_ready "$id" || still+=("$id")
    done
    pending=("${still[@]}")
    ((${#pending[@]})) || break
    if (($(now) >= deadline)); then
      FAILED_NODE=${pending[0]} FAIL_REASON="not ready after ${START_TIMEOUT}s"
      return 1
    fi
    sleep 0.3
  done
}

bind_failed() { # ID
  grep -qE 'BindException|Address already in use' \
    "$STATE_DIR/node-$1/server.log" "$STATE_DIR/node-$1/stdout.log" 2>/dev/null
}

# ----------------------------------------------------------------- state dir

lock_state() {
  mkdir -p "$STATE_DIR"
  exec 9>"$STATE_DIR/.lock"
  flock -w 300 9 || die "another kafka.sh holds $STATE_DIR/.lock"
}

node_ids() {
  local d
  for d in "$STATE_DIR"/node-*; do
    if [[ -d $d ]]; then echo "${d##*/node-}"; fi
  done | sort -n
}

check_id() {
  is_uint "${1:-}" || die "need a node id (a number), got '${1:-}'"
  [[ -f $STATE_DIR/node-$1/node.env ]] || die "no node $1 in $STATE_DIR (nodes: $(node_ids | tr '\n' ' '))"
}

# kill and forget every node of this state dir, delete their data
teardown() {
  local id entries=()
  for id in $(node_ids); do
    entries+=("$(node_pid "$id"):$STATE_DIR/node-$id")
  done
  ((${#entries[@]})) && stop_pids "$1" "${entries[@]}"
  # safety net: a broker whose pid file got lost
  local p
  for p in $(pgrep -f -- "-D$MARK=$STATE_DIR/node-" 2>/dev/null || true); do
    log "stopping stray broker pid $p"
    kill -CONT "$p" 2>/dev/null || true
    kill -KILL "$p" 2>/dev/null || true
  done
  for id in $(node_ids); do
    local data
    data=$(node_env "$id" DATA_DIR)
    [[ -n $data && -d $data ]] && rm -rf -- "$data"
    rm -f "$STATE_DIR/node-$id/pid"
  done
  rm -f "$STATE_DIR/cluster.env"
}

# ------------------------------------------------------------------ commands

STARTED=()

cmd_up() {
  local n=1
  while (($#)); do
    case $1 in
      --brokers) n=${2:-}; shift 2 || die "--brokers needs a number" ;;
      --brokers=*) n=${1#*=}; shift ;;
      *) die "up: unknown argument '$1'" ;;
    esac
  done
  is_uint "$n" && ((n >= 1 && n <= 9)) || die "--brokers must be 1..9, got '$n'"
  local auto=${KAFKA_AUTO_CREATE_TOPICS:-true}
  [[ $auto == true || $auto == false ]] || die "KAFKA_AUTO_CREATE_TOPICS must be true or false, got '$auto'"

  find_java
  ensure_libs
  lock_state
  if [[ -f $STATE_DIR/cluster.env ]]; then
    local id alive=0
    for id in $(node_ids); do ours "$(node_pid "$id")" "$STATE_DIR/node-$id" && alive=1; done
    ((alive)) && die "a cluster is already running in $STATE_DIR (bootstrap $(sed -n 's/^BOOTSTRAP=//p' "$STATE_DIR/cluster.env")); run '$0 down' first"
  fi
  teardown 5 # leftovers of a previous run that was not taken down
  rm -rf "$STATE_DIR"/node-* "$STATE_DIR"/failed-*

  # forced ports
  local fports=() fcports=() forced=0
  if ((n == 1)); then
    [[ -n ${KAFKA_PORT:-} ]] && fports=("$KAFKA_PORT")
    [[ -n ${KAFKA_CONTROLLER_PORT:-} ]] && fcports=("$KAFKA_CONTROLLER_PORT")
  fi
  [[ -n ${KAFKA_PORTS:-} ]] && IFS=, read -r -a fports <<<"$KAFKA_PORTS"
  [[ -n ${KAFKA_CONTROLLER_PORTS:-} ]] && IFS=, read -r -a fcports <<<"$KAFKA_CONTROLLER_PORTS"
  local p
  for p in "${fports[@]}" "${fcports[@]}"; do
    is_uint "$p" && ((p > 0 && p < 65536)) || die "bad port '$p'"
    port_busy "$p" && die "port $p on 127.0.0.1 is already in use (forced by KAFKA_PORT(S)/KAFKA_CONTROLLER_PORT(S)); free it or let kafka.sh pick a port"
    PICKED+="$p "
    forced=1
  done
  ((${#fports[@]} == 0 || ${#fports[@]} == n)) || die "KAFKA_PORTS needs $n ports, got ${#fports[@]}"
  ((${#fcports[@]} == 0 || ${#fcports[@]} == n)) || die "KAFKA_CONTROLLER_PORTS needs $n ports, got ${#fcports[@]}"

  trap 'on_up_exit $?' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM

  local attempt t0 i
  t0=$(now)
  for attempt in 1 2 3; do
    local ports=() cports=() voters="" cid
    for ((i = 1; i <= n; i++)); do
      if [[ -n ${fports[i - 1]:-} ]]; then ports+=("${fports[i - 1]}"); else pick_port; ports+=("$PORT_OUT"); fi
      if [[ -n ${fcports[i - 1]:-} ]]; then cports+=("${fcports[i - 1]}"); else pick_port; cports+=("$PORT_OUT"); fi
      voters+="${voters:+,}$i@127.0.0.1:${cports[i - 1]}"
    done
    # a cluster id is 16 random bytes in unpadded url-safe base64; like Kafka's
    # own, never one starting with '-', which the format tool takes for an option
    cid=-
    while [[ $cid == -* ]]; do
      cid=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
    done
    local fpids=()
    for ((i = 1; i <= n; i++)); do
      local data
      data=$(mktemp -d "$DATA_ROOT/aioproducer-kafka-$i.XXXXXX")
      write_node_files "$i" "${ports[i - 1]}" "${cports[i - 1]}" "$voters" "$data" "$n"
      format_node "$i" "$cid" &
      fpids+=($!)
    done
    for p in "${fpids[@]}"; do wait "$p" || die "formatting the storage failed"; done
    log "starting $n node(s), cluster id $cid, attempt $attempt"
    for ((i = 1; i <= n; i++)); do start_node "$i"; done
    if wait_ready $(($(now) + START_TIMEOUT)) $(seq 1 "$n"); then
      local boot=""
      for ((i = 1; i <= n; i++)); do boot+="${boot:+,}127.0.0.1:${ports[i - 1]}"; done
      cat >"$STATE_DIR/cluster.env" <<EOF
BOOTSTRAP=$boot
NODES=$n
CLUSTER_ID=$cid
STARTED=$(date '+%F %T')
EOF
      STARTED=()
      trap - EXIT INT TERM
      log "ready in $(($(now) - t0))s: $boot (state in $STATE_DIR)"
      echo "$boot"
      return 0
    fi
    if ((!forced)) && bind_failed "$FAILED_NODE" && ((attempt < 3)); then
      log "node $FAILED_NODE lost a port race; retrying with new ports"
      teardown 5
      for ((i = 1; i <= n; i++)); do mv "$STATE_DIR/node-$i" "$STATE_DIR/failed-$attempt-node-$i" 2>/dev/null || true; done
      STARTED=()
      continue
    fi
    show_failure "$FAILED_NODE"
    die "node $FAILED_NODE $FAIL_REASON (log: $STATE_DIR/node-$FAILED_NODE/server.log)"
  done
}

# EXIT trap of `up`: on failure take down what was started.
on_up_exit() {
  local rc=$1
  trap - EXIT INT TERM
  if ((rc != 0)); then
    ((${#STARTED[@]})) && log "start-up failed (exit $rc): stopping the nodes started"
    teardown 5 || true
  fi
  exit "$rc"
}

cmd_down() {
  lock_state
  local id n=0
  for id in $(node_ids); do
    ours "$(node_pid "$id")" "$STATE_DIR/node-$id" && n=$((n + 1))
  done
  teardown "$STOP_TIMEOUT"
  if ((n)); then
    log "stopped $n node(s); logs kept in $STATE_DIR/node-*/server.log"
  else
    log "no node running in $STATE_DIR; data dirs cleaned"
  fi
}

cmd_signal() { # SIG ID
  local sig=$1 id=$2 pid dir
  check_id "$id"
  dir=$STATE_DIR/node-$id
  pid=$(node_pid "$id")
  ours "$pid" "$dir" || die "node $id is not running"
  kill -"$sig" "$pid"
  case $sig in
    KILL)
      wait_gone "$pid" "$dir" 10 || die "node $id (pid $pid) survived SIGKILL"
      log "node $id (pid $pid) killed"
      ;;
    STOP) log "node $id (pid $pid) paused" ;;
    CONT) log "node $id (pid $pid) resumed" ;;
  esac
}

cmd_restart() {
  local id=$1 dir pid
  check_id "$id"
  find_java
  ensure_libs
  lock_state
  dir=$STATE_DIR/node-$id
  pid=$(node_pid "$id")
  if ours "$pid" "$dir"; then
    log "stopping node $id (pid $pid)"
    stop_pids "$STOP_TIMEOUT" "$pid:$dir"
  fi
  local port cport
  port=$(node_env "$id" PORT) cport=$(node_env "$id" CONTROLLER_PORT)
  port_busy "$port" && die "port $port of node $id is taken by another process"
  port_busy "$cport" && die "controller port $cport of node $id is taken by another process"
  local t0
  t0=$(now)
  start_node "$id"
  if ! wait_ready $(($(now) + START_TIMEOUT)) "$id"; then
    show_failure "$id"
    kill -KILL "$(node_pid "$id")" 2>/dev/null || true
    wait_gone "$(node_pid "$id")" "$dir" 10 || true
    die "node $id $FAIL_REASON after restart"
  fi
  log "node $id (pid $(node_pid "$id")) ready in $(($(now) - t0))s"
}

cmd_status() {
  [[ -f $STATE_DIR/cluster.env ]] || { log "no cluster in $STATE_DIR"; return 3; }
  local id pid st state all=0
  printf 'bootstrap %s\n' "$(sed -n 's/^BOOTSTRAP=//p' "$STATE_DIR/cluster.env")"
  for id in $(node_ids); do
    pid=$(node_pid "$id")
    if ours "$pid" "$STATE_DIR/node-$id"; then
      st=$(proc_state "$pid")
      [[ $st == T ]] && state=paused || state=running
    else
      state=dead all=1
    fi
    [[ $state == paused ]] && all=1
    printf 'node %s pid %s %s port %s controller %s data %s\n' "$id" "${pid:--}" "$state" \
      "$(node_env "$id" PORT)" "$(node_env "$id" CONTROLLER_PORT)" "$(node_env "$id" DATA_DIR)"
  done
  return "$all"
}

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0" >&2; }

main() {
  local cmd=${1:-}
  (($#)) && shift
  case $cmd in
    fetch) cmd_fetch ;;
    up) cmd_up "$@" ;;
    up3) cmd_up --brokers 3 "$@" ;;
    down | stop) cmd_down ;;
    kill) cmd_signal KILL "${1:-}" ;;
    pause) cmd_signal STOP "${1:-}" ;;
    resume) cmd_signal CONT "${1:-}" ;;
    restart) cmd_restart "${1:-}" ;;
    pid)
      check_id "${1:-}"
      local pid
      pid=$(node_pid "$1")
      ours "$pid" "$STATE_DIR/node-$1" || die "node $1 is not running"
      echo "$pid"
      ;;
    bootstrap)
      [[ -f $STATE_DIR/cluster.env ]] || die "no cluster in $STATE_DIR (run '$0 up')"
      sed -n 's/^BOOTSTRAP=//p' "$STATE_DIR/cluster.env"
      ;;
    status) cmd_status ;;
    log)
      check_id "${1:-}"
      tail -n "${2:-50}" "$STATE_DIR/node-$1/server.log"
      ;;
    -h | --help | help) usage ;;
    "") usage; exit 2 ;;
    *) usage; die "unknown command '$cmd'" ;;
  esac
}

main "$@"
