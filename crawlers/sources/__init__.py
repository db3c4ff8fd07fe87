"""The source registry: which outlets, forums and channels are crawled, and how.

The registry is configuration (``registry.yaml`` beside this module, or a file named by
``LANGNGHE_SOURCES_FILE``), validated when loaded. Per-site extraction rules live there too and are
what `crawlers.extraction` uses for hosts where generic extraction fails.

    >>> reg = load_registry()
    >>> reg.get("vnexpress.net").feeds[0]
    'https://vnexpress.net/rss/tin-moi-nhat.rss'
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

REGISTRY_FILE = Path(__file__).with_name("registry.yaml")
KINDS = ("news", "gov", "forum", "tv_radio")
FORUM_ENGINES = ("xenforo", "vbulletin")
RULE_FIELDS = ("body", "authors", "date", "lead")


class RegistryError(ValueError):
    """A registry file that does not follow the format (named entry and field in the message)."""


@dataclass(frozen=True)
class SiteRule:
    """XPath rules for a site where generic extraction fails."""

    body: str | None = None  # XPath of body paragraphs
    authors: str | None = None  # XPath of author text nodes/elements
    date: str | None = None  # XPath of an element holding a Vietnamese date line
    lead: str | None = None


@dataclass(frozen=True)
class Source:
    """One crawled source: where its articles are listed and how they are extracted."""

    name: str
    title: str
    kind: str = "news"
    language: str = "vi"
    domains: tuple[str, ...] = ()
    feeds: tuple[str, ...] = ()
    sitemaps: tuple[str, ...] = ()
    sections: tuple[str, ...] = ()
    verified: bool = False
    recrawl_hours: float = 48.0
    max_concurrency: int = 2
    forum_engine: str | None = None
    rule: SiteRule | None = None

    @property
    def is_forum(self) -> bool:
        return self.kind == "forum"


@dataclass
class Registry:
    """All sources, by name and by domain."""

    sources: list[Source] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._by_name = {s.name: s for s in self.sources}
        self._by_domain: dict[str, Source] = {}
        for source in self.sources:
            for domain in (source.name, *source.domains):
                self._by_domain.setdefault(domain.lower().removeprefix("www."), source)

    def __len__(self) -> int:
        return len(self.sources)

    def names(self) -> list[str]:
        return [s.name for s in self.sources]

    def get(self, name: str) -> Source:
        """The source called `name`; KeyError naming the known ones otherwise."""
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"unknown source {name!r}; known: {', '.join(sorted(self._by_name))}") from None

    def for_host(self, host: str) -> Source | None:
        """The source a host belongs to (``m.``/``www.`` and sub-domains fall back to the parent)."""
        host = host.lower().rstrip(".").removeprefix("www.")
        while host:
            if host in self._by_domain:
                return self._by_domain[host]
            host = host.partition(".")[2] if host.count(".") >= 2 else ""
        return None

    def for_url(self, url: str) -> Source | None:
        return self.for_host(urlsplit(url).hostname or "")

    def rules(self) -> dict[str, SiteRule]:
        """Extraction rules by domain."""
        out: dict[str, SiteRule] = {}
        for source in self.sources:
            if source.rule is not None:
                for domain in (source.name, *source.domains):
                    out[domain.lower().removeprefix("www.")] = source.rule
        return out


def _urls(entry: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = entry.get(key) or []
    if not isinstance(value, list):
        raise RegistryError(f"{where}: '{key}' must be a list of URLs")
    for url in value:
        parts = urlsplit(str(url))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise RegistryError(f"{where}: '{key}' has a value that is not an http(s) URL: {url!r}")
    return tuple(str(u) for u in value)


def parse_registry(data: dict[str, Any]) -> Registry:
    """Validate a registry document (the YAML's mapping) into a `Registry`."""
    if not isinstance(data, dict) or not isinstance(data.get("sources"), list):
        raise RegistryError("a registry is a mapping with a 'sources' list")
    defaults = dict(data.get("defaults") or {})
    sources: list[Source] = []
    seen: set[str] = set()
    for index, raw in enumerate(data["sources"]):
        if not isinstance(raw, dict) or not raw.get("name"):
            raise RegistryError(f"sources[{index}]: an entry needs a 'name'")
        entry = {**defaults, **raw}
        name = str(entry["name"])
        where = f"source {name!r}"
        if name in seen:
            raise RegistryError(f"{where}: listed twice")
        seen.add(name)
        kind = entry.get("kind", "news")
        if kind not in KINDS:
            raise RegistryError(f"{where}: kind must be one of {KINDS}, got {kind!r}")
        engine = entry.get("forum_engine")
        if engine is not None and engine not in FORUM_ENGINES:
            raise RegistryError(f"{where}: forum_engine must be one of {FORUM_ENGINES}")
        rule = None
        if entry.get("rules"):
            rules = entry["rules"]
            unknown = set(rules) - set(RULE_FIELDS)
            if unknown:
                raise RegistryError(f"{where}: unknown rule fields {sorted(unknown)}")
            from lxml import etree

            for key, xpath in rules.items():
                try:
                    etree.XPath(xpath)
                except etree.XPathSyntaxError as exc:
                    raise RegistryError(f"{where}: rule {key!r} is not valid XPath: {exc}") from exc
            rule = SiteRule(**{k: rules.get(k) for k in RULE_FIELDS})
        source = Source(
            name=name, title=str(entry.get("title") or name), kind=kind,
            language=str(entry.get("language", "vi")),
            domains=tuple(str(d).lower() for d in entry.get("domains") or [name]),
            feeds=_urls(entry, "feeds", where), sitemaps=_urls(entry, "sitemaps", where),
            sections=_urls(entry, "sections", where), verified=bool(entry.get("verified", False)),
            recrawl_hours=float(entry.get("recrawl_hours", 48)),
            max_concurrency=max(1, int(entry.get("max_concurrency", 2))), forum_engine=engine, rule=rule,
        )
        if not (source.feeds or source.sitemaps or source.sections):
            raise RegistryError(f"{where}: needs at least one feed, sitemap or section URL")
        sources.append(source)
    return Registry(sources)


def load_registry(path: str | Path | None = None) -> Registry:
    """The registry at `path`, ``$LANGNGHE_SOURCES_FILE`` or the bundled ``registry.yaml``."""
    chosen = Path(path or os.environ.get("LANGNGHE_SOURCES_FILE") or REGISTRY_FILE)
    return _load_cached(str(chosen.resolve()))


@lru_cache(maxsize=8)
def _load_cached(path: str) -> Registry:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise RegistryError(f"cannot read the source registry {path}: {exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RegistryError(f"{path} is not valid YAML: {exc}") from exc
    return parse_registry(data)


def main(argv: list[str] | None = None) -> int:
    """``python -m crawlers.sources``: list the sources (name, kind, feeds, verified)."""
    import argparse
    import json

    parser = argparse.ArgumentParser(prog="python -m crawlers.sources", description="list the source registry")
    parser.add_argument("--file", type=Path, default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    registry = load_registry(args.file)
    if args.json:
        print(json.dumps([{"name": s.name, "title": s.title, "kind": s.kind, "feeds": s.feeds,
                           "sitemaps": s.sitemaps, "sections": s.sections, "verified": s.verified}
                          for s in registry.sources], ensure_ascii=False, indent=1))
        return 0
    for s in registry.sources:
        mark = "ok" if s.verified else "unverified"
        print(f"{s.name:24} {s.kind:9} feeds={len(s.feeds):2} sitemaps={len(s.sitemaps)} "
              f"sections={len(s.sections)} {mark}  {s.title}")
    return 0
