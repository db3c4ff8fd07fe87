"""URL canonicalisation: one spelling per article, so that ids and de-duplication are stable."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

# Query parameters that only track the reader, never select content.
TRACKING_PARAMS = frozenset({
    "fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "twclid", "ttclid", "igshid",
    "mc_cid", "mc_eid", "_ga", "_gl", "_hsenc", "_hsmi", "mkt_tok", "ref", "ref_src", "referrer",
    "cmpid", "spm", "vn_source", "vn_medium", "vn_campaign", "vn_content", "vn_term", "zarsrc",
    "zalo_source", "amp", "amp_js_v", "usqp", "outputtype", "s_cid", "icid",
})
TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "at_", "vn_")
DEFAULT_PORTS = {"http": 80, "https": 443}
# Host prefixes of mobile/AMP editions that serve the same article as the main site.
MOBILE_PREFIXES = ("m.", "mobile.", "amp.", "wap.")
_AMP_PATH = re.compile(r"(?:/amp/?|\.amp|/amp\.html?)$", re.IGNORECASE)
_AMP_PREFIX = re.compile(r"^/amp(?=/.)", re.IGNORECASE)  # https://site.vn/amp/bai-viet-123.html
_MULTI_SLASH = re.compile(r"/{2,}")


class URLError(ValueError):
    """A URL that cannot be canonicalised (no scheme or host, not http(s))."""


def canonicalize_url(url: str) -> str:
    """The canonical spelling of an http(s) URL.

    Lower-case scheme and host, no ``www.``-less change (``www`` is kept: it may be a different
    site), no fragment, no tracking parameters (``utm_*``, ``fbclid``, ``gclid`` …), remaining
    parameters sorted, default port dropped, mobile/AMP editions folded into the main one
    (``m.vnexpress.net`` → ``vnexpress.net``, ``…/amp`` and ``?amp`` dropped), percent-encoding
    normalised.
    """
    url = url.strip()
    if not url:
        raise URLError("empty URL")
    if url.startswith("//"):
        url = "https:" + url
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise URLError(f"not an http(s) URL: {url!r}")
    host = (parts.hostname or "").lower().rstrip(".")
    if not host:
        raise URLError(f"URL without a host: {url!r}")
    for prefix in MOBILE_PREFIXES:
        if host.startswith(prefix) and host.count(".") >= 2:
            host = host[len(prefix):]
            break
    try:
        port = parts.port
    except ValueError as exc:
        raise URLError(f"bad port in {url!r}") from exc
    netloc = host if ":" not in host else f"[{host}]"
    if port is not None and port != DEFAULT_PORTS[scheme]:
        netloc = f"{netloc}:{port}"

    path = _MULTI_SLASH.sub("/", parts.path or "/")
    path = quote(unquote(path), safe="/:@!$&'()*+,;=-._~%")
    amp = _AMP_PATH.search(path)
    if amp:
        path = path[: amp.start()] or "/"
    path = _AMP_PREFIX.sub("", path)
    if not path.startswith("/"):
        path = "/" + path

    params = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        low = key.lower()
        if low in TRACKING_PARAMS or low.startswith(TRACKING_PREFIXES):
            continue
        params.append((key, value))
    params.sort()
    query = urlencode(params, quote_via=quote, safe="-._~")
    return urlunsplit((scheme, netloc, path, query, ""))


def source_of(url: str) -> str:
    """The source name of a URL: its host without ``www.`` (``https://www.plo.vn/x`` → ``plo.vn``)."""
    host = (urlsplit(url).hostname or "").lower()
    return host[4:] if host.startswith("www.") else host


_ARTICLE_ID = re.compile(r"\d{5,}")
_NOT_ARTICLE_PATH = re.compile(
    r"/(?:tag|tags|tim-kiem|search|video|photo|podcast|author|tac-gia|rss|login|dang-nhap|lien-he|"
    r"gioi-thieu|event|su-kien|chu-de|topic)(?:/|\.|-|$)", re.IGNORECASE)
_SLUG = re.compile(r"/[a-z0-9]+(?:-[a-z0-9]+){3,}(?:[-_./]|$)", re.IGNORECASE)


def looks_like_article_url(url: str, listing_url: str | None = None) -> bool:
    """Whether a link from a listing page looks like an article of the same site: same host, a
    long slug (four or more words) or a numeric article id, not a tag/search/video/author page."""
    try:
        canonical = canonicalize_url(url)
    except URLError:
        return False
    parts = urlsplit(canonical)
    if listing_url:
        try:
            listing_host = urlsplit(canonicalize_url(listing_url)).hostname
        except URLError:
            return False
        if (parts.hostname or "").removeprefix("www.") != (listing_host or "").removeprefix("www."):
            return False
    path = parts.path
    if path in ("", "/") or _NOT_ARTICLE_PATH.search(path):
        return False
    return bool(_SLUG.search(path) and (_ARTICLE_ID.search(path) or path.endswith((".html", ".htm", ".ldo"))))
