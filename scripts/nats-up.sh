#!/usr/bin/env bash
# Makes sure a NATS server with JetStream answers on 127.0.0.1:4222: installs Debian's nats-server
# if missing and starts it the way this kind of machine does. Leaves a running one alone.
set -euo pipefail
up() { (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null; }
up && exit 0
if ! [ -x /usr/sbin/nats-server ]; then
  echo "nats-up: installing nats-server" >&2
  bash "$(dirname "$0")/apt-install.sh" nats-server
fi
mkdir -p /var/lib/nats-server
start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
  -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
for _ in $(seq 1 100); do up && exit 0; sleep 0.1; done
echo "nats-up: nats-server did not come up on 127.0.0.1:4222 (see /var/log/nats-server.log)" >&2
exit 1
