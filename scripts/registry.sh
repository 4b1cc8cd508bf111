#!/usr/bin/env bash
# registry.sh - a throw-away Schema Registry on 127.0.0.1 for the serde tests:
# Apicurio Registry 2.6.13.Final, whose Confluent-compatible API lives under
# /apis/ccompat/v7. No Docker, no install: Maven fetches the ready-to-run server
# (io.apicurio:apicurio-registry-app:2.6.13.Final, classifier "all", a tar.gz)
# from Maven Central into .cache/registry, where it is unpacked once. It runs on
# Java 17 (Apicurio 3.x needs Java 21) and keeps its data in memory (H2): every
# `up` starts empty.
#
# Usage: scripts/registry.sh COMMAND
#   fetch     download and unpack the server (skipped when it is there)
#   up        start it on a free port and wait until the Confluent API answers
#             (GET /apis/ccompat/v7/subjects returns 200); prints the base URL
#             for clients, http://127.0.0.1:PORT/apis/ccompat/v7, as its last line
#   down|stop stop it (TERM, then KILL) and wait until it is gone
#   url       print the base URL of the running registry
#   status    one line: url pid running|dead; exit 0 running, 1 dead, 3 none
#   log [N]   print the last N (default 50) lines of its log
#
# Only the URL goes to stdout; progress and errors go to stderr.
#
# Compatibility: Apicurio's default is NONE (any change is accepted); `up` sets
# the global compatibility rule to REGISTRY_COMPATIBILITY, by default BACKWARD,
# Confluent Schema Registry's default. (Apicurio's ccompat GET /config still
# answers NONE: it does not show the global rule, which is enforced all the same.)
#
# Environment (all optional):
#   REGISTRY_CACHE_DIR       where the server is unpacked         (.cache/registry)
#   REGISTRY_STATE_DIR       pid, url and log                     ($REGISTRY_CACHE_DIR/run)
#   REGISTRY_PORT            force the HTTP port (else a free one in REGISTRY_PORT_RANGE)
#   REGISTRY_PORT_RANGE      where free ports are picked          (20000-31999)
#   REGISTRY_COMPATIBILITY   global compatibility rule: BACKWARD, FORWARD, FULL, their
#                            _TRANSITIVE forms, or NONE            (BACKWARD)
#   REGISTRY_HEAP            JVM heap                             (256m)
#   REGISTRY_JAVA_OPTS       more JVM options, space separated    (none)
#   REGISTRY_START_TIMEOUT   seconds to wait for readiness        (90)
#   REGISTRY_STOP_TIMEOUT    seconds between SIGTERM and SIGKILL  (10)
#   REGISTRY_FETCH_TIMEOUT   seconds allowed for the Maven fetch  (900)
#   JAVA / JAVA_HOME         the java to run (17 or newer)
# shellcheck disable=SC2015 # "a && b || die" is meant: die when either fails
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
VERSION=2.6.13.Final
ARTIFACT=io.apicurio:apicurio-registry-app:$VERSION:tar.gz:all
CACHE_DIR=${REGISTRY_CACHE_DIR:-$REPO_ROOT/.cache/registry}
APP_DIR=$CACHE_DIR/apicurio-registry-$VERSION
JAR=$APP_DIR/apicurio-registry-app-$VERSION-runner.jar
STATE_DIR=${REGISTRY_STATE_DIR:-$CACHE_DIR/run}
START_TIMEOUT=${REGISTRY_START_TIMEOUT:-90}
STOP_TIMEOUT=${REGISTRY_STOP_TIMEOUT:-10}
FETCH_TIMEOUT=${REGISTRY_FETCH_TIMEOUT:-900}
HEAP=${REGISTRY_HEAP:-256m}
COMPAT=${REGISTRY_COMPATIBILITY:-BACKWARD}
# Below the kernel's ephemeral range (32768+), as in kafka.sh.
PORT_RANGE=${REGISTRY_PORT_RANGE:-20000-31999}
API=/apis/ccompat/v7
# Marker put on the java command line: lets us recognise our own process (pid
# reuse, leftovers) without ever matching anybody else's.
MARK=aioproducer.registry

log() { printf 'registry.sh: %s\n' "$*" >&2; }
die() { printf 'registry.sh: error: %s\n' "$*" >&2; exit 1; }

