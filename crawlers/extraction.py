"""Article extraction from a news page: decoding, metadata, body text, page-kind checks.

Generic extraction is trafilatura's (``bare_extraction`` with ``favor_precision``); around it sit
the rules that make Vietnamese news work: robust decoding of mislabelled pages, the metadata the
press publishes (Open Graph, ``itemprop``, JSON-LD ``NewsArticle``, Vietnamese date lines such as
"Thứ tư, 22/10/2025, 14:30 (GMT+7)"), a few site rules, and explicit refusals for pages that are
not articles (homepages, soft-404s, anti-bot challenge pages).
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import lxml.html
from lxml import etree

from crawlers.sources import SiteRule

logger = logging.getLogger(__name__)

CITY_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
MIN_BODY_CHARS = 120  # below this a page has no article body worth storing


# --------------------------------------------------------------------------------------------
# errors and result


class ExtractionError(Exception):
    """A page from which no article can be extracted."""

    reason = "extraction_error"


class NoArticleBody(ExtractionError):
    """The page is not an article: homepage, section index, soft-404, empty page."""

    reason = "no_article_body"


class SoftNotFound(NoArticleBody):
    """A 'page not found' page served with status 200."""

    reason = "soft_404"


class BlockedPage(ExtractionError):
    """An anti-bot challenge or access-denied page ("Just a moment...", captcha)."""

    reason = "blocked"


class LoginWall(BlockedPage):
    """A page that asks the reader to log in (or subscribe) instead of showing the article."""

    reason = "login_wall"


class UndecodablePage(ExtractionError):
    """Bytes that no charset turns into readable text."""

    reason = "undecodable"


@dataclass
class Article:
    """What a news page says about itself."""

    url: str
    title: str
    text: str
    published_at: datetime | None = None  # aware
    authors: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    section: str | None = None
    lead: str | None = None
    language: str = "vi"

    @property
    def paragraphs(self) -> list[str]:
        return [p for p in self.text.split("\n") if p.strip()]


# --------------------------------------------------------------------------------------------
# decoding

_VI_LETTERS = set(
    "ăâđêôơưĂÂĐÊÔƠƯ"
    "àáảãạằắẳẵặầấẩẫậèéẻẽẹềếểễệìíỉĩịòóỏõọồốổỗộờớởỡợùúủũụừứửữựỳýỷỹỵ"
    "ÀÁẢÃẠẰẮẲẴẶẦẤẨẪẬÈÉẺẼẸỀẾỂỄỆÌÍỈĨỊÒÓỎÕỌỒỐỔỖỘỜỚỞỠỢÙÚỦŨỤỪỨỬỮỰỲÝỶỸỴ"
)
# Characters that appear when UTF-8 bytes are read as Latin-1/cp1252 ("Thá»©", "Ä‘").
_MOJIBAKE = re.compile("[ÃÄÅÆáâ][\u0080-\u00bf\u2018-\u203a\u0152-\u0178\u02c6\u02dc\u20ac\u2122]|»")
_WORD_RE = re.compile(r"[^\W\d_]+")
_TONE_MARKS = frozenset("\u0300\u0301\u0303\u0309\u0323")
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]+encoding\s*=\s*["']([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
_BOMS = ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))


def charset_from_content_type(content_type: str | bytes | None) -> str | None:
    """The ``charset=`` of a Content-Type header value, if any."""
    if not content_type:
        return None
    if isinstance(content_type, bytes):
        content_type = content_type.decode("latin-1")
    match = re.search(r"charset\s*=\s*[\"']?([A-Za-z0-9_.:-]+)", content_type, re.IGNORECASE)
    return match.group(1).lower() if match else None


def _codec(name: str | None) -> str | None:
    import codecs

    if not name:
        return None
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def vietnamese_score(text: str) -> float:
    """How much a text looks like well-decoded Vietnamese: share of Vietnamese letters among
    letters, minus a penalty for mojibake sequences and replacement characters."""
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return 0.0
    vi = sum(1 for c in letters if c in _VI_LETTERS)
    bad = len(_MOJIBAKE.findall(text)) * 2 + text.count("\ufffd") * 2
    # a Vietnamese syllable carries one tone mark and no capital inside it; a wrong single-byte
    # charset gives "NgýõÌi", "phaÒn"
    for word in _WORD_RE.findall(text):
        if len(word) < 2 or word.isascii():
            continue
        tones = sum(1 for c in word if _TONE_MARKS & set(unicodedata.normalize("NFD", c)))
        inner_caps = any(a.islower() and b.isupper() for a, b in zip(word, word[1:], strict=False))
        if tones > 1 or inner_caps:
            bad += 3
    return (vi - bad) / len(letters)


def fix_mojibake(text: str) -> str:
    """Undo UTF-8 read as cp1252/Latin-1 when that makes the text more Vietnamese."""
    if not _MOJIBAKE.search(text):
        return text
    best, best_score = text, vietnamese_score(text)
    for codec in ("cp1252", "latin-1"):
        try:
            candidate = text.encode(codec, errors="strict").decode("utf-8", errors="strict")
        except (UnicodeEncodeError, UnicodeDecodeError):
            try:
                candidate = text.encode(codec, errors="ignore").decode("utf-8", errors="replace")
            except UnicodeError:
                continue
        score = vietnamese_score(candidate)
        if score > best_score + 0.01:
            best, best_score = candidate, score
    return best


def decode_html(data: bytes, http_charset: str | None = None) -> str:
    """Decode page bytes into text, robust to wrong or missing charset declarations.

    Order: a BOM; valid UTF-8 (a declared single-byte charset on bytes that are valid multi-byte
    UTF-8 is almost always a mislabel); the HTTP charset, then the ``<meta>``/XML one, each kept
    only when it reads as Vietnamese at least as well as the alternatives; then Vietnamese
    heuristics over windows-1258, cp1252 and detection. The result is NFC-normalised (windows-1258
    writes tone marks as combining characters).
    """
    for bom, codec in _BOMS:
        if data.startswith(bom):
            return unicodedata.normalize("NFC", data[len(bom):].decode(codec, errors="replace"))
    has_high = any(b >= 0x80 for b in data)
    if not has_high:
        return data.decode("ascii")
    try:
        text = data.decode("utf-8", errors="strict")
        return unicodedata.normalize("NFC", fix_mojibake(text))
    except UnicodeDecodeError:
        pass
    head = data[:4096]
    declared = [_codec(http_charset)]
    for pattern in (_XML_ENCODING, _META_CHARSET):
        match = pattern.search(head)
        if match:
            declared.append(_codec(match.group(1).decode("ascii", "ignore")))
    candidates: list[str] = []
    for maybe in [*declared, "windows-1258", "cp1252", "utf-8"]:
        if maybe and maybe not in candidates:
            candidates.append(maybe)
    best_text, best_score = "", float("-inf")
    for rank, codec in enumerate(candidates):
        try:
            text = data.decode(codec, errors="strict")
            penalty = 0.0
        except (UnicodeDecodeError, LookupError):
            try:
                text = data.decode(codec, errors="replace")
            except LookupError:
                continue
            penalty = 0.05
        text = unicodedata.normalize("NFC", text)
        # declared charsets win ties; later candidates must read clearly better
        score = vietnamese_score(text) - penalty - 0.001 * rank
        if score > best_score:
            best_text, best_score = text, score
    if best_score < 0:
        try:
            from charset_normalizer import from_bytes

            guess = from_bytes(data).best()
            if guess is not None:
                return unicodedata.normalize("NFC", str(guess))
        except ImportError:  # pragma: no cover - trafilatura depends on it
            pass
    if not best_text:
        raise UndecodablePage("no charset decodes this page")
    return best_text


# --------------------------------------------------------------------------------------------
# dates

_WEEKDAYS = r"(?:thứ\s*(?:hai|ba|tư|năm|sáu|bảy|2|3|4|5|6|7)|chủ\s*nhật|cn)"
_DATE = r"(?P<d>\d{1,2})\s*[/.\-]\s*(?P<m>\d{1,2})\s*[/.\-]\s*(?P<y>\d{4})"
_TIME = (r"(?P<H>\d{1,2})\s*(?:[:h]|giờ)\s*(?P<M>\d{2})(?:\s*:\s*(?P<S>\d{2}))?"
         r"\s*(?P<ampm>(?:[AaPp]\.?[Mm]\.?|SA|CH)(?!\w))?")
_TZ = r"(?:\(?\s*(?:GMT|UTC)\s*(?P<tz>[+-]\s*\d{1,2})(?::?(?P<tzm>\d{2}))?\s*\)?)?"
_VI_DATE_THEN_TIME = re.compile(
    rf"(?:{_WEEKDAYS}\s*,?\s*)?(?:ngày\s*)?{_DATE}(?:\s*[,|-]?\s*(?:lúc\s*)?{_TIME})?\s*,?\s*{_TZ}",
    re.IGNORECASE,
)
_VI_TIME_THEN_DATE = re.compile(
    rf"{_TIME}\s*{_TZ}\s*[,|-]?\s*(?:{_WEEKDAYS}\s*,?\s*)?(?:ngày\s*)?{_DATE}", re.IGNORECASE
)


def _offset_tz(hours: str | None, minutes: str | None) -> tzinfo:
    if hours is None:
        return CITY_TZ
    h = int(hours.replace(" ", ""))
    m = int(minutes or 0)
    if h == 7 and m == 0:
        return CITY_TZ
    return timezone(timedelta(hours=h, minutes=m if h >= 0 else -m))


def _match_datetime(g: dict[str, str | None]) -> datetime | None:
    try:
        day, month, year = int(g["d"] or 0), int(g["m"] or 0), int(g["y"] or 0)
        hour = int(g.get("H") or 0)
        minute = int(g.get("M") or 0)
        second = int(g.get("S") or 0)
        ampm = (g.get("ampm") or "").lower().replace(".", "")
        if ampm in ("pm", "ch") and hour < 12:
            hour += 12
        elif ampm in ("am", "sa") and hour == 12:
            hour = 0
        if not 1990 <= year <= 2100:
            return None
        return datetime(year, month, day, hour, minute, second, tzinfo=_offset_tz(g.get("tz"), g.get("tzm")))
    except (ValueError, TypeError):
        return None


def parse_vietnamese_date(text: str) -> datetime | None:
    """First Vietnamese-style date in `text`, as an aware datetime (city time unless a GMT offset
    is given): "Thứ tư, 22/10/2025, 14:30 (GMT+7)", "26-12-2012 14:05", "10:18 AM, 20/12/2012"."""
    found: dict[int, tuple[bool, datetime]] = {}
    for pattern in (_VI_DATE_THEN_TIME, _VI_TIME_THEN_DATE):
        for match in pattern.finditer(text):
            dt = _match_datetime(match.groupdict())
            if dt is None:
                continue
            has_time = match.group("H") is not None
            position = match.start("d")
            if position not in found or (has_time and not found[position][0]):
                found[position] = (has_time, dt)
    if not found:
        return None
    return found[min(found)][1]


def parse_date_value(value: str | None) -> datetime | None:
    """An ISO 8601 / RFC 822 / Vietnamese date string → aware datetime (naive → city time)."""
    if not value:
        return None
    value = value.strip()
    if not value:
        return None
    dt: datetime | None = None
    iso = value.replace("Z", "+00:00") if value.endswith("Z") else value
    try:
        dt = datetime.fromisoformat(iso)
    except ValueError:
        dt = None
    if dt is None:
        from email.utils import parsedate_to_datetime

        try:
            dt = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            dt = None
    if dt is None:
        dt = parse_vietnamese_date(value)
    if dt is None:
        try:
            from dateutil import parser as du_parser

            dt = du_parser.parse(value, dayfirst=True)
        except (ValueError, OverflowError, ImportError):
            return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=CITY_TZ)
    if not 1990 <= dt.year <= 2100:
        return None
    return dt


# --------------------------------------------------------------------------------------------
# page metadata


def _clean(text: str | None) -> str:
    if not text:
        return ""
    text = unicodedata.normalize("NFC", text)
    return re.sub(r"\s+", " ", text).strip()


_META_CACHE: dict[int, tuple[Any, dict[tuple[str, str], list[str]]]] = {}


def _meta_index(doc: Any) -> dict[tuple[str, str], list[str]]:
    """(attribute, value) → contents of the page's <meta> tags, read once per document."""
    cached = _META_CACHE.get(id(doc))
    if cached is not None and cached[0] is doc:
        return cached[1]
    index: dict[tuple[str, str], list[str]] = {}
    for meta in doc.iter("meta"):
        content = meta.get("content")
        if content is None:
            continue
        for attr in ("property", "name", "itemprop"):
            key = meta.get(attr)
            if key:
                index.setdefault((attr, key), []).append(content)
    _META_CACHE.clear()  # one document at a time
    _META_CACHE[id(doc)] = (doc, index)
    return index


