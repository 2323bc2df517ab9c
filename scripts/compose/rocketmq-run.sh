#!/usr/bin/env bash
# Runs one of the apache/rocketmq image's start scripts so that `docker compose stop` and `down` stop
# RocketMQ cleanly. docker-compose.yml mounts this file and puts it in front of the image's command:
#
#   bash /home/rocketmq/rocketmq-run.sh sh mqbroker -c /home/rocketmq/broker.conf
#   bash /home/rocketmq/rocketmq-run.sh sh mqnamesrv
#
# Why it is needed: the image starts java two shells deep, and neither shell execs. RocketMQ's
# bin/mqbroker ends with `sh ${ROCKETMQ_HOME}/bin/runbroker.sh ... BrokerStartup ...` (mqnamesrv
# likewise with runserver.sh), and the image's runbroker.sh / runserver.sh end with
# `$JAVA ${JAVA_OPT} $@`. So the process tree is
#
#   sh mqbroker  ->  sh runbroker.sh  ->  java ... BrokerStartup
#
# - Without an init, `sh mqbroker` is PID 1. The kernel delivers no signal to PID 1 that it has no
#   handler for, and dash installs none for SIGTERM: `docker compose stop` waited out
#   stop_grace_period, then SIGKILLed everything, and the broker recovered its store as after a
#   crash on the next start.
# - `init: true` alone is worse: docker-init (tini, run without -g) sends SIGTERM to its child only,
#   the first shell. The shell dies at once, tini exits because its child did, and the kernel kills
#   java with the rest of the container before its shutdown hook has run. tini's process-group
#   mode (-g, or TINI_KILL_PROCESS_GROUP) ends the same way: the shells die first.
#
# This script stays in between. It starts the image's script in a process group of its own and, on
# SIGTERM or SIGINT, signals the JVM in that group and nothing else. The shells keep waiting for
# java, java runs its shutdown hook (the broker flushes its store and marks it cleanly shut down),
# and this script exits with the image script's status once that has returned. It is a bash script
# because it reads /proc; the image has bash, and no procps is needed.
set -uo pipefail

if [ $# -eq 0 ]; then
  echo "usage: $0 <command> [args...]" >&2
  exit 2
fi

# Job control: the background job below gets its own process group, whose id is its pid.
set -m
"$@" &
job=$!

# jvms prints the pids of the java processes in the job's process group.
jvms() {
  local stat pid comm pgrp
  for stat in /proc/[0-9]*/stat; do
    # /proc/<pid>/stat: pid (comm) state ppid pgrp ...
    read -r pid comm _ _ pgrp _ <"$stat" 2>/dev/null || continue
    if [ "$pgrp" = "$job" ] && [ "$comm" = "(java)" ]; then
      echo "$pid"
    fi
  done
}

forward() {
  local pids
  pids=$(jvms)
  if [ -n "$pids" ]; then
    # shellcheck disable=SC2086
    kill -s "$1" $pids 2>/dev/null
  else
    # No JVM yet (the scripts are still preparing its command line): stop the scripts themselves.
    kill -s "$1" -- "-$job" 2>/dev/null
  fi
}
trap 'forward TERM' TERM
trap 'forward INT' INT

# A trapped signal interrupts wait; wait again until the job itself has ended.
while :; do
  wait "$job"
  status=$?
  kill -0 "$job" 2>/dev/null || break
done
exit "$status"
