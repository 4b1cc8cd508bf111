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
#   up-secure        one node with TLS and SASL listeners next to its PLAINTEXT one
#                    (see "Secure mode" below); prints the SASL_SSL bootstrap
#   down | stop      stop every node of this state dir (TERM, then KILL) and
#                    delete the data dirs
#   kill ID          SIGKILL node ID          pause ID    SIGSTOP node ID
#   resume ID        SIGCONT node ID          restart ID  (re)start node ID on
#                    its old config and data, wait until it is ready
#   pid ID           print the pid of node ID (exit 1 if it is not running)
#   bootstrap        print the bootstrap list (what up, up3 or up-secure printed)
#   status           one line per node: id pid state port controller-port data-dir
#                    (up-secure: and one line per listener);
#                    exit 0 if all run, 1 if one is dead or paused, 3 if none is up
#   log ID [N]       print the last N (default 50) lines of node ID's server log
#
# Only the bootstrap list (up, bootstrap) or the asked-for value goes to stdout;
# progress and errors go to stderr.
#
# Secure mode (up-secure): one combined node with four listeners, all on 127.0.0.1:
#   PLAINTEXT  no TLS, no SASL (admin and test setup; inter-broker traffic)
#   SASL_SSL   TLS + SASL, mechanisms SCRAM-SHA-512 and PLAIN
#   SSL        TLS only, no SASL, no client certificate
#   OAUTH      SASL_PLAINTEXT, mechanism OAUTHBEARER, validated by Kafka's
#              unsecured validator (unsigned JWTs; any principal is accepted)
# The controller listener stays PLAINTEXT. At every start it generates, under
# $KAFKA_STATE_DIR, with the JDK's keytool only (EC P-256 keys, valid 30 days):
#   tls/ca.pem            the CA that signed the broker (PEM, for ssl.ca.location)
#   tls/broker.p12        the broker's key and chain (SAN DNS:localhost, IP:127.0.0.1)
#   tls/truststore.p12    the CA, for Java clients (PKCS12)
#   tls/other-ca.pem      an unrelated CA that signed nothing
# random passwords (nothing secret is committed), the SCRAM-SHA-512 user
# "alice" (added to the metadata log when the storage is formatted, so it
# exists before any client connects) and the PLAIN user "bob" (in the
# listener's JAAS config), and two flat JSON files of string values:
#   client.json   the librdkafka settings for alice over SASL_SSL: bootstrap.servers,
#                 security.protocol, ssl.ca.location, sasl.mechanism,
#                 sasl.username, sasl.password
#   secure.json   every listener's bootstrap, bob's credentials, the CA paths,
#                 the truststore and its password (the keys are listed in
#                 scripts/README.md)
# "Ready" also means: the OAUTH listener answers ApiVersions, and both TLS
# listeners complete a TLS handshake showing the broker's certificate. `down`
# deletes the keys, certificates, JSON files, the node's server.properties (it
# holds passwords) and format.log (it prints the SCRAM credential); the broker's
# own logs are kept, as for up.
#
# Environment (all optional):
#   KAFKA_STATE_DIR           where pids, configs and logs live   (.cache/kafka/run)
#   KAFKA_CACHE_DIR           jar cache                            (.cache/kafka)
#   KAFKA_DATA_ROOT           parent of the per-node data dirs     ($TMPDIR or /tmp)
#   KAFKA_PORT / KAFKA_CONTROLLER_PORT    force the ports of a single node
#                             (up-secure: the PLAINTEXT port; the others are picked)
#   KAFKA_PORTS / KAFKA_CONTROLLER_PORTS  force ports for N nodes, comma separated
#   KAFKA_PORT_RANGE          where free ports are picked          (20000-31999)
#   KAFKA_AUTO_CREATE_TOPICS  auto.create.topics.enable            (true)
#   KAFKA_NUM_PARTITIONS      num.partitions                       (1)
#   KAFKA_REPLICATION_FACTOR  default.replication.factor           (number of nodes, max 3)
#   KAFKA_MIN_ISR             min.insync.replicas                  (1 single node, 2 cluster)
#   KAFKA_BROKER_SESSION_TIMEOUT_MS  broker.session.timeout.ms: how long the controller waits for a
#                             broker's heartbeat before it fences it and drops it from every ISR
#                             (unset: Kafka's default, 9000)
#   KAFKA_BROKER_HEARTBEAT_MS broker.heartbeat.interval.ms          (unset: Kafka's default, 2000)
#   KAFKA_FILE_DELETE_DELAY_MS        file.delete.delay.ms: how long a deleted topic's files stay
#                             (and stay open) before the broker removes them (unset: Kafka's default, 60000)
#   KAFKA_LOG_SEGMENT_DELETE_DELAY_MS log.segment.delete.delay.ms       (unset: Kafka's default, 60000)
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
# Broker settings with an environment knob of their own: written to server.properties only when set,
# so that an unset knob leaves Kafka's default.
MS_KNOBS=(
  KAFKA_BROKER_SESSION_TIMEOUT_MS:broker.session.timeout.ms
  KAFKA_BROKER_HEARTBEAT_MS:broker.heartbeat.interval.ms
  KAFKA_FILE_DELETE_DELAY_MS:file.delete.delay.ms
  KAFKA_LOG_SEGMENT_DELETE_DELAY_MS:log.segment.delete.delay.ms
)
for knob in "${MS_KNOBS[@]}"; do
  knob=${knob%%:*}
  [[ -z ${!knob:-} ]] || is_uint "${!knob}" || die "$knob must be a whole number of milliseconds, got '${!knob}'"
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

