"""Forum threads (XenForo 2, as voz.vn and tinhte.vn run it, and XenForo 1 of the 2012 era): each
post with its author, time and number, the thread it belongs to, and the pagination to follow.

    page = parse_thread(html, "https://voz.vn/t/ngap-nuoc-o-thu-duc.123456/page-2")
    page.posts[0].author, page.posts[0].published_at, page.next_url

Post text is the post's own words: quoted posts, signatures, "Click to expand…" and attachment
boxes are left out, line breaks kept. `parse_forum` lists the threads of a forum page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import lxml.html

from crawlers.extraction import CITY_TZ, _clean, decode_html, parse_date_value
from crawlers.urls import URLError, canonicalize_url

_PAGE_SUFFIX = re.compile(r"(?:page-\d+/?|latest/?|unread/?)$")
_POST_ID = re.compile(r"post-(\d+)")
_XF1_DATE = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{2,4})(?:\s+(?:at|lúc)\s+(\d{1,2}):(\d{2}))?")


class ForumParseError(ValueError):
    """A page that is not a forum thread (no posts found)."""


@dataclass
class ForumPost:
    post_id: str
    author: str | None
    published_at: datetime | None
    text: str
    url: str  # permalink
    position: int | None = None  # "#12"
    quotes: list[str] = field(default_factory=list)  # post ids quoted


@dataclass
class ThreadPage:
    url: str  # this page
    thread_url: str  # the thread's first page (canonical, without page-N)
    title: str
    forum: str | None
    page: int
    last_page: int
    next_url: str | None
    posts: list[ForumPost]
    engine: str  # xenforo2 | xenforo1


@dataclass
class ThreadLink:
    url: str
    title: str
    last_page: int = 1
    latest_at: datetime | None = None


def thread_base(url: str) -> str:
    """A thread URL without its page part: ``/t/slug.123/page-4`` → ``/t/slug.123/``."""
    parts = urlsplit(url)
    path = _PAGE_SUFFIX.sub("", parts.path)
    if not path.endswith("/"):
        path += "/"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def _doc(html: str | bytes) -> Any:
    text = decode_html(html) if isinstance(html, bytes) else html
    return lxml.html.document_fromstring(text.encode("utf-8"),
                                         parser=lxml.html.HTMLParser(encoding="utf-8", remove_comments=True))


def _base(doc: Any, url: str) -> str:
    """The page's ``<base href>`` on the host the page was fetched from (a saved or mirrored page
    keeps the live site's base; links are followed on the host that served it)."""
    base = doc.xpath("//base/@href")
    if not base:
        return url
    joined = urlsplit(urljoin(url, base[0]))
    here = urlsplit(url)
    return urlunsplit((here.scheme, here.netloc, joined.path, "", ""))


def _xf_time(node: Any) -> datetime | None:
    """A XenForo time element: ``data-time`` (epoch), ``datetime`` (ISO) or XF1's title "14/12/12 at 16:18"."""
    if node is None:
        return None
    epoch = node.get("data-time")
    if epoch and epoch.isdigit():
        return datetime.fromtimestamp(int(epoch), UTC).astimezone(CITY_TZ)
    value = node.get("datetime")
    if value:
        # XenForo writes "+0700"; fromisoformat accepts it on 3.11
        parsed = parse_date_value(value)
        if parsed:
            return parsed
    for text in (node.get("title"), node.get("data-datestring"), node.text_content()):
        if not text:
            continue
        match = _XF1_DATE.search(text)
        if match:
            day, month, year = int(match.group(1)), int(match.group(2)), int(match.group(3))
            year += 2000 if year < 100 else 0
            hour, minute = int(match.group(4) or 0), int(match.group(5) or 0)
            try:
                return datetime(year, month, day, hour, minute, tzinfo=CITY_TZ)
            except ValueError:
                continue
    return None


_BLOCK_TAGS = {"p", "div", "li", "br", "blockquote", "h1", "h2", "h3", "h4", "tr", "ul", "ol", "table"}


