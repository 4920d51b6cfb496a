#!/usr/bin/env bash
# engine.sh: a private, offline Docker engine for gomem's container tests.
#
#   bash docker/engine.sh up     install docker.io if needed (root + apt), start an engine on our
#                                own socket unless one already answers there, wait until it answers
#   bash docker/engine.sh down   stop the engine, but only if `up` started it and no other live
#                                caller of `up` still uses it (`down --force`: stop it regardless)
#   bash docker/engine.sh env    print the DOCKER_HOST to use (eval-able: `export DOCKER_HOST=...`
#                                with `env --export`)
#   bash docker/engine.sh status say whether the engine answers and who started it
#
# The engine this starts never reaches the network: no bridge, no iptables, no masquerading, and
# a dead loopback port as its HTTP(S) proxy, so an accidental image pull fails at once and never
# leaves the machine. Containers are to be run with network mode `none`.
#
# Settings (environment):
#   GOMEM_DOCKER_DIR   state directory: socket, data root, exec root, pid file, log
#                      (default /tmp/gomem-docker; keep it short: a unix socket path has <108 chars)
#   GOMEM_DOCKER_HOST  use this engine instead (e.g. unix:///var/run/docker.sock): `up` then only
#                      checks that it answers, and never starts or stops anything
#   GOMEM_DOCKER_USER  who is calling `up`/`down` (default: the caller's pid, $PPID); `down` stops
#                      the engine when no registered caller is alive any more
#   GOMEM_DOCKER_WAIT  seconds to wait for a starting engine to answer (default 60)
#   GOMEM_DOCKER_INSTALL  1: as root, install docker.io with apt-get when no engine is installed
#                      (said first); otherwise the container tests are skipped with one line
#   GOMEM_DOCKER_SKIP_FILE  where `up` records that no engine is there (the build passes
#                      docker/target/docker-skipped.txt; build-images.sh and the tests read it)
set -euo pipefail

me="engine.sh"
dir="${GOMEM_DOCKER_DIR:-/tmp/gomem-docker}"
sock="$dir/docker.sock"
own_host="unix://$sock"
host="${GOMEM_DOCKER_HOST:-$own_host}"
user="${GOMEM_DOCKER_USER:-$PPID}"
wait_s="${GOMEM_DOCKER_WAIT:-60}"
pidfile="$dir/dockerd.pid"
marker="$dir/started-by-engine-sh"
users="$dir/users"
log="$dir/dockerd.log"
cli=/usr/bin/docker           # the engine's own CLI from docker.io, not whatever is first in PATH

say() { echo "$me: $*" >&2; }
die() { echo "$me: ERROR: $*" >&2; exit 1; }

find_dockerd() {
  local d
  for d in /usr/sbin/dockerd /usr/bin/dockerd; do
    [ -x "$d" ] && { echo "$d"; return 0; }
  done
  return 1
}

answers() {
  [ -x "$cli" ] || return 1
  env -u DOCKER_CONTEXT -u DOCKER_TLS_VERIFY -u DOCKER_CERT_PATH \
    "$cli" -H "$host" info --format '{{.ServerVersion}}' >/dev/null 2>&1
}

external() { [ "$host" != "$own_host" ]; }

daemon_pid() {
  local p
  [ -f "$pidfile" ] || return 1
  p="$(cat "$pidfile" 2>/dev/null || true)"
  # Alive, and still a dockerd (a stale pid file from an earlier boot may name another process).
  [ -n "$p" ] && kill -0 "$p" 2>/dev/null && [ "$(cat "/proc/$p/comm" 2>/dev/null)" = dockerd ] \
    && { echo "$p"; return 0; }
  return 1
}

# No engine to use: the container tests are skipped, said in one line (and recorded in
# GOMEM_DOCKER_SKIP_FILE, which build-images.sh and the tests read), never a silent install.
skip() {
  local why="no Docker engine ($1): the container tests are SKIPPED. To run them: set DOCKER_HOST to an engine you have (e.g. unix:///var/run/docker.sock), or as root set GOMEM_DOCKER_INSTALL=1 to let engine.sh install Debian's docker.io with apt-get and start a private offline engine"
  say "$why"
  if [ -n "${GOMEM_DOCKER_SKIP_FILE:-}" ]; then
    mkdir -p "$(dirname "$GOMEM_DOCKER_SKIP_FILE")"
    echo "$why" > "$GOMEM_DOCKER_SKIP_FILE"
  fi
  exit 0
}

install_engine() {
  if find_dockerd >/dev/null && [ -x "$cli" ]; then
    [ "$(id -u)" = 0 ] || skip "one is installed but none answers at $host, and only root may start dockerd"
    return 0
  fi
  [ "$(id -u)" = 0 ] || skip "none installed, and not root to install one"
  [ "${GOMEM_DOCKER_INSTALL:-0}" = 1 ] || skip "none installed; installing docker.io needs your consent"
  command -v apt-get >/dev/null || die "no dockerd and no apt-get to install docker.io; install a Docker engine (API >= 1.41) or skip the container tests with -DskipITs"
  say "installing docker.io (Debian's Docker engine) with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io >/dev/null || die "apt-get install docker.io failed"
  find_dockerd >/dev/null && [ -x "$cli" ] || die "docker.io installed but dockerd or $cli is missing"
}

register() {
  mkdir -p "$users"
  : > "$users/$user"
}

# Drop the callers whose process is gone; print the ones still alive.
live_users() {
  local f u
  [ -d "$users" ] || return 0
  for f in "$users"/*; do
    [ -e "$f" ] || continue
    u="${f##*/}"
    if [[ "$u" =~ ^[0-9]+$ ]] && ! kill -0 "$u" 2>/dev/null; then rm -f "$f"; continue; fi
    echo "$u"
  done
}