def _meta(doc: Any, *names: str) -> str | None:
    """First non-empty <meta> content among property/name/itemprop values `names`."""
    index = _meta_index(doc)
    for name in names:
        for attr in ("property", "name", "itemprop"):
            for value in index.get((attr, name), ()):
                if _clean(value):
                    return _clean(value)
    return None


def _iter_jsonld(doc: Any) -> Iterator[dict[str, Any]]:
    for script in doc.xpath("//script[@type='application/ld+json']"):
        raw = script.text_content() or ""
        try:
            data = json.loads(raw, strict=False)
        except ValueError:
            continue
        stack: list[Any] = [data]
        while stack:
            node = stack.pop()
            if isinstance(node, list):
                stack.extend(node)
            elif isinstance(node, dict):
                if "@graph" in node:
                    stack.append(node["@graph"])
                yield node


_ARTICLE_TYPES = {"newsarticle", "article", "reportagenewsarticle", "blogposting", "analysisnewsarticle",
                  "opinionnewsarticle", "liveblogposting", "webpage"}


def _jsonld_article(doc: Any) -> dict[str, Any]:
    best: dict[str, Any] = {}
    for node in _iter_jsonld(doc):
        types = node.get("@type")
        type_list = [t.lower() for t in (types if isinstance(types, list) else [types]) if isinstance(t, str)]
        if any(t in _ARTICLE_TYPES and t != "webpage" for t in type_list):
            return node
        if "webpage" in type_list and not best:
            best = node
    return best