def _post_text(body: Any) -> tuple[str, list[str]]:
    """The post's own text (quotes, spoilers' titles, signatures, scripts out) and the quoted ids."""
    quotes: list[str] = []
    for quote in body.xpath(".//blockquote[contains(@class,'bbCodeQuote') or contains(@class,'bbCodeBlock--quote')]"
                            " | .//div[contains(@class,'bbCodeQuote')]"):
        source = quote.get("data-source") or ""
        match = re.search(r"(\d+)", source)
        if match:
            quotes.append(match.group(1))
        quote.drop_tree()
    for junk in body.xpath(".//script | .//style | .//aside[contains(@class,'message-signature')]"
                           " | .//*[contains(@class,'bbCodeBlock-expandLink')] | .//*[contains(@class,'attachedFiles')]"
                           " | .//*[contains(@class,'js-extraPhrases')] | .//div[contains(@class,'quoteExpand')]"):
        junk.drop_tree()
    for br in body.xpath(".//br"):
        br.tail = "\n" + (br.tail or "")
    for block in body.iter():
        if isinstance(block.tag, str) and block.tag in _BLOCK_TAGS and block is not body:
            block.tail = "\n" + (block.tail or "")
    lines = [_clean(line) for line in body.text_content().split("\n")]
    return "\n".join(line for line in lines if line), quotes


def _page_numbers(doc: Any, url: str) -> tuple[int, int]:
    nav = doc.xpath("//div[contains(@class,'PageNav')][@data-last]")
    if nav:  # XenForo 1
        return int(nav[0].get("data-page", "1")), int(nav[0].get("data-last", "1"))
    current = doc.xpath("//li[contains(@class,'pageNav-page--current')]/a/text()")
    pages = [int(t) for t in doc.xpath("//ul[contains(@class,'pageNav-main')]//a/text()") if t.strip().isdigit()]
    match = re.search(r"page-(\d+)", urlsplit(url).path)
    page = int(current[0]) if current and current[0].strip().isdigit() else int(match.group(1)) if match else 1
    return page, max([page, *pages])