# --------------------------------------------------------------- secure mode

SECURE=0
TLS_DIR=$STATE_DIR/tls
SASL_SSL_PORT='' SSL_PORT='' OAUTH_PORT=''
SCRAM_USER=alice PLAIN_USER=bob
STORE_PASS='' SCRAM_PASS='' PLAIN_PASS=''
# Kafka's classes for the OAUTH listener: unsigned JWTs, any principal
UNSECURED=org.apache.kafka.common.security.oauthbearer.internals.unsecured.OAuthBearerUnsecured

# rand_hex N: N random bytes as hex (passwords: nothing secret is committed)
rand_hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }

KEYTOOL_BIN=
find_keytool() {
  [[ -n $KEYTOOL_BIN ]] && return 0
  find_java
  local k
  k=$(dirname "$(readlink -f "$(command -v "$JAVA_BIN")")")/keytool
  [[ -x $k ]] || k=$(command -v keytool 2>/dev/null) || true
  [[ -n $k && -x $k ]] || die "keytool not found next to $JAVA_BIN nor on PATH: up-secure needs the JDK's keytool"
  KEYTOOL_BIN=$k
}

# kt ARGS: keytool, quick to start; store passwords come from the environment
# (-storepass:env KT_STOREPASS), never from the command line.
kt() {
  KT_STOREPASS=$STORE_PASS "$KEYTOOL_BIN" -J-XX:TieredStopAtLevel=1 -J-XX:+UseSerialGC -J-XX:-UsePerfData "$@"
}

# gen_tls: a CA, the broker's key and certificate signed by it, a truststore,
# the CA in PEM, and an unrelated CA in PEM; all under TLS_DIR. What does not
# depend on each other runs at once: each keytool is a JVM start.
gen_tls() {
  local d=$TLS_DIR
  local key=(-storetype PKCS12 -storepass:env KT_STOREPASS -keyalg EC -groupname secp256r1 -validity 30 -startdate -1d)
  local ca=(-ext bc:c -ext 'ku:c=keyCertSign,cRLSign')
  local sp=(-storepass:env KT_STOREPASS)
  (umask 077 && mkdir -p "$d")
  local pids=() names=() i ok=1
  # bg NAME CMD...: run CMD in the background, output in TLS_DIR/keytool-NAME.log
  bg() {
    local name=$1
    shift
    "$@" >"$d/keytool-$name.log" 2>&1 &
    pids+=($!) names+=("$name")
  }
  # wait_bg: wait for every bg job; ok=0 (and its log on stderr) for each that failed
  wait_bg() {
    for i in "${!pids[@]}"; do
      if ! wait "${pids[i]}"; then
        ok=0
        cat "$d/keytool-${names[i]}.log" >&2
      fi
    done
    pids=() names=()
  }
  other_ca() {
    kt -genkeypair -keystore "$d/other-ca.p12" -alias ca -dname "CN=aioproducer unrelated test CA" "${key[@]}" "${ca[@]}" &&
      kt -exportcert -rfc -keystore "$d/other-ca.p12" "${sp[@]}" -alias ca -file "$d/other-ca.pem"
  }
  our_ca() {
    kt -genkeypair -keystore "$d/ca.p12" -alias ca -dname "CN=aioproducer test CA" "${key[@]}" "${ca[@]}" &&
      kt -exportcert -rfc -keystore "$d/ca.p12" "${sp[@]}" -alias ca -file "$d/ca.pem"
  }
  sign_broker() {
    kt -certreq -keystore "$d/broker.p12" "${sp[@]}" -alias broker -file "$d/broker.csr" &&
      kt -gencert -keystore "$d/ca.p12" "${sp[@]}" -alias ca -infile "$d/broker.csr" -outfile "$d/broker.pem" -rfc \
        -validity 30 -startdate -1d -ext 'san=dns:localhost,ip:127.0.0.1' -ext ku:c=digitalSignature -ext 'eku=serverAuth,clientAuth' &&
      cat "$d/ca.pem" "$d/broker.pem" >"$d/broker-chain.pem" &&
      kt -importcert -noprompt -keystore "$d/broker.p12" "${sp[@]}" -alias broker -file "$d/broker-chain.pem"
  }
  bg other-ca other_ca
  bg ca our_ca
  bg broker-key kt -genkeypair -keystore "$d/broker.p12" -alias broker -dname CN=localhost "${key[@]}"
  wait_bg
  if ((ok)); then
    bg truststore kt -importcert -noprompt -keystore "$d/truststore.p12" -storetype PKCS12 "${sp[@]}" -alias ca -file "$d/ca.pem"
    bg broker-cert sign_broker
    wait_bg
  fi
  ((ok)) || die "keytool could not generate the certificates (logs in $d)"
  [[ -s $d/ca.pem && -s $d/other-ca.pem && -s $d/broker.pem ]] || die "keytool left no certificates in $d"
}

