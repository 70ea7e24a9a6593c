#!/usr/bin/env bash
# The demo: the whole token lifecycle against a local node-oidc-provider that
# this command installs (npm ci), starts on 127.0.0.1 and stops again.
# Set TOKENKEEPER_ISSUER, TOKENKEEPER_CLIENT_ID, TOKENKEEPER_CLIENT_SECRET and
# TOKENKEEPER_REFRESH_TOKEN (optionally TOKENKEEPER_AUDIENCE) to run it
# against a real tenant instead.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${TOKENKEEPER_ISSUER:-}" ]; then
  (cd tests/harness && npm ci --no-audit --no-fund --loglevel=error)
fi
exec cargo run --quiet --release -p tokenkeeper-demo