is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }
for v in START_TIMEOUT STOP_TIMEOUT FETCH_TIMEOUT; do
  is_uint "${!v}" || die "REGISTRY_$v must be a whole number of seconds, got '${!v}'"
done
[[ $HEAP =~ ^[0-9]+[kKmMgG]?$ ]] || die "REGISTRY_HEAP must look like 256m, got '$HEAP'"
[[ $COMPAT =~ ^(NONE|(BACKWARD|FORWARD|FULL)(_TRANSITIVE)?)$ ]] ||
  die "REGISTRY_COMPATIBILITY must be NONE, BACKWARD, FORWARD, FULL or one of them with _TRANSITIVE, got '$COMPAT'"
[[ $PORT_RANGE =~ ^([0-9]+)-([0-9]+)$ ]] && PORT_LO=${BASH_REMATCH[1]} PORT_HI=${BASH_REMATCH[2]} &&
  ((PORT_LO >= 1024 && PORT_LO <= PORT_HI && PORT_HI <= 65535 && PORT_HI - PORT_LO < 32768)) ||
  die "REGISTRY_PORT_RANGE must look like 20000-31999 (1024..65535), got '$PORT_RANGE'"

now() { date +%s; }

# ------------------------------------------------------------ java & server

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
  is_uint "$major" && ((major >= 17)) || die "Apicurio Registry $VERSION needs java 17 or newer; '$j' is $ver"
  JAVA_BIN=$j
}

app_ok() { [[ -f $APP_DIR/.complete && -f $JAR ]]; }

