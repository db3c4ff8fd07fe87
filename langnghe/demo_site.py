"""A local demo news site built from the bundled corpus (real VNTC news, MIT), served on 127.0.0.1.

Four outlets (paths /vnexpress/, /tuoitre/, /thanhnien/, /nld/), each with an RSS feed and plain
article pages carrying the usual meta tags, so the real spider crawls them as it would a news
site. Publication dates are spread over the days before `now`, so the demo has a today and a week.
"""

from __future__ import annotations

import gzip
import html
import json
import re
import threading
from datetime import datetime, timedelta
from email.utils import format_datetime
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from langnghe.records import to_city_time
from nlp.text import fold

CORPUS = Path(__file__).with_name("data") / "demo_corpus.jsonl.gz"
OUTLET_NAMES = {"vnexpress": "VnExpress", "tuoitre": "Tuổi Trẻ", "thanhnien": "Thanh Niên", "nld": "Người Lao Động"}
DAYS = 10


def load_corpus(path: Path = CORPUS) -> list[dict[str, Any]]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def slugify(text: str, max_words: int = 10) -> str:
    words = re.findall(r"[a-z0-9]+", fold(text))
    return "-".join(words[:max_words]) or "bai-viet"


def publication_time(index: int, now: datetime) -> datetime:
    """Deterministic spread over the last DAYS days, never in the future, half of it recent."""
    hours = (index * 7919) % (DAYS * 24)
    if index % 2 == 0:
        hours %= 36  # half the items fall in the last day and a half
    return (now - timedelta(hours=hours, minutes=(index * 37) % 60)).replace(second=0, microsecond=0)


def _paragraphs(text: str) -> list[str]:
    parts = [p.strip() for p in re.split(r"\n+", text) if p.strip()]
    if len(parts) == 1 and len(parts[0]) > 600:  # one long block: cut at sentence ends
        sentences = re.split(r"(?<=[.!?])\s+", parts[0])
        parts, current = [], ""
        for sentence in sentences:
            current = f"{current} {sentence}".strip()
            if len(current) > 350:
                parts.append(current)
                current = ""
        if current:
            parts.append(current)
    return parts


def article_html(item: dict[str, Any], published: datetime, outlet: str) -> str:
    esc = html.escape
    local = to_city_time(published)
    body = "\n".join(f"<p>{esc(p)}</p>" for p in _paragraphs(item["text"]))
    return f"""<!doctype html>
<html lang="vi"><head><meta charset="utf-8">
<title>{esc(item['title'])} - {esc(OUTLET_NAMES[outlet])}</title>
<meta property="og:title" content="{esc(item['title'])}">
<meta property="og:site_name" content="{esc(OUTLET_NAMES[outlet])}">
<meta property="article:published_time" content="{local.isoformat()}">
<meta property="article:section" content="{esc(item['section'])}">
<meta name="author" content="{esc(OUTLET_NAMES[outlet])} (VNTC)">
</head><body>
<header><nav><a href="/{outlet}/">{esc(OUTLET_NAMES[outlet])}</a></nav></header>
<main><article>
<h1>{esc(item['title'])}</h1>
<p class="date">{local.strftime('%d/%m/%Y %H:%M')} (GMT+7)</p>
{body}
</article></main>
<footer><p>Trang demo Lắng Nghe — văn bản từ kho VNTC (MIT).</p></footer>
</body></html>
"""


def rss_xml(outlet: str, base_url: str, entries: list[tuple[str, dict[str, Any], datetime]]) -> str:
    esc = html.escape
    items = "\n".join(
        f"<item><title>{esc(item['title'])}</title><link>{esc(url)}</link><guid>{esc(url)}</guid>"
        f"<pubDate>{format_datetime(published)}</pubDate></item>"
        for url, item, published in entries
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>{esc(OUTLET_NAMES[outlet])} (demo)</title>
<link>{base_url}/{outlet}/</link><description>Lắng Nghe demo feed</description>
{items}
</channel></rss>
"""


def build_site(root: Path, base_url: str, now: datetime, corpus: list[dict[str, Any]] | None = None) -> list[str]:
    """Write the demo site under `root`; returns the feed URLs. `base_url` is where it will be served."""
    corpus = corpus if corpus is not None else load_corpus()
    by_outlet: dict[str, list[tuple[str, dict[str, Any], datetime]]] = {o: [] for o in OUTLET_NAMES}
    for index, item in enumerate(corpus):
        outlet = item["outlet"]
        published = (now - timedelta(hours=float(item["hours_ago"])) if "hours_ago" in item
                     else publication_time(index, now))
        path = f"{outlet}/{slugify(item['title'])}-{index}.html"
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(article_html(item, published, outlet), encoding="utf-8")
        by_outlet[outlet].append((f"{base_url}/{path}", item, published))
    feeds = []
    for outlet, entries in by_outlet.items():
        entries.sort(key=lambda e: e[2], reverse=True)
        (root / outlet / "rss.xml").write_text(rss_xml(outlet, base_url, entries), encoding="utf-8")
        feeds.append(f"{base_url}/{outlet}/rss.xml")
    (root / "robots.txt").write_text("User-agent: *\nAllow: /\n", encoding="utf-8")
    return feeds


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass


def serve_directory(root: Path, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """Serve `root` over HTTP in a daemon thread; the bound port is `server.server_address[1]`."""
    server = ThreadingHTTPServer((host, port), partial(_QuietHandler, directory=str(root)))
    threading.Thread(target=server.serve_forever, name="demo-site", daemon=True).start()
    return server


def source_names(base_url: str) -> dict[str, str]:
    """URL prefix → outlet name, for the crawler's source registry."""
    return {f"{base_url}/{outlet}/": name for outlet, name in OUTLET_NAMES.items()}
