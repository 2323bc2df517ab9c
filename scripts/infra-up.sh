#!/usr/bin/env bash
# Starts the real servers the project needs, without Docker, as plain processes that listen on
# loopback only (every port of every server: scripts/composetest checks it):
#
#   MariaDB             127.0.0.1:$MYSQL_PORT    databases orders, carts; TCP user $MYSQL_USER
#   RocketMQ NameServer 127.0.0.1:$NAMESRV_PORT
#   RocketMQ Broker     127.0.0.1:$BROKER_PORT   (config: scripts/rocketmq/broker.local.conf)
#                       and its fast port ($BROKER_PORT - 2) and HA port ($BROKER_PORT + 1)
#
# With BROKERS=2, a cluster: a second NameServer on 127.0.0.1:$NAMESRV2_PORT and a second broker
# group, broker-b, on 127.0.0.1:$BROKER2_PORT (fast and HA ports likewise), both brokers in one
# cluster and registered with both NameServers; $INFRA_DIR/env then lists both NameServers.
#
# Installs what is missing first (MariaDB, a JDK and Maven from Debian's packages; the RocketMQ jars
# from Maven Central, cached under $INFRA_DIR/rocketmq-lib). Safe to run twice: a server that is
# already up is re-used. Writes $INFRA_DIR/env with the addresses, for scripts and tests to source.
#
# Environment (all optional):
#   INFRA_DIR     data, logs and pid files           (default: <repo>/.infra)
#   MYSQL_PORT    (3306)   NAMESRV_PORT (9876)   BROKER_PORT (10911)
#   BROKERS       (1)      2 for the cluster: NAMESRV2_PORT (9877)   BROKER2_PORT (10921)
#   MYSQL_USER    (rmqtx)  MYSQL_PASSWORD (rmqtx)
#   JAVA_HOME     the JDK to run RocketMQ with       (default: Debian's OpenJDK 17)
#   JAR_CACHE     where the RocketMQ jars are cached  (default: $INFRA_DIR)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
INFRA_DIR=${INFRA_DIR:-$ROOT/.infra}
MYSQL_PORT=${MYSQL_PORT:-3306}
NAMESRV_PORT=${NAMESRV_PORT:-9876}
BROKER_PORT=${BROKER_PORT:-10911}
BROKERS=${BROKERS:-1}
NAMESRV2_PORT=${NAMESRV2_PORT:-9877}
BROKER2_PORT=${BROKER2_PORT:-10921}
case "$BROKERS" in 1 | 2) ;; *) echo "infra-up: BROKERS must be 1 or 2, got $BROKERS" >&2; exit 2 ;; esac
MYSQL_USER=${MYSQL_USER:-rmqtx}
MYSQL_PASSWORD=${MYSQL_PASSWORD:-rmqtx}
ROCKETMQ_VERSION=$(sed -n 's:.*<rocketmq.version>\(.*\)</rocketmq.version>.*:\1:p' "$ROOT/scripts/rocketmq/pom.xml")

mkdir -p "$INFRA_DIR"
INFRA_DIR=$(cd "$INFRA_DIR" && pwd)

