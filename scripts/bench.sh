#!/usr/bin/env bash
# `npm run bench`: installs what is missing (docker-compose from Debian, for the side-by-side
# upgrade bench), builds the agent, makes sure NATS answers on 4222, starts the bench's own Podman
# service (scripts/podman-env.sh on .run/bench-podman), runs every benchmark (bench/run.ts) and
# writes bench/RESULTS.md. Stops the Podman service if it started it.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules ] && [ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund
command -v docker-compose >/dev/null || bash scripts/apt-install.sh docker-compose
npm run --silent build
bash scripts/nats-up.sh
export PODMAN_ENV_DIR=$PWD/.run/bench-podman
vars=$(bash scripts/podman-env.sh start "$PODMAN_ENV_DIR")
started=$(sed -n 's/^PODMAN_ENV_STARTED=//p' <<<"$vars")
status=0
node --import tsx bench/run.ts "$@" || status=$?
if [ "$started" = 1 ]; then bash scripts/podman-env.sh stop "$PODMAN_ENV_DIR" || true; fi
exit $status
