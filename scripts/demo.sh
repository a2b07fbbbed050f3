#!/usr/bin/env bash
# `npm run demo`: everything the demo needs, from a fresh machine: npm packages, NATS, the Podman
# service and test images, a build; then the demo itself (scripts/demo.ts).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules ] && [ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund
bash scripts/nats-up.sh
set -a
eval "$(bash scripts/podman-env.sh start .run/demo/podman)"
set +a
npm run --silent build
# --once leaves nothing behind: the Podman service goes too, when this run started it.
if [[ " $* " == *" --once "* && $PODMAN_ENV_STARTED == 1 ]]; then
  trap 'bash scripts/podman-env.sh stop .run/demo/podman' EXIT
fi
npx tsx scripts/demo.ts "$@"