def _names(value: Any) -> list[str]:
    """Person names from a JSON-LD author value (organisations left out)."""
    out: list[str] = []
    for item in value if isinstance(value, list) else [value]:
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, dict):
            if str(item.get("@type", "")).lower() == "organization":
                continue
            if isinstance(item.get("name"), str):
                out.append(item["name"])
    return out


_CHALLENGE_TITLES = re.compile(
    r"just a moment|attention required|checking your browser|please wait|ddos protection|access denied"
    r"|verify you are human|are you a robot|security check|captcha|request unsuccessful",
    re.IGNORECASE,
)
_CHALLENGE_MARKERS = (
    "cf-browser-verification", "/cdn-cgi/challenge-platform", "cf_chl_opt", "challenge-form",
    "cf-challenge", "g-recaptcha", "h-captcha", "_incapsula_resource", "distil_r_captcha",
    "enable javascript and cookies to continue", "px-captcha", "ddos-guard",
)
_LOGIN_TITLES = re.compile(r"đăng nhập|log ?in|sign ?in|đăng ký tài khoản|subscribe to continue|members only",
                           re.IGNORECASE)
_NOT_FOUND = re.compile(
    r"\b404\b|not found|không tìm thấy|không tồn tại|trang bạn tìm|lỗi truy cập|page unavailable",
    re.IGNORECASE,
)
_SITE_SEPARATORS_KEEP = re.compile(r"(\s+[-|–—»]\s+)")


