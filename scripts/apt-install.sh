#!/usr/bin/env bash
# Installs Debian packages, non-interactive. `apt-get update` runs once per boot of the machine,
# however many of the project's scripts need a package.
set -euo pipefail
[ $# -gt 0 ] || exit 0
export DEBIAN_FRONTEND=noninteractive
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
marker=/tmp/.fleet-agent-apt-updated-$(cut -d' ' -f1 /proc/sys/kernel/random/boot_id 2>/dev/null || echo boot)
if [ ! -e "$marker" ]; then
  $SUDO apt-get update >&2
  touch "$marker"
fi
$SUDO apt-get install -y --no-install-recommends "$@" >&2