log() { printf 'infra-up: %s\n' "$*" >&2; }
fail() {
  # fail <server> <message> [logfile]
  printf 'infra-up: FAILED to start %s: %s\n' "$1" "$2" >&2
  if [ -n "${3:-}" ] && [ -f "$3" ]; then
    printf -- '--- last lines of %s ---\n' "$3" >&2
    tail -n 40 "$3" >&2
  fi
  exit 1
}
# alive <pidfile>: the process runs (a killed process can linger as a zombie until reaped).
alive() {
  local st
  [ -f "$1" ] && st=$(ps -o stat= -p "$(cat "$1")" 2>/dev/null) && [[ $st != Z* ]]
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# --- packages ------------------------------------------------------------------------------------
apt_updated=no
need_pkg() {
  # need_pkg <command> <debian package...>
  command -v "$1" >/dev/null 2>&1 && return 0
  [ -x "$1" ] && return 0
  log "installing ${*:2} (for $1)"
  if [ "$apt_updated" = no ]; then apt-get update -qq; apt_updated=yes; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${@:2}" >/dev/null
}
need_pkg mariadbd mariadb-server
need_pkg mariadb mariadb-client
need_pkg mvn maven

# RocketMQ 5.3 is built and tested upstream on JDK 8; 17 works with the --add-opens below.
if [ -z "${JAVA_HOME:-}" ]; then
  JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64
  [ -x "$JAVA_HOME/bin/java" ] || need_pkg "$JAVA_HOME/bin/java" openjdk-17-jdk-headless
fi
JAVA="$JAVA_HOME/bin/java"
[ -x "$JAVA" ] || fail rocketmq "no java at $JAVA (set JAVA_HOME)"
MARIADBD=$(command -v mariadbd || echo /usr/sbin/mariadbd)

# --- MariaDB -------------------------------------------------------------------------------------
MY="$INFRA_DIR/mariadb"
MY_PID="$MY/mariadbd.pid"
MY_SOCK="$MY/mariadb.sock"
MY_LOG="$MY/error.log"
mysql_root() { mariadb --no-defaults --protocol=socket -S "$MY_SOCK" -uroot "$@"; }
mysql_tcp() { mariadb --no-defaults --protocol=tcp -h127.0.0.1 -P"$MYSQL_PORT" -u"$MYSQL_USER" -p"$MYSQL_PASSWORD" "$@"; }

if alive "$MY_PID"; then
  log "MariaDB already running (pid $(cat "$MY_PID"))"
elif port_open "$MYSQL_PORT"; then
  mysql_tcp -e 'SELECT 1' >/dev/null 2>&1 ||
    fail mariadb "port $MYSQL_PORT is taken by something that does not accept $MYSQL_USER; set MYSQL_PORT"
  log "re-using the MySQL server already listening on $MYSQL_PORT"
else
  mkdir -p "$MY"
  if [ ! -d "$MY/data/mysql" ]; then
    log "initialising MariaDB data in $MY/data"
    mariadb-install-db --no-defaults --datadir="$MY/data" --user="$(id -un)" \
      --auth-root-authentication-method=socket >"$MY/install.log" 2>&1 ||
      fail mariadb "mariadb-install-db failed" "$MY/install.log"
  fi
  log "starting MariaDB on 127.0.0.1:$MYSQL_PORT"
  # --user is only accepted (and needed) when running as root.
  user_flag=()
  [ "$(id -u)" = 0 ] && user_flag=(--user=root)
  "$MARIADBD" --no-defaults "${user_flag[@]}" \
    --datadir="$MY/data" --socket="$MY_SOCK" --pid-file="$MY/server.pid" \
    --bind-address=127.0.0.1 --port="$MYSQL_PORT" --log-error="$MY_LOG" \
    --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci \
    --max-connections=500 --innodb-buffer-pool-size=256M \
    --skip-name-resolve </dev/null >>"$MY/stdout.log" 2>&1 &
  echo $! >"$MY_PID"
  for _ in $(seq 1 60); do
    mariadb-admin --no-defaults -S "$MY_SOCK" -uroot ping >/dev/null 2>&1 && break
    alive "$MY_PID" || fail mariadb "mariadbd exited" "$MY_LOG"
    sleep 0.5
  done
  mariadb-admin --no-defaults -S "$MY_SOCK" -uroot ping >/dev/null 2>&1 ||
    fail mariadb "no answer to ping after 30 s" "$MY_LOG"
  # The tests create a throwaway database each, so the test user may create databases.
  mysql_root <<SQL || fail mariadb "could not create databases and user" "$MY_LOG"
CREATE DATABASE IF NOT EXISTS orders;
CREATE DATABASE IF NOT EXISTS carts;
CREATE USER IF NOT EXISTS '$MYSQL_USER'@'127.0.0.1' IDENTIFIED BY '$MYSQL_PASSWORD';
CREATE USER IF NOT EXISTS '$MYSQL_USER'@'localhost' IDENTIFIED BY '$MYSQL_PASSWORD';
GRANT ALL PRIVILEGES ON *.* TO '$MYSQL_USER'@'127.0.0.1';
GRANT ALL PRIVILEGES ON *.* TO '$MYSQL_USER'@'localhost';
FLUSH PRIVILEGES;
SQL
fi
mysql_tcp -e 'SELECT 1' >/dev/null 2>&1 || fail mariadb "user $MYSQL_USER cannot log in over TCP" "$MY_LOG"
log "MariaDB ready"

# --- RocketMQ jars -------------------------------------------------------------------------------
LIB="${JAR_CACHE:-$INFRA_DIR}/rocketmq-$ROCKETMQ_VERSION/lib"
if [ ! -f "$LIB/.complete" ]; then
  log "fetching RocketMQ $ROCKETMQ_VERSION jars from Maven Central into $LIB"
  mkdir -p "$LIB"
  mvn -B -q -f "$ROOT/scripts/rocketmq/pom.xml" \
    org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies \
    -DoutputDirectory="$LIB" -DincludeScope=runtime >"$INFRA_DIR/maven.log" 2>&1 ||
    fail rocketmq "maven could not fetch the jars" "$INFRA_DIR/maven.log"
  touch "$LIB/.complete"
fi

# Options shared by both JVMs. RocketMQ writes logs under ${user.home}/logs and reflects on JDK
# internals that Java 17 closes by default.
rmq_java() {
  # rmq_java <home> <logback config> <heap flags> <classpath> <main class> [args...]
  local home=$1 logback=$2 heap=$3 cp=$4
  shift 4
  # exec: run in the background, $! is the JVM itself, so infra-down.sh can stop it by pid.
  # shellcheck disable=SC2086
  exec "$JAVA" $heap -XX:+UseG1GC -XX:-OmitStackTraceInFastThrow \
    --add-opens java.base/java.nio=ALL-UNNAMED --add-opens java.base/sun.nio.ch=ALL-UNNAMED \
    --add-exports java.base/sun.nio.ch=ALL-UNNAMED --add-opens java.base/java.lang=ALL-UNNAMED \
    -Drocketmq.home.dir="$home" -Duser.home="$home" \
    -Drmq.logback.configurationFile="$logback" \
    -cp "$cp" "$@"
}
wait_for_line() {
  # wait_for_line <server> <pidfile> <logfile> <pattern> <seconds>
  local deadline=$((SECONDS + $5))
  while [ $SECONDS -lt $deadline ]; do
    grep -q "$4" "$3" 2>/dev/null && return 0
    alive "$2" || fail "$1" "process exited" "$3"
    sleep 0.5
  done
  fail "$1" "no '$4' after $5 s" "$3"
}

# --- NameServer ----------------------------------------------------------------------------------
start_namesrv() {
  # start_namesrv <dir> <port>
  local NS=$1 port=$2
  local NS_PID="$NS/namesrv.pid"
  if alive "$NS_PID"; then
    log "NameServer already running on $port (pid $(cat "$NS_PID"))"
  elif port_open "$port"; then
    log "re-using the NameServer already listening on $port"
  else
    mkdir -p "$NS"
    printf 'listenPort=%s\nbindAddress=127.0.0.1\n' "$port" >"$NS/namesrv.conf"
    : >"$NS/stdout.log"
    log "starting RocketMQ NameServer on 127.0.0.1:$port"
    rmq_java "$NS" rmq.namesrv.logback.xml '-Xms128m -Xmx256m' "$LIB/*" \
      org.apache.rocketmq.namesrv.NamesrvStartup -c "$NS/namesrv.conf" </dev/null >>"$NS/stdout.log" 2>&1 &
    echo $! >"$NS_PID"
    wait_for_line namesrv "$NS_PID" "$NS/stdout.log" "The Name Server boot success" 90
  fi
  log "NameServer ready on $port"
}

# --- Broker --------------------------------------------------------------------------------------
start_broker() {
  # start_broker <dir> <broker name> <port> <name server list host:port;host:port>
  local BR=$1 name=$2 port=$3 namesrv=$4
  local BR_PID="$BR/broker.pid"
  if alive "$BR_PID"; then
    log "Broker $name already running on $port (pid $(cat "$BR_PID"))"
  elif port_open "$port"; then
    log "re-using the Broker already listening on $port"
  else
    mkdir -p "$BR/store"
    {
      cat "$ROOT/scripts/rocketmq/broker.local.conf"
      # Later keys win: the broker group's name replaces the file's broker-a.
      printf '\nbrokerName=%s\nnamesrvAddr=%s\nlistenPort=%s\nstorePathRootDir=%s\n' \
        "$name" "$namesrv" "$port" "$BR/store"
    } >"$BR/broker.conf"
    : >"$BR/stdout.log"
    # The HA (replication) port listens on every interface in RocketMQ and no setting changes that;
    # scripts/rocketmq/LoopbackHAService.java is the default HA service bound to loopback, and the
    # broker loads it through its ServiceProvider file.
    local plugin="$BR/plugin"
    rm -rf "$plugin"
    mkdir -p "$plugin/META-INF/service"
    [ -x "$JAVA_HOME/bin/javac" ] || fail broker "no javac at $JAVA_HOME/bin/javac (set JAVA_HOME to a JDK)"
    "$JAVA_HOME/bin/javac" -nowarn -cp "$LIB/*" -d "$plugin" "$ROOT/scripts/rocketmq/LoopbackHAService.java" \
      >"$BR/javac.log" 2>&1 || fail broker "could not compile LoopbackHAService.java" "$BR/javac.log"
    echo rmqtx.rocketmq.LoopbackHAService >"$plugin/META-INF/service/org.apache.rocketmq.store.ha.HAService"
    log "starting RocketMQ Broker $name on 127.0.0.1:$port"
    rmq_java "$BR" rmq.broker.logback.xml '-Xms256m -Xmx512m -Xmn128m -XX:MaxDirectMemorySize=512m' "$plugin:$LIB/*" \
      org.apache.rocketmq.broker.BrokerStartup -c "$BR/broker.conf" </dev/null >>"$BR/stdout.log" 2>&1 &
    echo $! >"$BR_PID"
    wait_for_line broker "$BR_PID" "$BR/stdout.log" "boot success" 120
  fi
  log "Broker $name ready on $port"
}

# One NameServer and one broker group by default; BROKERS=2 adds a second NameServer and a second
# broker group, broker-b, in the same cluster (brokerClusterName of broker.local.conf). Every broker
# registers with every NameServer, so either NameServer alone knows the whole cluster.
NAMESRV_LIST="127.0.0.1:$NAMESRV_PORT"
BROKER_LIST="127.0.0.1:$BROKER_PORT"
if [ "$BROKERS" = 2 ]; then
  NAMESRV_LIST="$NAMESRV_LIST;127.0.0.1:$NAMESRV2_PORT"
  BROKER_LIST="$BROKER_LIST;127.0.0.1:$BROKER2_PORT"
fi
start_namesrv "$INFRA_DIR/namesrv" "$NAMESRV_PORT"
if [ "$BROKERS" = 2 ]; then start_namesrv "$INFRA_DIR/namesrv-2" "$NAMESRV2_PORT"; fi
start_broker "$INFRA_DIR/broker" broker-a "$BROKER_PORT" "$NAMESRV_LIST"
if [ "$BROKERS" = 2 ]; then start_broker "$INFRA_DIR/broker-b" broker-b "$BROKER2_PORT" "$NAMESRV_LIST"; fi

# --- what the tests and scripts read -------------------------------------------------------------
cat >"$INFRA_DIR/env" <<EOF
export TEST_MYSQL_DSN='$MYSQL_USER:$MYSQL_PASSWORD@tcp(127.0.0.1:$MYSQL_PORT)/'
export TEST_ROCKETMQ_NAMESRV='$NAMESRV_LIST'
export TEST_ROCKETMQ_BROKER='127.0.0.1:$BROKER_PORT'
export TEST_ROCKETMQ_BROKERS='$BROKER_LIST'
EOF
log "all servers ready; addresses in $INFRA_DIR/env"
