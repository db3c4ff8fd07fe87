"""Article extraction checked against real saved pages with expected values (../shared/pages)."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from crawlers.extraction import (
    BlockedPage,
    NoArticleBody,
    SoftNotFound,
    decode_html,
    extract_article,
    parse_vietnamese_date,
)
from langnghe.records import parse_datetime

PAGES = Path(__file__).resolve().parent.parent.parent / "shared" / "pages"
needs_pages = pytest.mark.skipif(not (PAGES / "vnexpress").is_dir(),
                                 reason="../shared/pages (saved news pages) is absent")
VNE = "dau-bung-keo-dai-phat-hien-ung-thu-lymphoma-ruot-non-4954454"
ICT = timezone(timedelta(hours=7))


def token_f1(predicted: str, expected: str) -> float:
    """Bag-of-words F1 between two texts (lower case, word tokens)."""
    p = Counter(re.findall(r"\w+", predicted.lower()))
    e = Counter(re.findall(r"\w+", expected.lower()))
    common = sum((p & e).values())
    if not common:
        return 0.0
    precision, recall = common / sum(p.values()), common / sum(e.values())
    return 2 * precision * recall / (precision + recall)


# ---------------------------------------------------------------------------- golden pages


@needs_pages
def test_vnexpress_article_matches_expected() -> None:
    expected = json.loads((PAGES / "vnexpress" / f"{VNE}.expected.json").read_text())["V1"]
    article = extract_article((PAGES / "vnexpress" / f"{VNE}.html").read_bytes(),
                              f"https://vnexpress.net/{VNE}.html")
    assert article.title == expected["title"]
    assert article.published_at == parse_datetime(expected["publishing_date"].replace(" ", "T"))
    assert article.authors == expected["authors"]
    assert article.lead == expected["body"]["summary"][0]
    paragraphs = [p for s in expected["body"]["sections"] for p in s["paragraphs"]]
    f1 = token_f1(article.text, "\n".join(paragraphs))
    assert f1 >= 0.9, f"token F1 {f1:.3f}"
    assert [t.lower() for t in article.tags[:3]] == [t.lower() for t in expected["topics"]]
    assert article.language == "vi"


@needs_pages
@pytest.mark.parametrize("url", sorted(json.loads((PAGES / "plo" / "expected.json").read_text()))
                         if (PAGES / "plo" / "expected.json").exists() else [])
def test_plo_articles_match_expected(url: str) -> None:
    expected = json.loads((PAGES / "plo" / "expected.json").read_text())[url]
    article = extract_article((PAGES / "plo" / expected["file"]).read_bytes(), url)
    if "title" in expected:
        assert article.title == expected["title"]
    if "published_at" in expected:
        assert article.published_at == parse_datetime(expected["published_at"])
    if "first_paragraph_starts_with" in expected:
        assert article.paragraphs[0].startswith(expected["first_paragraph_starts_with"])
    if "body_min_chars" in expected:
        assert len(article.text) >= expected["body_min_chars"]
    if "category" in expected:
        assert article.section == expected["category"]
    if "tags" in expected:
        assert article.tags == expected["tags"]
    if "first_tag_contains" in expected:
        assert expected["first_tag_contains"] in article.tags[0]
    if "description" in expected:
        assert article.lead == expected["description"]
    assert article.published_at is not None and article.published_at.utcoffset() == timedelta(hours=7)
    assert article.authors and all(a.isupper() is False for a in article.authors)


LEGACY_ARTICLES = {
    "24h1.html": "Đột nhập lò luyện thi công chức Hàn Quốc",
    "dantri1.html": "Chốt lịch nghỉ lễ Tết 2013 của công chức, viên chức",
    "nld1.html": "Thiếu tiền hụi, xách dao đi “nói chuyện” với chủ nợ",
    "thanhnien1.html": '5 "bóng hồng" buôn ma túy lãnh án',
    "tinhte1.html": "Chuyện giữa 2 người trên Facebook",
    "vnexpress1.html": "Vợ ngoại tình sau những lần bị tôi đánh đập dã man",
    "vnexpress3.html": "Dòng nước độc trên cánh đồng Hà Nội",
    "zing1.html": "Mọi ngả đường về nhà thờ tắc nghẽn đêm Giáng sinh",
}


@needs_pages
@pytest.mark.parametrize(("name", "title"), sorted(LEGACY_ARTICLES.items()))
def test_legacy_articles_give_title_body_and_2012_date(name: str, title: str) -> None:
    article = extract_article((PAGES / "legacy-2012" / name).read_bytes(), f"http://example.vn/2012/{name}")
    assert title in article.title
    assert len(article.text) >= 200
    assert article.published_at is not None and article.published_at.year == 2012
    assert article.language == "vi"


@needs_pages
@pytest.mark.parametrize("name", ["thanhnien.homepage.html", "vnexpress.hompage.html"])
@pytest.mark.parametrize("url", ["http://example.vn/", "http://example.vn/tin-tuc/trang-1.html"])
def test_homepages_are_not_articles(name: str, url: str) -> None:
    # detected from the page itself, also when the URL does not look like a front page
    with pytest.raises(NoArticleBody):
        extract_article((PAGES / "legacy-2012" / name).read_bytes(), url)


# ---------------------------------------------------------------------------- generic pages

GENERIC = """<!doctype html><html lang="vi"><head><meta charset="utf-8">
<title>Ngập nước kéo dài trên đường Nguyễn Hữu Cảnh - Tin Thành Phố</title>
<meta property="og:site_name" content="Tin Thành Phố">
<meta property="article:published_time" content="2025-11-20T08:15:00+07:00">
<meta name="author" content="Nguyễn Văn An">
<meta name="description" content="Người dân phản ánh tình trạng ngập sau mưa.">
</head><body><nav><a href="/">Trang chủ</a> <a href="/xa-hoi">Xã hội</a></nav>
<h1>Ngập nước kéo dài trên đường Nguyễn Hữu Cảnh</h1>
<article><p>Chiều 19/11, sau cơn mưa lớn, nhiều đoạn đường Nguyễn Hữu Cảnh (phường Thạnh Mỹ Tây) ngập sâu
khoảng 40 cm khiến xe máy chết máy hàng loạt.</p>
<p>Người dân cho biết tình trạng này lặp lại nhiều lần trong tháng, dù khu vực đã được đầu tư chống ngập.</p>
<p>Đại diện công ty thoát nước cho biết sẽ kiểm tra hệ thống cống và nạo vét trong tuần tới.</p></article>
<footer>© Tin Thành Phố</footer></body></html>"""


def test_generic_article_html() -> None:
    article = extract_article(GENERIC, "http://127.0.0.1:8765/xa-hoi/ngap-nuoc-123.html")
    assert article.title == "Ngập nước kéo dài trên đường Nguyễn Hữu Cảnh"
    assert article.published_at == datetime(2025, 11, 20, 8, 15, tzinfo=ICT)
    assert article.authors == ["Nguyễn Văn An"]
    assert len(article.paragraphs) == 3
    assert article.paragraphs[0].startswith("Chiều 19/11, sau cơn mưa lớn")
    assert "Trang chủ" not in article.text and "©" not in article.text
    assert article.lead == "Người dân phản ánh tình trạng ngập sau mưa."


def test_generic_article_in_legacy_charsets() -> None:
    cp1258 = GENERIC.replace('<meta charset="utf-8">', "").encode("windows-1258", errors="strict") \
        if _encodable(GENERIC, "windows-1258") else None
    if cp1258 is not None:
        assert "Nguyễn Hữu Cảnh" in extract_article(cp1258, "http://x.vn/a.html").title
    utf8 = GENERIC.encode("utf-8")
    # UTF-8 bytes mislabelled as Latin-1 by the server
    mislabelled = extract_article(utf8, "http://x.vn/a.html", http_charset="iso-8859-1")
    assert mislabelled.title.startswith("Ngập nước")
    # double-encoded text (UTF-8 read as cp1252 and saved again as UTF-8)
    mojibake = GENERIC.encode("utf-8").decode("cp1252", errors="replace").encode("utf-8")
    decoded = decode_html(mojibake)
    assert "Nguyễn Hữu Cảnh" in decoded


def _encodable(text: str, codec: str) -> bool:
    import unicodedata

    try:
        unicodedata.normalize("NFD", text).encode(codec)
        return True
    except UnicodeEncodeError:
        return False


def test_windows_1258_without_declaration() -> None:
    import unicodedata

    sentence = "Người dân phường Linh Trung phản ánh nước ngập. "
    text = "<html><body><h1>Thủ Đức ngập nặng</h1><p>" + sentence * 6 + "</p></body></html>"
    # windows-1258 has ă â ê ô ơ ư đ precomposed and writes tone marks as combining characters
    tones = {"\u0300", "\u0301", "\u0303", "\u0309", "\u0323"}
    out = []
    for ch in text:
        parts = unicodedata.normalize("NFD", ch)
        base = unicodedata.normalize("NFC", "".join(c for c in parts if c not in tones))
        out.append(base + "".join(c for c in parts if c in tones))
    data = "".join(out).encode("windows-1258")
    decoded = decode_html(data)
    assert "Thủ Đức ngập nặng" in decoded and "Người dân phường" in decoded


def test_challenge_and_not_found_pages() -> None:
    challenge = ("<html><head><title>Just a moment...</title></head><body><h1>example.vn</h1>"
                 "<p>Checking if the site connection is secure</p>"
                 "<script src='/cdn-cgi/challenge-platform/h/g/orchestrate/chl_page/v1'></script>"
                 "</body></html>")
    with pytest.raises(BlockedPage):
        extract_article(challenge, "https://example.vn/a.html")
    not_found = GENERIC.replace("<title>Ngập nước kéo dài trên đường Nguyễn Hữu Cảnh - Tin Thành Phố</title>",
                                "<title>404 - Không tìm thấy trang</title>").replace(
        "<h1>Ngập nước kéo dài trên đường Nguyễn Hữu Cảnh</h1>", "<h1>Không tìm thấy trang</h1>")
    with pytest.raises(SoftNotFound):
        extract_article(not_found, "https://example.vn/b.html")
    with pytest.raises(NoArticleBody):
        extract_article("<html><body><h1>Tiêu đề</h1><p>Ngắn.</p></body></html>", "https://example.vn/c.html")


@pytest.mark.parametrize(("text", "expected"), [
    ("Thứ tư, 22/10/2025, 14:30 (GMT+7)", datetime(2025, 10, 22, 14, 30, tzinfo=ICT)),
    ("Thứ Hai, 24/12/2012, 03:04 AM (GMT+7)", datetime(2012, 12, 24, 3, 4, tzinfo=ICT)),
    ("Thứ năm, 20/12/2012, 10:18 GMT+7", datetime(2012, 12, 20, 10, 18, tzinfo=ICT)),
    ("Cập nhật: 26-12-2012 17:14", datetime(2012, 12, 26, 17, 14, tzinfo=ICT)),
    ("08:05 PM, 01/02/2024", datetime(2024, 2, 1, 20, 5, tzinfo=ICT)),
    ("Chủ nhật, ngày 5/1/2025", datetime(2025, 1, 5, 0, 0, tzinfo=ICT)),
    ("không có ngày", None),
])
def test_parse_vietnamese_date(text: str, expected: datetime | None) -> None:
    result = parse_vietnamese_date(text)
    assert result == expected
    if result is not None:
        assert result.tzinfo is not None and str(result.tzinfo) == "Asia/Ho_Chi_Minh"
