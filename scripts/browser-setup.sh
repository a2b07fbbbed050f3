#!/usr/bin/env bash
# npm run test:browser: Debian's Chromium for playwright-core, installed if missing (non-interactive).
set -euo pipefail
if [ ! -x /usr/bin/chromium ]; then
  echo "browser-setup: installing Debian's chromium" >&2
  bash "$(dirname "$0")/apt-install.sh" chromium >/dev/null
fi
/usr/bin/chromium --version >&2
mkdir -p .test-artifacts