cmd_up() {
  [ -z "${GOMEM_DOCKER_SKIP_FILE:-}" ] || rm -f "$GOMEM_DOCKER_SKIP_FILE"
  if external; then
    answers || die "no engine answers at GOMEM_DOCKER_HOST=$host"
    say "using the engine at $host (not started here; 'down' will leave it alone)"
    return 0
  fi
  if answers; then
    if [ -f "$marker" ] && daemon_pid >/dev/null; then
      register
      say "engine already up at $host (started by engine.sh, pid $(daemon_pid)); registered caller $user"
    else
      say "an engine not started by engine.sh already answers at $host; using it, 'down' will leave it alone"
    fi
    return 0
  fi
  install_engine
  local dockerd; dockerd="$(find_dockerd)"
  mkdir -p "$dir/data" "$dir/exec"
  # A daemon of ours that is alive but does not answer (still starting, or hung): stop it first.
  if p="$(daemon_pid)"; then
    say "engine pid $p does not answer; stopping it before starting anew"
    stop_daemon "$p"
  fi
  rm -f "$sock" "$marker"
  rm -rf "$users"
  say "starting dockerd ($("$dockerd" --version 2>/dev/null || echo '?')) at $host, offline; log: $log"
  # setsid: the daemon must outlive the caller (a Maven JVM, a shell) and not get its signals.
  env -u NO_PROXY -u no_proxy -u DOCKER_HOST -u DOCKER_CONTEXT \
      HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9 \
      http_proxy=http://127.0.0.1:9 https_proxy=http://127.0.0.1:9 \
    setsid "$dockerd" \
      --host "$own_host" \
      --data-root "$dir/data" \
      --exec-root "$dir/exec" \
      --pidfile "$pidfile" \
      --bridge=none --iptables=false --ip-masq=false --ip-forward=false \
      --userland-proxy=false \
      --containerd-namespace=gomem --containerd-plugins-namespace=gomem-plugins \
      --log-level=debug \
      </dev/null >"$log" 2>&1 9>&- &
  local launched=$!
  touch "$marker"
  local i=0
  until answers; do
    if ! kill -0 "$launched" 2>/dev/null; then
      rm -f "$marker"
      say "dockerd exited while starting; last lines of $log:"
      tail -n 30 "$log" >&2 || true
      die "could not start the Docker engine"
    fi
    i=$((i + 1))
    if [ "$i" -gt $((wait_s * 5)) ]; then
      say "dockerd does not answer after ${wait_s}s; last lines of $log:"
      tail -n 30 "$log" >&2 || true
      stop_daemon "$launched"
      rm -f "$marker"
      die "the Docker engine did not come up"
    fi
    sleep 0.2
  done
  register
  say "engine up at $host (pid $(daemon_pid || echo "$launched"), server $("$cli" -H "$host" version --format '{{.Server.Version}} API {{.Server.APIVersion}}' 2>/dev/null)); registered caller $user"
}

stop_daemon() {
  local p="$1" i
  kill -TERM "$p" 2>/dev/null || return 0
  for i in $(seq 1 150); do
    kill -0 "$p" 2>/dev/null || return 0
    sleep 0.2
  done
  say "dockerd pid $p still running after 30s; killing it"
  kill -KILL "$p" 2>/dev/null || true
}

# Image pulls the engine was asked for (its debug log records every API call). Must stay 0.
pull_count() {
  [ -f "$log" ] || { echo 0; return; }
  grep -cE 'Calling POST /v[0-9.]+/images/create|msg="?pull' "$log" || true
}

cmd_down() {
  local force=false
  [ "${1:-}" = "--force" ] && force=true
  if external; then
    say "engine at $host was not started here; leaving it alone"
    return 0
  fi
  if [ ! -f "$marker" ]; then
    if answers; then say "engine at $host was not started by engine.sh; leaving it alone"
    else say "no engine of ours is running at $host; nothing to stop"; fi
    return 0
  fi
  rm -f "$users/$user"
  local others; others="$(live_users | paste -sd' ')"
  if [ -n "$others" ] && ! $force; then
    say "engine still used by caller(s) $others; leaving it running (down --force stops it)"
    return 0
  fi
  local p pulls; pulls="$(pull_count)"
  if [ "$pulls" != 0 ]; then say "WARNING: the engine log records $pulls image pull request(s); see $log"
  else say "no image pull was requested of the engine"; fi
  if p="$(daemon_pid)"; then
    say "stopping dockerd pid $p"
    stop_daemon "$p"
  fi
  rm -f "$marker" "$sock"
  rm -rf "$users"
  say "engine stopped"
}

cmd_env() {
  if [ "${1:-}" = "--export" ]; then echo "export DOCKER_HOST=$host"; else echo "$host"; fi
}

cmd_status() {
  if answers; then
    if external; then echo "up at $host (external)"
    elif [ -f "$marker" ]; then echo "up at $host (started by engine.sh, pid $(daemon_pid || echo '?'); callers: $(live_users | paste -sd' '); pull requests: $(pull_count))"
    else echo "up at $host (not started by engine.sh)"; fi
  else
    echo "down ($host does not answer)"; return 1
  fi
}

# One `up` or `down` at a time (parallel builds share the engine): fd 9 holds the lock.
lock() {
  mkdir -p "$dir"
  exec 9>"$dir/lock"
  command -v flock >/dev/null || return 0
  flock -w 120 9 || die "another engine.sh up/down holds $dir/lock for more than 120s"
}

case "${1:-}" in
  up) lock; cmd_up ;;
  down) shift; lock; cmd_down "$@" ;;
  env) shift; cmd_env "$@" ;;
  status) cmd_status ;;
  *) echo "usage: $0 up | down [--force] | env [--export] | status" >&2; exit 2 ;;
esac
