"""RSS 2.0 / RSS 1.0 / Atom feeds and XML sitemaps, parsed with lxml."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from lxml import etree

from crawlers.extraction import parse_date_value

_FEED_ROOT = re.compile(rb"<(?:rss|feed|rdf:RDF|urlset|sitemapindex)[\s>]", re.IGNORECASE)
_BARE_AMP = re.compile(rb"&(?!#\d+;|#x[0-9a-fA-F]+;|[A-Za-z][A-Za-z0-9]*;)")


class FeedError(ValueError):
    """A document that is not a feed or sitemap (not XML, HTML, unknown root element)."""


@dataclass
class FeedEntry:
    """One item of a feed or sitemap: where the article is, and what the feed says about it."""

    url: str
    title: str | None = None
    published_at: datetime | None = None
    summary: str | None = None


@dataclass
class SitemapDoc:
    """A parsed sitemap: article URLs, or (for a sitemap index) more sitemaps."""

    entries: list[FeedEntry]
    sitemaps: list[str]


def _parse_xml(data: bytes) -> etree._Element:
    data = data.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not data:
        raise FeedError("empty document")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, recover=False)
    try:
        root = etree.fromstring(data, parser=parser)
    except etree.XMLSyntaxError as exc:
        # Real feeds are often slightly broken (a bare "&" in a URL). Repair those that are
        # clearly feeds or sitemaps; anything else (an HTML error page) is not a feed.
        if not _FEED_ROOT.search(data[:2048]):
            raise FeedError(f"not XML: {exc}") from exc
        repaired = _BARE_AMP.sub(b"&amp;", data)
        try:
            root = etree.fromstring(repaired, parser=parser)
        except etree.XMLSyntaxError:
            lenient = etree.XMLParser(resolve_entities=False, no_network=True, recover=True)
            root = etree.fromstring(repaired, parser=lenient)
            if root is None:
                raise FeedError(f"not XML: {exc}") from exc
    if root is None:
        raise FeedError("empty document")
    return root


def _local(tag: object) -> str:
    return etree.QName(tag).localname.lower() if isinstance(tag, str) else ""


def _child(node: etree._Element, *names: str) -> etree._Element | None:
    for child in node:
        if _local(child.tag) in names:
            return child
    return None


def _text(node: etree._Element | None) -> str | None:
    if node is None:
        return None
    text = "".join(node.itertext()).strip()
    return " ".join(text.split()) or None


def parse_feed(data: bytes) -> list[FeedEntry]:
    """Entries of an RSS 2.0, RSS 1.0 (RDF) or Atom feed. Raises FeedError for anything else."""
    root = _parse_xml(data)
    kind = _local(root.tag)
    entries: list[FeedEntry] = []
    if kind in ("rss", "rdf"):
        items = [el for el in root.iter() if _local(el.tag) == "item"]
        for item in items:
            link = _text(_child(item, "link"))
            guid = _child(item, "guid")
            if not link and guid is not None and guid.get("isPermaLink", "true").lower() != "false":
                link = _text(guid)
            if not link:
                about = item.get("{http://www.w3.org/1999/02/22-rdf-syntax-ns#}about")
                link = about.strip() if about else None
            if not link:
                continue
            date = _text(_child(item, "pubdate", "date", "published", "issued"))
            entries.append(FeedEntry(url=link, title=_text(_child(item, "title")),
                                     published_at=parse_date_value(date),
                                     summary=_text(_child(item, "description"))))
    elif kind == "feed":
        for entry in (el for el in root if _local(el.tag) == "entry"):
            href = None
            for link in (el for el in entry if _local(el.tag) == "link"):
                if link.get("rel", "alternate") == "alternate" and link.get("href"):
                    href = link.get("href")
                    break
            if not href:
                continue
            date = _text(_child(entry, "published")) or _text(_child(entry, "updated"))
            entries.append(FeedEntry(url=href.strip(), title=_text(_child(entry, "title")),
                                     published_at=parse_date_value(date),
                                     summary=_text(_child(entry, "summary", "content"))))
    else:
        raise FeedError(f"not a feed: root element <{kind}>")
    return entries


def parse_sitemap(data: bytes) -> SitemapDoc:
    """URLs of a sitemap (with Google News title/date when given), or sub-sitemaps of an index."""
    root = _parse_xml(data)
    kind = _local(root.tag)
    if kind == "sitemapindex":
        locs = [_text(_child(sm, "loc")) for sm in root if _local(sm.tag) == "sitemap"]
        return SitemapDoc(entries=[], sitemaps=[loc for loc in locs if loc])
    if kind != "urlset":
        raise FeedError(f"not a sitemap: root element <{kind}>")
    entries = []
    for url in (el for el in root if _local(el.tag) == "url"):
        loc = _text(_child(url, "loc"))
        if not loc:
            continue
        news = _child(url, "news")
        title = date = None
        if news is not None:
            title = _text(_child(news, "title"))
            date = _text(_child(news, "publication_date"))
        date = date or _text(_child(url, "lastmod"))
        entries.append(FeedEntry(url=loc, title=title, published_at=parse_date_value(date)))
    return SitemapDoc(entries=entries, sitemaps=[])