# setup_secure: passwords and certificates for up-secure, made once per up.
setup_secure() {
  find_keytool
  STORE_PASS=$(rand_hex 16) SCRAM_PASS=$(rand_hex 16) PLAIN_PASS=$(rand_hex 16)
  local t0
  t0=$(now)
  gen_tls
  log "TLS: CA and broker certificate in $TLS_DIR ($(($(now) - t0))s)"
}

# write_secure_props: the server.properties lines of the secure listeners.
write_secure_props() {
  cat <<EOF
# up-secure: TLS for SASL_SSL and SSL, no client certificates
ssl.keystore.type=PKCS12
ssl.keystore.location=$TLS_DIR/broker.p12
ssl.keystore.password=$STORE_PASS
ssl.key.password=$STORE_PASS
ssl.truststore.type=PKCS12
ssl.truststore.location=$TLS_DIR/truststore.p12
ssl.truststore.password=$STORE_PASS
ssl.client.auth=none
# SASL_SSL: SCRAM users live in the metadata log (added at format), PLAIN users here
listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-512,PLAIN
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$PLAIN_USER="$PLAIN_PASS";
# OAUTH: unsigned JWTs; a session ends when its token expires, so clients must refresh and re-authenticate
listener.name.oauth.sasl.enabled.mechanisms=OAUTHBEARER
listener.name.oauth.oauthbearer.sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub="broker";
listener.name.oauth.oauthbearer.sasl.server.callback.handler.class=${UNSECURED}ValidatorCallbackHandler
listener.name.oauth.oauthbearer.sasl.login.callback.handler.class=${UNSECURED}LoginCallbackHandler
listener.name.oauth.oauthbearer.connections.max.reauth.ms=3600000
EOF
}

# json_str S: S as a JSON string.
json_str() {
  local s=$1
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  printf '"%s"' "$s"
}