def check_blocked(doc: Any, raw: str) -> None:
    """Raise BlockedPage for anti-bot challenge and access-denied pages."""
    title = _clean(doc.findtext(".//title"))
    low = raw[:200_000].lower()
    markers = [m for m in _CHALLENGE_MARKERS if m in low]
    body_text = _clean(doc.xpath("string(//body)"))[:5000] if doc.find(".//body") is not None else ""
    if title and _CHALLENGE_TITLES.search(title) and (markers or len(body_text) < 2000):
        raise BlockedPage(f"challenge page: {title!r}")
    if len(markers) >= 1 and len(body_text) < 1500:
        raise BlockedPage(f"challenge page markers: {', '.join(markers)}")
    if doc.xpath("//input[@type='password']"):
        article_text = _clean(" ".join(doc.xpath("//article//p//text() | //*[@itemprop='articleBody']//text()")))
        if (title and _LOGIN_TITLES.search(title)) or (len(body_text) < 1500 and len(article_text) < 300):
            raise LoginWall(f"login wall: {title!r}")


def _strip_site_suffix(title: str, site_names: Iterable[str], *, leading: bool = True) -> str:
    """'Dòng nước độc trên cánh đồng Hà Nội - VnExpress' → 'Dòng nước độc trên cánh đồng Hà Nội'."""
    from nlp.text import fold

    def key(text: str) -> str:
        return re.sub(r"[\W_]+", "", fold(text))

    names = {key(n) for n in site_names if n and len(key(n)) >= 3}
    pieces = _SITE_SEPARATORS_KEEP.split(title)  # text, sep, text, sep, text …

    def is_site(segment: str) -> bool:
        k = key(segment)
        return bool(k) and len(segment) <= 40 and any(k in n or (n in k and len(k) <= len(n) + 8)
                                                      for n in names)

    while len(pieces) >= 3 and is_site(pieces[-1]):
        pieces = pieces[:-2]
    while leading and len(pieces) >= 3 and is_site(pieces[0]):
        pieces = pieces[2:]
    return "".join(pieces).strip()


def _site_names(doc: Any, url: str) -> list[str]:
    host = (urlsplit(url).hostname or "").lower()
    labels = [p for p in host.split(".") if p not in ("www", "m", "com", "vn", "net", "org", "gov", "edu")]
    names = [host, *labels]
    for name in (_meta(doc, "og:site_name", "application-name", "apple-mobile-web-app-title"),):
        if name:
            names.append(name)
    return names


def _heading_title(doc: Any) -> str | None:
    """The page's own headline: the first <h1> that is not a link to another page."""
    for h1 in doc.xpath("//h1"):
        if h1.xpath(".//a[@href]") and not h1.xpath("ancestor::article|ancestor::header"):
            continue
        text = _clean(h1.text_content())
        if 5 <= len(text) <= 400:
            return text
    return None


