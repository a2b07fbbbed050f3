#!/usr/bin/env bash
# A private Podman REST service and the fleet test images, for the integration tests and the demo.
#
#   scripts/podman-env.sh [start] [DIR]   install podman/runc/busybox-static if missing, write
#                                         DIR/containers.conf, start `podman system service` on
#                                         DIR/podman.sock (unless it already answers), build the
#                                         localhost/fleet-test:{v1,v2,v3,stubborn,crash} images if
#                                         missing; prints KEY=value lines on stdout:
#                                           CONTAINER_HOST=unix://DIR/podman.sock
#                                           CONTAINERS_CONF=DIR/containers.conf
#                                           PODMAN_ENV_DIR=DIR
#                                           PODMAN_ENV_SERVICE_PID=<pid of the service>
#                                           PODMAN_ENV_STARTED=1   (0 when an earlier run's service was reused)
#   scripts/podman-env.sh stop [DIR]      stops the service that a `start` on DIR started (by its pid file).
#
# DIR defaults to <repo>/.run/podman. Idempotent; concurrent runs on one DIR are serialised by a lock.
# In a shell:  set -a; eval "$(scripts/podman-env.sh)"; set +a
# Everything but the KEY=value lines goes to stderr.
set -euo pipefail

cmd=start
case "${1:-}" in
  start|stop) cmd=$1; shift ;;
esac
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=${1:-$repo/.run/podman}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
sock=$dir/podman.sock
conf=$dir/containers.conf
pidfile=$dir/service.pid

log() { echo "podman-env: $*" >&2; }

# The podman CLI must act locally here: a CONTAINER_HOST in our environment would make it a remote client.
unset CONTAINER_HOST
export CONTAINERS_CONF=$conf

exec 9>"$dir/lock"
flock 9

# The pid in the pid file, if that process is still our `podman system service` on this socket.
service_pid() {
  [ -f "$pidfile" ] || return 1
  local pid
  pid=$(cat "$pidfile")
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  local cmdline
  cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ $cmdline == *"system service --time=0 unix://$sock"* ]] || return 1
  echo "$pid"
}

ping_ok() { curl -sf --max-time 2 --unix-socket "$sock" http://d/v4.0.0/libpod/_ping >/dev/null 2>&1; }

if [ "$cmd" = stop ]; then
  if pid=$(service_pid); then
    kill "$pid"
    for _ in $(seq 1 100); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
    if [ -d "/proc/$pid" ]; then kill -9 "$pid" || true; fi
    log "stopped podman service $pid"
  else
    log "no podman service of ours running for $dir"
  fi
  rm -f "$pidfile" "$sock"
  exit 0
fi

# 1. Packages.
missing=()
command -v podman >/dev/null || missing+=(podman)
command -v runc >/dev/null || [ -x /usr/sbin/runc ] || missing+=(runc)
dpkg -s busybox-static >/dev/null 2>&1 || missing+=(busybox-static)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  bash "$repo/scripts/apt-install.sh" "${missing[@]}"
fi

# 2. containers.conf: runc (crun fails on this kernel's hybrid cgroups); ulimits under the hard limit.
cat >"$conf.tmp" <<'EOF'
# Written by scripts/podman-env.sh
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]

[engine]
runtime = "runc"
EOF
mv "$conf.tmp" "$conf"

# 3. The REST service.
started=0
if pid=$(service_pid) && ping_ok; then
  log "reusing podman service $pid on $sock"
else
  if pid=$(service_pid); then kill "$pid" 2>/dev/null || true; sleep 0.5; fi
  rm -f "$sock"
  # Not holding our lock (fd 9): the service outlives this script.
  setsid podman system service --time=0 "unix://$sock" </dev/null >"$dir/service.log" 2>&1 9>&- &
  pid=$!
  echo "$pid" >"$pidfile"
  for _ in $(seq 1 150); do
    ping_ok && break
    [ -d "/proc/$pid" ] || { log "podman service exited; see $dir/service.log"; tail -20 "$dir/service.log" >&2; exit 1; }
    sleep 0.1
  done
  ping_ok || { log "podman service did not answer _ping on $sock"; exit 1; }
  started=1
  log "started podman service $pid on $sock"
fi

# 4. Test images from busybox-static. The recipe's hash is a label: a changed recipe rebuilds.
image_script() { # name -> the image's /entrypoint.sh
  case $1 in
    v*) cat <<EOF
#!/bin/sh
# fleet-test $1: serves "$1" on :8080; on SIGTERM logs a line and exits 0.
trap 'echo "fleet-test $1: SIGTERM, exiting"; kill \$httpd 2>/dev/null; exit 0' TERM
httpd -f -p 8080 -h /www &
httpd=\$!
echo "fleet-test $1: serving on 8080"
wait \$httpd
EOF
    ;;
    stubborn) cat <<'EOF'
#!/bin/sh
# fleet-test stubborn: ignores SIGTERM; only SIGKILL ends it.
trap 'echo "fleet-test stubborn: SIGTERM ignored"' TERM
httpd -f -p 8080 -h /www &
echo "fleet-test stubborn: running"
while :; do sleep 1 & wait $!; done
EOF
    ;;
    crash) cat <<'EOF'
#!/bin/sh
echo "fleet-test crash: exiting 1"
exit 1
EOF
    ;;
  esac
}

build_image() { # name
  local name=$1 ref=localhost/fleet-test:$1 recipe want have old_id=
  recipe=$(image_script "$name")
  want=$( { echo "$recipe"; sha256sum </bin/busybox; } | sha256sum | cut -c1-16)
  if podman image exists "$ref"; then
    have=$(podman image inspect --format '{{index .Labels "io.fleet.test-image"}}' "$ref" 2>/dev/null || true)
    [ "$have" = "$want" ] && return 0
    old_id=$(podman image inspect --format '{{.Id}}' "$ref")
    log "rebuilding $ref (recipe changed)"
  else
    log "building $ref"
  fi
  local root
  root=$(mktemp -d "$dir/rootfs.XXXXXX")
  mkdir -p "$root/bin" "$root/www" "$root/tmp" "$root/proc" "$root/sys" "$root/dev" "$root/etc"
  cp /bin/busybox "$root/bin/busybox"
  for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
  done
  echo "$name" >"$root/www/index.html"
  echo "$recipe" >"$root/entrypoint.sh"
  chmod 755 "$root/entrypoint.sh"
  echo "root:x:0:0:root:/root:/bin/sh" >"$root/etc/passwd"
  echo "root:x:0:" >"$root/etc/group"
  tar -C "$root" -c . | podman import -q \
    --change 'CMD=["/bin/sh","/entrypoint.sh"]' \
    --change "LABEL=io.fleet.test-image=$want" \
    --change "ENV=PATH=/bin" \
    - "$ref" >/dev/null
  rm -rf "$root"
  # The previous build, now untagged; still in use by some container means it stays.
  if [ -n "$old_id" ]; then podman rmi "$old_id" >/dev/null 2>&1 || true; fi
}

for image in v1 v2 v3 stubborn crash; do build_image "$image"; done

echo "CONTAINER_HOST=unix://$sock"
echo "CONTAINERS_CONF=$conf"
echo "PODMAN_ENV_DIR=$dir"
echo "PODMAN_ENV_SERVICE_PID=$pid"
echo "PODMAN_ENV_STARTED=$started"
