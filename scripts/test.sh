#!/usr/bin/env bash
# `npm test`: installs what is missing, starts NATS if none answers, type-checks, then runs every
# suite that exists and closes with one "total: N passed, N failed" line.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules ] && [ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund
bash scripts/nats-up.sh
npx tsc --noEmit
echo "typecheck: ok"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
passed=0 failed=0 status=0
for suite in unit model integration e2e browser; do
  grep -q "\"test:$suite\"" package.json || continue
  npm run --silent "test:$suite" 2>&1 | tee "$out" || status=1
  p=$(grep -Eo '^ +[0-9]+ passing' "$out" | tail -1 | grep -Eo '[0-9]+' || echo 0)
  f=$(grep -Eo '^ +[0-9]+ failing' "$out" | tail -1 | grep -Eo '[0-9]+' || echo 0)
  passed=$((passed + p)) failed=$((failed + f))
done
echo "total: $passed passed, $failed failed"
exit $status