def _normalise_person(name: str) -> str:
    name = _clean(name).strip(" ,;-–()")
    if name.isupper() and len(name) > 3:
        name = name.title()
    return name


_ORG_WORDS = re.compile(r"\b(báo|tạp chí|vnexpress|tin nhanh|online|news|newspaper|tòa soạn|ban biên tập|"
                        r"theo|ttxvn|reuters|afp|ap|bbc|cnn|xinhua|vietnamnet|channelvn|baodantri)\b",
                        re.IGNORECASE)


def _split_authors(values: Iterable[str], site_names: Iterable[str]) -> list[str]:
    from nlp.text import fold

    sites = {fold(s).replace(" ", "").replace(".", "") for s in site_names if s and len(s) >= 3}
    out: list[str] = []
    for value in values:
        for part in re.split(r"\s*(?:[;,|/&]| và | - )\s*", value or ""):
            part = _normalise_person(part)
            if not part or len(part) < 2 or len(part) > 60 or part.startswith("http"):
                continue
            key = fold(part).replace(" ", "").replace(".", "")
            if any(s in key or key in s for s in sites) or _ORG_WORDS.search(part):
                continue
            if sum(c.isdigit() for c in part) > 0 or "@" in part:
                continue
            if part not in out:
                out.append(part)
    return out


# --------------------------------------------------------------------------------------------
# site rules: selectors for hosts where generic extraction misses something

def site_rules() -> dict[str, SiteRule]:
    """Extraction rules by domain, from the source registry (`crawlers.sources`)."""
    from crawlers.sources import load_registry

    return load_registry().rules()


def _rule_for(url: str, doc: Any = None) -> SiteRule | None:
    """The site rule for the page's host, or for the site the page says it belongs to (og:url,
    og:site_name: a mirror or a saved copy of a known site)."""
    hosts = [(urlsplit(url).hostname or "").lower()]
    if doc is not None:
        og_url = _meta(doc, "og:url")
        if og_url:
            hosts.append((urlsplit(og_url).hostname or "").lower())
        site = _meta(doc, "og:site_name")
        if site:
            hosts.append(site.lower())
    rules = site_rules()
    for host in hosts:
        host = host.removeprefix("www.")
        while host:
            if host in rules:
                return rules[host]
            host = host.partition(".")[2] if "." in host else ""
    return None


def _xpath_texts(doc: Any, xpath: str) -> list[str]:
    out = []
    for node in doc.xpath(xpath):
        text = _clean(node if isinstance(node, str) else node.text_content())
        if text:
            out.append(text)
    return out


_NOISE_CLASSES = re.compile(r"comment|binh-luan|binhluan|related|lien-quan|lienquan|tinlienquan|relate|caption|"
                            r"figcaption|box-tin|share|social|tag|author|byline|ads?\b|banner", re.IGNORECASE)


def _clean_container(doc: Any) -> bool:
    """Exactly one article container, holding no figures, comment, related-news or share boxes."""
    containers = doc.xpath("//*[@itemprop='articleBody'] | //article")
    if len(containers) != 1:
        return False
    node = containers[0]
    if node.xpath(".//figure | .//figcaption | .//table | .//ul | .//ol | .//aside | .//form | .//iframe"):
        return False
    for child in node.iter():
        if not isinstance(child.tag, str):
            continue
        ident = f"{child.get('class') or ''} {child.get('id') or ''}"
        if ident.strip() and _NOISE_CLASSES.search(ident):
            return False
    return True


def _structural_body(doc: Any) -> list[str]:
    """Paragraphs of the most article-like container (itemprop=articleBody, <article>, …)."""
    best: list[str] = []
    best_len = 0
    containers = doc.xpath("//*[@itemprop='articleBody'] | //article | //*[@role='main'] | //main")
    for node in containers:
        paras = []
        for p in node.xpath(".//p | .//h2 | .//h3 | .//blockquote"):
            if p.xpath("ancestor::aside|ancestor::nav|ancestor::footer|ancestor::form"):
                continue
            if p.tag in ("h2", "h3") and p.xpath(".//a"):
                continue
            text = _clean(p.text_content())
            links = _clean(" ".join(a.text_content() for a in p.xpath(".//a")))
            if text and len(links) < 0.6 * len(text):
                paras.append(text)
        total = sum(len(p) for p in paras)
        if total > best_len:
            best, best_len = paras, total
    return best


# --------------------------------------------------------------------------------------------
# body text via trafilatura

_TABLE_ROW = re.compile(r"^\s*\|.*\|\s*$")


def _tidy_body(text: str) -> list[str]:
    paras = []
    for line in text.split("\n"):
        if _TABLE_ROW.match(line):
            cells = [_clean(c) for c in line.strip().strip("|").split("|")]
            line = " ".join(c for c in cells if c)
        line = _clean(line)
        if line:
            paras.append(line)
    return paras


