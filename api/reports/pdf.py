"""HTML → PDF with a headless Chromium from the system (Debian's `chromium`): the same engine
as the browser tests, full Unicode text shaping, nothing downloaded. Set LANGNGHE_CHROMIUM to
use another binary."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
         "--hide-scrollbars", "--mute-audio", "--no-pdf-header-footer")
TIMEOUT_S = 90


class PdfUnavailable(RuntimeError):
    """No Chromium to render PDFs with."""


class PdfError(RuntimeError):
    """Chromium ran but produced no PDF."""


def chromium_path() -> str | None:
    """The Chromium binary: $LANGNGHE_CHROMIUM, else the first of CANDIDATES on PATH."""
    configured = os.environ.get("LANGNGHE_CHROMIUM")
    if configured:
        return configured if Path(configured).exists() else None
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def html_to_pdf(html: str, *, timeout: float = TIMEOUT_S) -> bytes:
    """Print `html` (self-contained: inline CSS and SVG, no network) to PDF bytes."""
    binary = chromium_path()
    if binary is None:
        raise PdfUnavailable("Chromium không có trên máy / no Chromium found "
                             "(apt-get install chromium, or set LANGNGHE_CHROMIUM)")
    with tempfile.TemporaryDirectory(prefix="langnghe-pdf-") as tmp:
        folder = Path(tmp)
        page = folder / "report.html"
        out = folder / "report.pdf"
        page.write_text(html, encoding="utf-8")
        cmd = [binary, *FLAGS, f"--user-data-dir={folder / 'profile'}", f"--crash-dumps-dir={folder}",
               f"--print-to-pdf={out}", page.as_uri()]
        env = {**os.environ, "HOME": str(folder)}
        try:
            proc = subprocess.run(cmd, capture_output=True, timeout=timeout, env=env, check=False)
        except subprocess.TimeoutExpired as exc:
            raise PdfError(f"Chromium took more than {timeout:.0f}s to print the PDF") from exc
        if not out.exists() or out.stat().st_size == 0:
            tail = proc.stderr.decode("utf-8", "replace")[-800:]
            raise PdfError(f"Chromium exited {proc.returncode} without a PDF: {tail}")
        data = out.read_bytes()
    if not data.startswith(b"%PDF-"):
        raise PdfError("Chromium's output is not a PDF")
    log.info("printed PDF, %d bytes", len(data))
    return data
