#!/usr/bin/env bash
# `npm test`: installs what is missing, type-checks, then runs every suite that exists.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules ] && [ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund
npx tsc --noEmit
echo "typecheck: ok"
for suite in unit model integration e2e browser; do
  if grep -q "\"test:$suite\"" package.json; then
    npm run --silent "test:$suite"
  fi
done