def _trafilatura(html: str, url: str) -> tuple[list[str], dict[str, Any]]:
    """Body paragraphs and metadata from trafilatura, trying precision first, recall last.

    trafilatura's ``deduplicate`` is off: it keeps a process-wide cache of text segments, so a
    long crawl would drop paragraphs it had seen on earlier pages (results depending on order)."""
    from trafilatura import bare_extraction

    best: list[str] = []
    meta: dict[str, Any] = {}
    attempts: tuple[dict[str, Any], ...] = (
        {"favor_precision": True, "include_tables": False},
        {"favor_precision": True, "include_tables": True},
        {"include_tables": False},
        {"favor_recall": True, "include_tables": True},
    )
    for options in attempts:
        try:
            result = bare_extraction(html, url=url or None, with_metadata=True, include_comments=False,
                                     include_images=False, deduplicate=False, **options)
        except Exception as exc:  # trafilatura may fail on pathological markup
            logger.debug("trafilatura failed on %s with %s: %s", url, options, exc)
            continue
        if result is None:
            continue
        data = result.as_dict() if hasattr(result, "as_dict") else dict(result)
        if not meta:
            meta = data
        paras = list(dict.fromkeys(_tidy_body(data.get("text") or "")))  # repeated paragraphs once
        if sum(len(p) for p in paras) > sum(len(p) for p in best):
            best = paras
        if sum(len(p) for p in best) >= 400:
            break
    return best, meta


# --------------------------------------------------------------------------------------------
# language

_EN_WORDS = {"the", "and", "of", "to", "in", "is", "that", "for", "with", "was", "on", "are", "by"}


def detect_language(text: str, declared: str | None = None) -> str:
    """'vi' for Vietnamese text; a declared language (html lang, og:locale) when the text agrees
    or has no Vietnamese letters; 'en' for plainly English text; otherwise 'vi'."""
    primary = (declared or "").replace("_", "-").split("-")[0].lower() or None
    letters = [c for c in text[:5000] if c.isalpha()]
    vi_share = sum(1 for c in letters if c in _VI_LETTERS) / len(letters) if letters else 0.0
    if vi_share >= 0.03:
        return "vi"
    if primary and primary != "vi":
        return primary
    tokens = re.findall(r"[a-z]+", text[:5000].lower())
    if tokens and sum(1 for t in tokens if t in _EN_WORDS) / len(tokens) >= 0.05:
        return "en"
    return "vi"


# --------------------------------------------------------------------------------------------
# the extractor


def _parse(html: str) -> Any:
    parser = lxml.html.HTMLParser(remove_comments=True, encoding="utf-8")
    try:
        return lxml.html.document_fromstring(html.encode("utf-8"), parser=parser)
    except (etree.ParserError, ValueError) as exc:
        raise NoArticleBody(f"unparseable page: {exc}") from exc


_RELATED_LINK = re.compile(r"^\s*(?:>>|»|xem thêm\s*:|đọc thêm\s*:|tin liên quan\s*:?)\s*", re.IGNORECASE)
_CREDIT = re.compile(r"^\s*(?:tin|bài|ảnh|tin\s*,\s*ảnh|tin\s+và\s+ảnh|bài\s+và\s+ảnh|bài\s*,\s*ảnh|nhóm pv)\s*:\s*",
                     re.IGNORECASE)
_GENERIC_TAGS = {"news", "tintuc", "tinmoi", "home", "trangchu", "baomoi", "tinnhanh", "docbao"}
_BYLINE = re.compile(r"^(?:[A-ZĐÂĂÊÔƠƯ][\wÀ-ỹ]*\.?)(?:\s*(?:-|–|,|và)?\s*[A-ZĐÂĂÊÔƠƯ][\wÀ-ỹ]*\.?){0,7}$")


def _looks_like_byline(paragraph: str) -> bool:
    """A closing line that is only names: "K. Miên", "Quang Phong - Tùng Nguyên" (no sentence)."""
    text = paragraph.strip()
    if not 2 <= len(text) <= 60 or text.endswith((".", "!", "?", ":")) and not re.search(r"\b\w\.$", text):
        return False
    words = re.findall(r"[^\s\-–,]+", text)
    if not 1 <= len(words) <= 8 or any(w.lower() in ("theo", "nguồn", "ảnh", "video") for w in words):
        return False
    return bool(_BYLINE.match(text))


def _strip_keyword_tail(title: str) -> str:
    """'Đột nhập lò luyện thi công chức Hàn Quốc-lo luyen thi cong chuc o han' → the title without the
    unaccented keyword tail some sites append to og:title."""
    from nlp.text import fold

    match = re.match(r"^(.*\S)\s*-\s*([a-z0-9 ]{8,})$", title)
    if match and not match.group(2).isdigit():
        head, tail = match.group(1), match.group(2).strip()
        if fold(head).startswith(tail[:12]) or tail[:12] in fold(head):
            return head
    return title