def parse_thread(html: str | bytes, url: str) -> ThreadPage:
    """One page of a XenForo thread; ForumParseError for a page without posts."""
    doc = _doc(html)
    base = _base(doc, url)
    page_url = url  # not the canonical link: a mirror's pages name the live site there
    posts: list[ForumPost] = []
    engine = "xenforo2"
    nodes = doc.xpath("//article[contains(concat(' ', normalize-space(@class), ' '), ' message--post ')]"
                      " | //article[starts-with(@data-content,'post-')]")
    if not nodes:
        nodes = doc.xpath("//li[starts-with(@id,'post-')][contains(@class,'message')]")
        engine = "xenforo1"
    if not nodes:
        raise ForumParseError(f"no forum posts on {url}")
    root = f"{urlsplit(base).scheme}://{urlsplit(base).netloc}/"
    for node in nodes:
        ident = node.get("data-content") or node.get("id") or ""
        match = _POST_ID.search(ident)
        if not match:
            continue
        post_id = match.group(1)
        author = node.get("data-author")
        if not author:
            names = node.xpath(".//*[contains(@class,'message-name')]//text()"
                               " | .//a[contains(@class,'username')]//text()")
            author = _clean(names[0]) if names else None
        if engine == "xenforo2":
            time_node = (node.xpath(".//header[contains(@class,'message-attribution')]//time")
                         or node.xpath(".//time"))
            body = node.xpath(".//div[contains(@class,'message-userContent')]//div[contains(@class,'bbWrapper')]")
            number = node.xpath(".//ul[contains(@class,'message-attribution-opposite')]"
                                "//a[starts-with(normalize-space(.),'#')]/text()")
        else:
            time_node = (node.xpath(".//div[contains(@class,'messageMeta')]//*[contains(@class,'DateTime')]")
                         or node.xpath(".//*[contains(@class,'DateTime')]"))
            body = node.xpath(".//blockquote[contains(@class,'messageText')]")
            number = node.xpath(".//a[contains(@class,'postNumber')]/text()")
        if not body:
            continue
        text, quotes = _post_text(body[0])
        position = None
        if number:
            digits = re.sub(r"\D", "", number[0])
            position = int(digits) if digits else None
        posts.append(ForumPost(post_id=post_id, author=_clean(author) or None,
                               published_at=_xf_time(time_node[0] if time_node else None), text=text,
                               url=canonicalize_url(urljoin(root, f"posts/{post_id}/")), position=position,
                               quotes=quotes))
    title = _clean(" ".join(doc.xpath("//h1[contains(@class,'p-title-value')]//text()")))
    if not title:
        title = _clean(" ".join(doc.xpath("//div[contains(@class,'titleBar')]/h1//text()")))
    if not title:
        title = _clean(doc.findtext(".//title") or "").split(" | ")[0]
    crumbs = doc.xpath("//ul[contains(@class,'p-breadcrumbs')]//span[@itemprop='name']/text()"
                       " | //span[contains(@class,'crumbs')]//span[@itemprop='title']/text()")
    forum = _clean(crumbs[-1]) if crumbs else None
    page, last_page = _page_numbers(doc, page_url)
    next_link = (doc.xpath("//a[contains(@class,'pageNav-jump--next')]/@href")
                 or doc.xpath("//link[@rel='next']/@href")
                 or doc.xpath("//div[contains(@class,'PageNav')]"
                              "//a[contains(@class,'text') and contains(.,'>')]/@href"))
    next_url = canonicalize_url(urljoin(base, next_link[0])) if next_link and page < last_page else None
    try:
        thread = canonicalize_url(thread_base(page_url))
    except URLError:
        thread = thread_base(page_url)
    return ThreadPage(url=page_url, thread_url=thread, title=title, forum=forum, page=page,
                      last_page=last_page, next_url=next_url, posts=posts, engine=engine)


def page_url(thread_url: str, page: int) -> str:
    """The URL of page `page` of a thread (XenForo's ``page-N``)."""
    base = thread_base(thread_url)
    return base if page <= 1 else f"{base}page-{page}"


def parse_forum(html: str | bytes, url: str) -> tuple[list[ThreadLink], str | None]:
    """The threads listed on a forum page, and the next listing page."""
    doc = _doc(html)
    base = _base(doc, url)
    links: list[ThreadLink] = []
    items = doc.xpath("//div[contains(@class,'structItem--thread')]")
    for item in items:  # XenForo 2
        anchor = item.xpath(".//div[contains(@class,'structItem-title')]//a[@data-tp-primary='on'][1]"
                            " | .//div[contains(@class,'structItem-title')]/a[last()]")
        if not anchor:
            continue
        jumps = [int(t) for t in item.xpath(".//span[contains(@class,'structItem-pageJump')]//a/text()")
                 if t.strip().isdigit()]
        latest = item.xpath(".//time[contains(@class,'structItem-latestDate')]")
        links.append(ThreadLink(url=canonicalize_url(thread_base(urljoin(base, anchor[0].get("href")))),
                                title=_clean(anchor[0].text_content()), last_page=max([1, *jumps]),
                                latest_at=_xf_time(latest[0]) if latest else None))
    if not items:  # XenForo 1
        for item in doc.xpath("//li[starts-with(@id,'thread-')]"):
            anchor = item.xpath(".//h3[contains(@class,'title')]/a[contains(@class,'PreviewTooltip')]"
                                " | .//h3/a[last()]")
            if anchor:
                links.append(ThreadLink(url=canonicalize_url(thread_base(urljoin(base, anchor[0].get("href")))),
                                        title=_clean(anchor[0].text_content())))
    next_link = doc.xpath("//a[contains(@class,'pageNav-jump--next')]/@href | //link[@rel='next']/@href")
    return links, (canonicalize_url(urljoin(base, next_link[0])) if next_link else None)
