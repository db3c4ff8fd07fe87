#!/usr/bin/env bash
# Install Debian's redis-server for the worker and distributed-crawl tests (they start and stop
# their own server on 127.0.0.1 and a free port; nothing is left running). Idempotent.
set -euo pipefail
if command -v redis-server >/dev/null 2>&1; then
  exit 0
fi
if command -v apt-get >/dev/null 2>&1; then
  (apt-get install -y -qq redis-server >/dev/null 2>&1) || (apt-get update -qq && apt-get install -y -qq redis-server >/dev/null)
  # the package may start a system service: the tests do not need it
  (command -v systemctl >/dev/null 2>&1 && systemctl disable --now redis-server >/dev/null 2>&1) || true
  echo "setup-redis: $(redis-server --version)"
else
  echo "setup-redis: no apt-get: the Redis tests will skip" >&2
fi