# write_json FILE KEY VALUE...: a flat JSON object of strings, readable by its owner only.
write_json() {
  local f=$1 sep='{'
  shift
  (
    umask 077
    {
      while (($#)); do
        printf '%s\n  %s: %s' "$sep" "$(json_str "$1")" "$(json_str "$2")"
        sep=,
        shift 2
      done
      printf '\n}\n'
    } >"$f.tmp"
  )
  mv -f "$f.tmp" "$f"
}

write_client_files() { # PLAINTEXT_PORT
  local d=$TLS_DIR
  write_json "$STATE_DIR/client.json" \
    bootstrap.servers "127.0.0.1:$SASL_SSL_PORT" \
    security.protocol SASL_SSL \
    ssl.ca.location "$d/ca.pem" \
    sasl.mechanism SCRAM-SHA-512 \
    sasl.username "$SCRAM_USER" \
    sasl.password "$SCRAM_PASS"
  write_json "$STATE_DIR/secure.json" \
    plaintext.bootstrap "127.0.0.1:$1" \
    sasl_ssl.bootstrap "127.0.0.1:$SASL_SSL_PORT" \
    ssl.bootstrap "127.0.0.1:$SSL_PORT" \
    oauthbearer.bootstrap "127.0.0.1:$OAUTH_PORT" \
    oauthbearer.security.protocol SASL_PLAINTEXT \
    ca.location "$d/ca.pem" \
    other.ca.location "$d/other-ca.pem" \
    scram.mechanism SCRAM-SHA-512 \
    scram.username "$SCRAM_USER" \
    scram.password "$SCRAM_PASS" \
    plain.username "$PLAIN_USER" \
    plain.password "$PLAIN_PASS" \
    truststore.location "$d/truststore.p12" \
    truststore.password "$STORE_PASS" \
    client.json "$STATE_DIR/client.json"
}

# remove_secrets: what up-secure generated (keys, certificates, JSON files, the
# configs holding passwords, and the format logs, which print the SCRAM
# credential). The TLS dir goes last: it marks a secure state dir.
remove_secrets() {
  [[ -d $TLS_DIR ]] || return 0
  local d
  rm -f -- "$STATE_DIR/client.json" "$STATE_DIR/secure.json" "$STATE_DIR"/*.json.tmp
  for d in "$STATE_DIR"/node-* "$STATE_DIR"/failed-*; do
    if [[ -d $d ]]; then rm -f -- "$d/server.properties" "$d/format.log"; fi
  done
  rm -rf -- "$TLS_DIR"
}

# tls_probe PORT: a TLS handshake on PORT shows the broker's certificate.
tls_probe() {
  local out line
  find_keytool
  line=$(sed -n 2p "$TLS_DIR/broker.pem" 2>/dev/null) || return 1
  [[ -n $line ]] || return 1
  out=$(timeout 20 "$KEYTOOL_BIN" -J-XX:TieredStopAtLevel=1 -J-XX:+UseSerialGC -J-XX:-UsePerfData \
    -printcert -rfc -sslserver "127.0.0.1:$1" </dev/null 2>/dev/null) || return 1
  grep -qF -- "$line" <<<"$out"
}

# ------------------------------------------------------------- node configs

write_node_files() { # ID PORT CPORT VOTERS DATADIR NODES
  local id=$1 port=$2 cport=$3 voters=$4 data=$5 n=$6
  local dir=$STATE_DIR/node-$id
  local rf=${KAFKA_REPLICATION_FACTOR:-$((n < 3 ? n : 3))}
  local minisr=${KAFKA_MIN_ISR:-$((n == 1 ? 1 : 2))}
  local irf=$((n < 3 ? n : 3)) imin=$((n == 1 ? 1 : 2))
  local listeners=PLAINTEXT://127.0.0.1:$port advertised=PLAINTEXT://127.0.0.1:$port
  local protocols=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
  if ((SECURE)); then
    local l
    for l in "SASL_SSL://127.0.0.1:$SASL_SSL_PORT" "SSL://127.0.0.1:$SSL_PORT" "OAUTH://127.0.0.1:$OAUTH_PORT"; do
      listeners+=,$l advertised+=,$l
    done
    protocols+=,SASL_SSL:SASL_SSL,SSL:SSL,OAUTH:SASL_PLAINTEXT
  fi
  mkdir -p "$dir"
  (umask 077 && : >"$dir/server.properties") # the secure mode writes passwords in it
  cat >"$dir/server.properties" <<EOF
# written by scripts/kafka.sh
process.roles=broker,controller
node.id=$id
controller.quorum.voters=$voters
listeners=$listeners,CONTROLLER://127.0.0.1:$cport
advertised.listeners=$advertised
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=$protocols
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
  local knob var
  for knob in "${MS_KNOBS[@]}"; do
    var=${knob%%:*}
    [[ -z ${!var:-} ]] || echo "${knob#*:}=${!var}" >>"$dir/server.properties"
  done
  if ((SECURE)); then write_secure_props >>"$dir/server.properties"; fi
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
  if ((SECURE)); then
    cat >>"$dir/node.env" <<EOF
SASL_SSL_PORT=$SASL_SSL_PORT
SSL_PORT=$SSL_PORT
OAUTH_PORT=$OAUTH_PORT
EOF
  fi
}

node_env() { # ID VAR
  sed -n "s/^$2=//p" "$STATE_DIR/node-$1/node.env" 2>/dev/null | head -n1
}

format_node() { # ID CLUSTER_ID
  local dir=$STATE_DIR/node-$1 scram=()
  # up-secure: the SCRAM user goes into the metadata log, so it exists before any client connects
  ((SECURE)) && scram=(--add-scram "SCRAM-SHA-512=[name=$SCRAM_USER,password=$SCRAM_PASS]")
  if ! "$JAVA_BIN" -Xmx256m -XX:-UsePerfData -Dlog4j2.configurationFile="$dir/tool-log4j2.properties" \
      -cp "$LIBS_DIR/*" kafka.tools.StorageTool format -t "$2" -c "$dir/server.properties" "${scram[@]}" \
      </dev/null >"$dir/format.log" 2>&1; then
    cat "$dir/format.log" >&2 2>/dev/null || true # gone if up-secure was taken down meanwhile
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

# node_ready ID: the log says started and every listener serves: ApiVersions on
# PLAINTEXT and OAUTH (a SASL listener answers it before authentication), a TLS
# handshake showing the broker's certificate on SASL_SSL and SSL.
node_ready() { # ID
  local dir=$STATE_DIR/node-$1 off p
  off=$(cat "$dir/log.offset" 2>/dev/null || echo 0)
  tail -c +"$((off + 1))" "$dir/server.log" 2>/dev/null | grep -q 'Kafka Server started' || return 1
  probe "$(node_env "$1" PORT)" || return 1
  p=$(node_env "$1" OAUTH_PORT)
  [[ -z $p ]] || probe "$p" || return 1
  for p in $(node_env "$1" SASL_SSL_PORT) $(node_env "$1" SSL_PORT); do
    tls_probe "$p" || return 1
  done
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
      local pid st
      pid=$(node_pid "$id")
      if ! ours "$pid" "$STATE_DIR/node-$id"; then
        # Alive but not the JVM yet: the subshell has not exec'd java (a loaded machine can take a
        # while). Only a process that is gone has exited.
        st=$(proc_state "$pid")
        if is_uint "$pid" && [[ -n $st && $st != Z && $st != X ]]; then
          still+=("$id")
          continue
        fi
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
      --secure) SECURE=1; shift ;;
      *) die "up: unknown argument '$1'" ;;
    esac
  done
  is_uint "$n" && ((n >= 1 && n <= 9)) || die "--brokers must be 1..9, got '$n'"
  ((SECURE && n != 1)) && die "up-secure runs a single node"
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
  remove_secrets
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
  if ((SECURE)); then setup_secure; fi

  local attempt t0 i
  t0=$(now)
  for attempt in 1 2 3; do
    local ports=() cports=() voters="" cid
    for ((i = 1; i <= n; i++)); do
      if [[ -n ${fports[i - 1]:-} ]]; then ports+=("${fports[i - 1]}"); else pick_port; ports+=("$PORT_OUT"); fi
      if [[ -n ${fcports[i - 1]:-} ]]; then cports+=("${fcports[i - 1]}"); else pick_port; cports+=("$PORT_OUT"); fi
      voters+="${voters:+,}$i@127.0.0.1:${cports[i - 1]}"
    done
    if ((SECURE)); then
      pick_port && SASL_SSL_PORT=$PORT_OUT
      pick_port && SSL_PORT=$PORT_OUT
      pick_port && OAUTH_PORT=$PORT_OUT
    fi
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
      if ((SECURE)); then
        write_client_files "${ports[0]}"
        boot=127.0.0.1:$SASL_SSL_PORT
      fi
      cat >"$STATE_DIR/cluster.env" <<EOF
BOOTSTRAP=$boot
NODES=$n
CLUSTER_ID=$cid
STARTED=$(date '+%F %T')
EOF
      if ((SECURE)); then
        cat >>"$STATE_DIR/cluster.env" <<EOF
SECURE=1
LISTENER_PLAINTEXT=127.0.0.1:${ports[0]}
LISTENER_SASL_SSL=127.0.0.1:$SASL_SSL_PORT
LISTENER_SSL=127.0.0.1:$SSL_PORT
LISTENER_OAUTH=127.0.0.1:$OAUTH_PORT
EOF
      fi
      STARTED=()
      trap - EXIT INT TERM
      log "ready in $(($(now) - t0))s: $boot (state in $STATE_DIR)"
      ((SECURE)) && log "listeners: PLAINTEXT ${ports[0]}, SASL_SSL $SASL_SSL_PORT, SSL $SSL_PORT, OAUTH $OAUTH_PORT; client settings in $STATE_DIR/client.json, the rest in $STATE_DIR/secure.json"
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
    remove_secrets || true
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
  remove_secrets
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
  local v sp
  for v in SASL_SSL_PORT SSL_PORT OAUTH_PORT; do
    sp=$(node_env "$id" "$v")
    [[ -z $sp ]] || ! port_busy "$sp" || die "port $sp (${v%_PORT}) of node $id is taken by another process"
  done
  [[ -z $(node_env "$id" SASL_SSL_PORT) || -f $dir/server.properties ]] ||
    die "node $id has no server.properties: a secure node cannot restart after down (its passwords and certificates are gone)"
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
  sed -n 's/^LISTENER_\([A-Z_]*\)=/listener \1 /p' "$STATE_DIR/cluster.env"
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
    up-secure) cmd_up --secure "$@" ;;
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