cmd_fetch() {
  mkdir -p "$CACHE_DIR"
  # Two registry.sh may start at once: one fetches, the other waits for it. The
  # lock is a subshell's, so the server does not inherit it.
  (
    flock -w "$FETCH_TIMEOUT" 8 || die "timed out waiting for another fetch (lock $CACHE_DIR/.fetch.lock)"
    if app_ok; then
      log "Apicurio Registry $VERSION is in $APP_DIR"
      exit 0
    fi
    command -v mvn >/dev/null 2>&1 ||
      die "mvn not found: install Maven 3 (apt-get install maven) to fetch Apicurio Registry from Maven Central"
    local tmp t0
    t0=$(now)
    tmp=$(mktemp -d "$CACHE_DIR/fetch.tmp.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
    log "fetching $ARTIFACT with Maven (up to ${FETCH_TIMEOUT}s, log in $CACHE_DIR/fetch.log)"
    if ! timeout --kill-after=10 "$FETCH_TIMEOUT" mvn -B -q dependency:copy -Dartifact="$ARTIFACT" \
        -DoutputDirectory="$tmp" </dev/null >"$CACHE_DIR/fetch.log" 2>&1; then
      tail -n 30 "$CACHE_DIR/fetch.log" >&2 || true
      die "Maven could not fetch $ARTIFACT (see $CACHE_DIR/fetch.log)"
    fi
    local tgz=$tmp/apicurio-registry-app-$VERSION-all.tar.gz
    [[ -f $tgz ]] || die "Maven finished but $tgz did not arrive"
    mkdir "$tmp/app"
    tar -xzf "$tgz" -C "$tmp/app" || die "could not unpack $tgz"
    [[ -f $tmp/app/${JAR##*/} ]] || die "$tgz holds no ${JAR##*/}"
    rm -f "$tgz" # Maven's local repository keeps a copy
    touch "$tmp/app/.complete"
    rm -rf "$APP_DIR"
    mv "$tmp/app" "$APP_DIR"
    log "fetched and unpacked in $(($(now) - t0))s: $(du -sh "$APP_DIR" | cut -f1) in $APP_DIR"
  ) 8>"$CACHE_DIR/.fetch.lock"
}

ensure_app() { app_ok || cmd_fetch; }

# ------------------------------------------------------------------ process

# proc_state PID: prints the kernel state letter (R S D T Z ...) or nothing.
proc_state() {
  local s
  s=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
  s=${s##*) }
  printf '%s' "${s%% *}"
}

# ours PID: PID is alive (not a zombie) and is our registry for STATE_DIR.
ours() {
  local pid=$1 st
  is_uint "$pid" || return 1
  st=$(proc_state "$pid")
  [[ -n $st && $st != Z && $st != X ]] || return 1
  tr '\0' '\n' 2>/dev/null <"/proc/$pid/cmdline" | grep -qxF -- "-D$MARK=$STATE_DIR"
}

# alive PID: PID exists and is not a zombie (the subshell before it execs java).
alive() {
  local st
  is_uint "$1" || return 1
  st=$(proc_state "$1")
  [[ -n $st && $st != Z && $st != X ]]
}

reg_pid() { cat "$STATE_DIR/pid" 2>/dev/null || true; }

# wait_gone PID SECONDS: 0 once the process is gone.
wait_gone() {
  local end=$(($(now) + $2))
  while alive "$1"; do
    (($(now) >= end)) && return 1
    sleep 0.2
  done
}

# stop TIMEOUT: TERM our registry, wait up to TIMEOUT, then KILL; forget it.
stop() {
  local pid
  pid=$(reg_pid)
  if ours "$pid"; then
    kill -CONT "$pid" 2>/dev/null || true # a paused JVM cannot act on TERM
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_gone "$pid" "$1"; then
      log "pid $pid did not stop within ${1}s after SIGTERM: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      wait_gone "$pid" 10 || log "warning: pid $pid still there after SIGKILL"
    fi
  fi
  rm -f "$STATE_DIR/pid" "$STATE_DIR/registry.env"
}

# ------------------------------------------------------------------- ports

port_busy() {
  if command -v ss >/dev/null 2>&1; then
    [[ -n $(ss -Htln "( sport = :$1 )" 2>/dev/null) ]]
  else
    timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
  fi
}

pick_port() {
  local p i
  for ((i = 0; i < 500; i++)); do
    p=$((PORT_LO + RANDOM % (PORT_HI - PORT_LO + 1)))
    port_busy "$p" && continue
    echo "$p"
    return 0
  done
  die "found no free port on 127.0.0.1"
}

# http_code URL: the HTTP status of GET URL (000 if there is no answer).
http_code() {
  if command -v curl >/dev/null 2>&1; then
    curl -s -o /dev/null -w '%{http_code}' --max-time 3 "$1" 2>/dev/null || echo 000
    return 0
  fi
  local hp=${1#http://} host port path line
  host=${hp%%/*} path=/${hp#*/} port=${host##*:} host=${host%%:*}
  # shellcheck disable=SC2016 # expanded by the inner bash
  line=$(timeout 3 bash -c '
    exec 3<>"/dev/tcp/$1/$2" || exit 1
    printf "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n" "$3" "$1" >&3
    head -n1 <&3
  ' _ "$host" "$port" "$path" 2>/dev/null) || { echo 000; return 0; }
  line=${line#* }
  echo "${line:0:3}"
}

# --------------------------------------------------------------- commands

lock_state() {
  mkdir -p "$STATE_DIR"
  exec 9>"$STATE_DIR/.lock"
  flock -w 300 9 || die "another registry.sh holds $STATE_DIR/.lock"
}

state_url() { sed -n 's/^URL=//p' "$STATE_DIR/registry.env" 2>/dev/null | head -n1; }

# EXIT trap of `up`: on failure stop what was started.
on_up_exit() {
  local rc=$1
  trap - EXIT INT TERM
  if ((rc != 0)) && [[ -f $STATE_DIR/pid ]]; then
    log "start-up failed (exit $rc): stopping the registry"
    stop 5 || true
    # our own child that has not exec'd java yet (so stop does not know it as ours)
    if [[ -n $CHILD ]] && alive "$CHILD"; then kill -KILL "$CHILD" 2>/dev/null || true; fi
  fi
  exit "$rc"
}

show_failure() {
  log "---- last lines of $STATE_DIR/registry.log"
  tail -n 40 "$STATE_DIR/registry.log" >&2 2>/dev/null || true
}

CHILD=
cmd_up() {
  find_java
  ensure_app
  lock_state
  if ours "$(reg_pid)"; then
    die "a registry is already running in $STATE_DIR ($(state_url)); run '$0 down' first"
  fi
  stop 5 # leftovers of a run that was not taken down
  local forced=${REGISTRY_PORT:-}
  if [[ -n $forced ]]; then
    is_uint "$forced" && ((forced > 0 && forced < 65536)) || die "bad REGISTRY_PORT '$forced'"
    port_busy "$forced" && die "port $forced on 127.0.0.1 is already in use (forced by REGISTRY_PORT); free it or let registry.sh pick a port"
  fi
  local rules=() opts=()
  read -r -a opts <<<"${REGISTRY_JAVA_OPTS:-}"
  [[ $COMPAT == NONE ]] || rules=(-Dregistry.rules.global.compatibility="$COMPAT")

  trap 'on_up_exit $?' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  local attempt t0 port url pid reason
  t0=$(now)
  mkdir -p "$STATE_DIR/tmp"
  for attempt in 1 2 3; do
    port=${forced:-$(pick_port)}
    url=http://127.0.0.1:$port$API
    : >"$STATE_DIR/registry.log"
    log "starting Apicurio Registry $VERSION on 127.0.0.1:$port (compatibility $COMPAT, heap $HEAP), attempt $attempt"
    # C1 only and the serial collector: half the start-up time of the defaults on the 2-core VM under
    # load (16-19 s against 26-40 s at load 13-15), a little less memory; a test registry is idle.
    # setsid: its own session, so a Ctrl-C aimed at our caller does not reach
    # it; `down` (or the trap) stops it. All fds go to files: a caller reading
    # our stdout through a pipe must not wait for the server to exit.
    (
      cd "$STATE_DIR"
      exec setsid "$JAVA_BIN" -Xmx"$HEAP" -XX:+ExitOnOutOfMemoryError -XX:-UsePerfData \
        -XX:TieredStopAtLevel=1 -XX:+UseSerialGC \
        -Djava.io.tmpdir="$STATE_DIR/tmp" -D"$MARK=$STATE_DIR" "${opts[@]}" \
        -Dquarkus.http.host=127.0.0.1 -Dquarkus.http.port="$port" "${rules[@]}" \
        -jar "$JAR"
    ) </dev/null >>"$STATE_DIR/registry.log" 2>&1 8>&- 9>&- &
    pid=$!
    CHILD=$pid
    echo "$pid" >"$STATE_DIR/pid"
    reason=
    local deadline=$(($(now) + START_TIMEOUT))
    while :; do
      if ! alive "$pid"; then
        reason="exited during start-up"
        break
      fi
      [[ $(http_code "$url/subjects") == 200 ]] && break
      if (($(now) >= deadline)); then
        reason="not ready after ${START_TIMEOUT}s (GET $url/subjects did not return 200)"
        break
      fi
      sleep 0.2
    done
    if [[ -z $reason ]]; then
      cat >"$STATE_DIR/registry.env" <<EOF
URL=$url
PORT=$port
VERSION=$VERSION
COMPATIBILITY=$COMPAT
STARTED=$(date '+%F %T')
EOF
      trap - EXIT INT TERM
      log "ready in $(($(now) - t0))s: $url (pid $pid, log $STATE_DIR/registry.log)"
      echo "$url"
      return 0
    fi
    if [[ -z $forced ]] && ((attempt < 3)) && grep -qiE 'in use|BindException' "$STATE_DIR/registry.log"; then
      log "port $port was taken meanwhile; retrying on another"
      stop 5
      continue
    fi
    show_failure
    die "the registry $reason (log: $STATE_DIR/registry.log)"
  done
}

cmd_down() {
  lock_state
  local pid
  pid=$(reg_pid)
  if ours "$pid"; then
    stop "$STOP_TIMEOUT"
    log "stopped pid $pid; log kept in $STATE_DIR/registry.log"
  else
    stop "$STOP_TIMEOUT"
    log "no registry running in $STATE_DIR"
  fi
}

cmd_status() {
  [[ -f $STATE_DIR/registry.env ]] || { log "no registry in $STATE_DIR"; return 3; }
  local pid
  pid=$(reg_pid)
  if ours "$pid"; then
    printf '%s pid %s running\n' "$(state_url)" "$pid"
  else
    printf '%s pid %s dead\n' "$(state_url)" "${pid:--}"
    return 1
  fi
}

usage() { sed -n '2,/^set -euo/{/^set -euo/d;/^# shellcheck/d;s/^# \{0,1\}//;p}' "$0" >&2; }

main() {
  local cmd=${1:-}
  (($#)) && shift
  case $cmd in
    fetch) cmd_fetch ;;
    up) cmd_up ;;
    down | stop) cmd_down ;;
    url)
      ours "$(reg_pid)" || die "no registry running in $STATE_DIR (run '$0 up')"
      state_url
      ;;
    status) cmd_status ;;
    log) tail -n "${1:-50}" "$STATE_DIR/registry.log" ;;
    -h | --help | help) usage ;;
    "") usage; exit 2 ;;
    *) usage; die "unknown command '$cmd'" ;;
  esac
}

main "$@"
