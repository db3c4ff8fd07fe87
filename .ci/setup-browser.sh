#!/usr/bin/env bash
# Headless Chromium (browser tests, digest PDFs), fonts that cover Vietnamese, and poppler-utils
# (pdftoppm/pdftotext, to check PDFs). Idempotent and quick when everything is there; runs as root.
# Playwright's Python package drives this system Chromium: never run `playwright install`.
set -euo pipefail

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v pdftoppm >/dev/null 2>&1 || need+=(poppler-utils)
[ -f /usr/share/fonts/truetype/noto/NotoSans-Regular.ttf ] || need+=(fonts-noto-core)
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need+=(fonts-dejavu-core)

if [ "${#need[@]}" -gt 0 ]; then
  echo "setup-browser: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
chromium --version 2>/dev/null | head -1 || true