def _first(*values: str | None) -> str | None:
    for value in values:
        if value and value.strip():
            return value.strip()
    return None


def _split_tags(values: Iterable[str]) -> list[str]:
    out: list[str] = []
    for value in values:
        for tag in re.split(r"\s*[,;]\s*", value or ""):
            tag = _clean(tag)
            if tag and len(tag) <= 80 and tag.lower() not in {t.lower() for t in out}:
                out.append(tag)
    return out


def extract_article(html: str | bytes, url: str, *, http_charset: str | None = None) -> Article:
    """Extract the article of one news page.

    `html` may be bytes (decoded robustly, see `decode_html`; `http_charset` is the charset of the
    HTTP Content-Type header, if any). Raises `BlockedPage` for challenge pages, `NoArticleBody`
    (or its `SoftNotFound`) for pages that are not articles.
    """
    raw = decode_html(html, http_charset) if isinstance(html, bytes) else fix_mojibake(html)
    raw = unicodedata.normalize("NFC", raw)
    if not raw.strip():
        raise NoArticleBody("empty page")
    doc = _parse(raw)
    check_blocked(doc, raw)
    for junk in doc.xpath("//script[not(@type='application/ld+json')] | //style | //noscript"):
        junk.drop_tree()

    rule = _rule_for(url, doc)
    ld = _jsonld_article(doc)
    site_names = _site_names(doc, url)
    og_type = (_meta(doc, "og:type") or "").lower()
    page_title = _clean(doc.findtext(".//title"))

    # ---- title
    heading = _heading_title(doc)
    ld_headline = ld.get("headline") if isinstance(ld.get("headline"), str) else None
    og_title = _meta(doc, "og:title", "twitter:title", "headline")
    title_raw = _first(og_title, ld_headline, heading)
    if not title_raw and page_title:
        title_raw = page_title
    title = _strip_site_suffix(_clean(title_raw), site_names) if title_raw else ""
    title = _strip_keyword_tail(title)

    if _NOT_FOUND.search(page_title or "") and (not heading or _NOT_FOUND.search(heading)):
        raise SoftNotFound(f"not-found page: {page_title!r}")

    # ---- body
    body: list[str] = []
    if rule and rule.body:
        body = _xpath_texts(doc, rule.body)
        if sum(len(p) for p in body) < MIN_BODY_CHARS:
            body = []
    traf_meta: dict[str, Any] = {}
    fast = False
    if not body:
        structural = _structural_body(doc)
        # lxml first: a clean article container (several paragraphs, little link text, no comment
        # or related-news boxes inside) is taken as is; trafilatura reads the other pages
        if _clean_container(doc) and len(structural) >= 3 and sum(len(p) for p in structural) >= 600:
            body, fast = structural, True
    if not body:
        traf_body, traf_meta = _trafilatura(lxml.html.tostring(doc, encoding="unicode"), url)
        body = traf_body
        if sum(len(p) for p in structural) > 1.3 * sum(len(p) for p in traf_body) or (
            structural and sum(len(p) for p in traf_body) < MIN_BODY_CHARS
        ):
            body = structural
    body = [p for p in body if p]
    if title:
        body = [p for p in body if p != title] or body
    body = [p for p in body if not _RELATED_LINK.match(p)] or body
    trailing_byline: list[str] = []
    while len(body) > 2 and _looks_like_byline(_CREDIT.sub("", body[-1])):
        trailing_byline.insert(0, _CREDIT.sub("", body.pop()))

    # ---- is this an article at all?
    body_chars = sum(len(p) for p in body)
    path = urlsplit(url).path
    has_headline = bool(heading or ld_headline or (og_title and og_type == "article"))
    homepage_url = path in ("", "/") or re.fullmatch(r"/(index|home|default|trang-chu)\.\w+", path or "")
    if og_type == "website" and not ld_headline and homepage_url:
        raise NoArticleBody("site front page (og:type=website)")
    if homepage_url and not ld_headline and og_type != "article":
        raise NoArticleBody(f"front page URL {url}")
    if not has_headline:
        raise NoArticleBody("no headline: the page is a listing, not an article")
    claimed = _first(_meta(doc, "og:url"), *doc.xpath("//link[@rel='canonical']/@href")[:1])
    if claimed and not homepage_url and urlsplit(claimed).path in ("", "/") and not ld_headline:
        raise SoftNotFound(f"the page says it is the front page ({claimed}), not {url}")
    if body_chars < MIN_BODY_CHARS:
        raise NoArticleBody(f"article body too short ({body_chars} characters)")
    if not title:
        raise NoArticleBody("no title")

    # ---- date
    published: datetime | None = None
    date_sources = [
        ld.get("datePublished") if isinstance(ld.get("datePublished"), str) else None,
        _meta(doc, "article:published_time", "datePublished", "pubdate", "og:published_time",
              "publishdate", "publish-date", "dc.date.issued", "DC.date.issued", "dcterms.created",
              "date", "sailthru.date", "parsely-pub-date"),
    ]
    time_values = doc.xpath("//time[@itemprop='datePublished']/@datetime | //article//time/@datetime")
    date_sources.extend(str(v) for v in time_values[:1])
    date_only = False
    for value in date_sources:
        published = parse_date_value(value)
        if published:
            date_only = bool(re.fullmatch(r"\s*\d{4}-\d{2}-\d{2}\s*", value or ""))
            break
    if published is not None and date_only:
        # metadata with a day only ("2012-12-25"): the page's date line may give the time
        top = _clean(doc.xpath("string(//body)"))
        anchor = top.find(heading) if heading else -1
        line = parse_vietnamese_date(top[max(0, anchor - 600): anchor + 1500] if anchor >= 0 else top[:6000])
        if line is not None and line.date() == published.date() and (line.hour or line.minute):
            published = line
    if published is None and rule and rule.date:
        for text in _xpath_texts(doc, rule.date):
            published = parse_vietnamese_date(text)
            if published:
                break
    if published is None:
        # a date line near the headline: look at the text of the top of the page
        top = _clean(doc.xpath("string(//body)"))
        anchor = top.find(heading) if heading else -1
        window = top[max(0, anchor - 600): anchor + 1500] if anchor >= 0 else top[:6000]
        published = parse_vietnamese_date(window)
    if published is None and fast:
        _, traf_meta = _trafilatura(lxml.html.tostring(doc, encoding="unicode"), url)
    if published is None and traf_meta.get("date"):
        published = parse_date_value(str(traf_meta["date"]))

    # ---- authors
    author_values: list[str] = []
    if rule and rule.authors:
        author_values.extend(_xpath_texts(doc, rule.authors))
    if not author_values:
        author_values.extend(_names(ld.get("author")))
    if not author_values:
        for name in ("dable:author", "article:author", "author", "dc.creator", "byl"):
            value = _meta(doc, name)
            if value and not value.startswith("http"):
                author_values.append(value)
                if _split_authors([value], site_names):
                    break
    if not _split_authors(author_values, site_names) and trailing_byline:
        author_values.extend(trailing_byline)
    if not _split_authors(author_values, site_names) and traf_meta.get("author"):
        author_values.append(str(traf_meta["author"]))
    authors = _split_authors(author_values, site_names)

    # ---- tags, section, lead, language
    tag_values = doc.xpath("//meta[@name='news_keywords']/@content")[:1]
    tag_values += doc.xpath("//meta[@property='article:tag']/@content")
    keywords = ld.get("keywords")
    if not tag_values and isinstance(keywords, str | list):
        tag_values = [keywords] if isinstance(keywords, str) else [str(k) for k in keywords]
    if not tag_values and og_type == "article":
        tag_values = doc.xpath("//meta[@name='keywords']/@content")[:1]
    generic = {re.sub(r"[\W_]+", "", n.lower()) for n in site_names} | _GENERIC_TAGS
    tags = [t for t in _split_tags(tag_values) if re.sub(r"[\W_]+", "", t.lower()) not in generic]

    section_raw = _first(_meta(doc, "article:section"), _meta(doc, "articleSection"),
                         ld.get("articleSection") if isinstance(ld.get("articleSection"), str) else None)
    section = _split_tags([section_raw])[-1] if section_raw and _split_tags([section_raw]) else None
    if section and re.sub(r"[\W_]+", "", section.lower()) in generic:
        section = None

    lead = _first(
        _xpath_texts(doc, rule.lead)[0] if rule and rule.lead and _xpath_texts(doc, rule.lead) else None,
        _meta(doc, "og:description", "twitter:description"),
        ld.get("description") if isinstance(ld.get("description"), str) else None,
        _meta(doc, "description"),
    )
    if lead:
        lead = _strip_site_suffix(_clean(lead), site_names, leading=False)

    declared_lang = _first(doc.get("lang"), _meta(doc, "inLanguage", "og:locale", "language"))
    language = detect_language(title + "\n" + "\n".join(body), declared_lang)

    return Article(url=url, title=title, text="\n".join(body), published_at=published,
                   authors=authors, tags=tags, section=section, lead=lead or None, language=language)


def to_utc(dt: datetime | None) -> datetime | None:
    """Aware datetime in UTC (None stays None)."""
    return dt.astimezone(UTC) if dt else None
