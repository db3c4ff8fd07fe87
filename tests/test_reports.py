"""Briefings, digests, charts and the ward map: figures checked against the store, the PDF
rendered to PNG and read back, e-mails delivered to a real SMTP server on loopback."""

from __future__ import annotations

import email
import email.policy
import gzip
import re
import shutil
import subprocess
from collections.abc import Iterator
from datetime import date, timedelta
from email.message import Message
from pathlib import Path

import pytest

from api.reports.charts import nice_max, volume_chart
from api.reports.data import DayPoint, area_counts, daily_series, day_start, previous_week, week_bounds
from api.reports.geo import GEO_FILE, choropleth_svg, colour_class, frame, legend_bins, load_shapes
from langnghe.records import Mention
from nlp.areas import load_areas
from storage.base import Store, mention_filters
from storage.sqlite import SQLiteStore
from tests.browser.data import END_DAY, SCENARIOS, populate

needs_chromium = pytest.mark.skipif(shutil.which("chromium") is None, reason="no chromium (.ci/setup-browser.sh)")
needs_poppler = pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="no poppler-utils")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SQLiteStore]:
    db = SQLiteStore(tmp_path_factory.mktemp("reports") / "store.db")
    populate(db)
    yield db
    db.close()


def by_label(store: Store, fragment: str) -> str:
    for issue in store.list_issues():
        if fragment in issue.label:
            return issue.id
    raise AssertionError(f"no issue labelled with {fragment!r}")


def mentions_on(store: Store, day: date, **filters: object) -> list[Mention]:
    return list(store.iter_mentions(mention_filters(since=day_start(day), until=day_start(day + timedelta(days=1)),
                                                    **filters)))  # type: ignore[arg-type]


# --------------------------------------------------------------------------- geo and charts


def test_ward_boundaries_cover_the_168_wards_and_are_small() -> None:
    shapes = load_shapes()
    wards = {s.id for s in shapes if s.level == "ward"}
    assert wards == {a.id for a in load_areas().by_level("ward")}
    assert len(wards) == 168
    assert {s.id for s in shapes if s.level == "former_district"} >= {"fd:quan-1", "fd:thu-duc", "fd:can-gio"}
    assert GEO_FILE.stat().st_size < 2_000_000
    with gzip.open(GEO_FILE, "rt", encoding="utf-8") as fh:
        assert len(fh.read()) < 2_000_000
    # HCMC lies within 8.5–11.6°N (from the Côn Đảo islands to Dầu Tiếng), 106.0–107.7°E
    for s in shapes:
        for poly in s.polygons:
            for lon, lat in poly[0]:
                assert 106.0 < lon < 107.7 and 8.5 < lat < 11.6


def test_map_views_and_colour_scale() -> None:
    core, whole = frame("core"), frame("all")
    old_hcmc = [a for a in load_areas().by_level("ward") if a.former_province is None]
    assert len(core.wards) == len(old_hcmc)
    assert len(whole.wards) + 1 == 168 and whole.inset is not None  # Côn Đảo in its inset
    assert colour_class(0, 10) == 0 and colour_class(10, 10) == 5 and 1 <= colour_class(1, 10) < 5
    bins = legend_bins(33)
    assert bins[0] == (0, 0, 0) and bins[-1][2] == 33
    assert all(low <= high for _, low, high in bins[1:])
    svg = choropleth_svg({"w:26743": 7, "w:26956": 3}, view="core")
    assert 'data-id="w:26743" data-value="7"' in svg and "q5" in svg
    assert svg.count('class="fd"') == 22
    assert "<script" not in svg


def test_volume_chart_scales_and_escapes() -> None:
    assert nice_max(0) == 1 and nice_max(7) == 10 and nice_max(23) == 25 and nice_max(101) == 200
    points = [DayPoint(date(2025, 11, d), negative=d % 3, neutral=1) for d in range(1, 8)]
    svg = volume_chart(points, title="<b>x</b>", names={"negative": "Tiêu cực", "neutral": "Trung lập",
                                                        "positive": "Tích cực"})
    assert "<b>x</b>" not in svg and "&lt;b&gt;x&lt;/b&gt;" in svg
    assert svg.count("data-total=") == 7 and 'data-total="3"' in svg  # day 2: 2 negative + 1 neutral


def test_series_and_area_counts_match_the_store(store: SQLiteStore) -> None:
    first = END_DAY - timedelta(days=6)
    series = daily_series(store, first, END_DAY)
    assert [p.day for p in series] == [first + timedelta(days=i) for i in range(7)]
    for point in series:
        on_day = mentions_on(store, point.day, civic=True)
        assert point.total == len(on_day)
        assert point.negative == sum(m.sentiment == "negative" for m in on_day)
    expected = sum(sc.profile[-1] for sc in SCENARIOS)
    assert series[-1].total == expected
    total, negative = area_counts(store, first, END_DAY)
    assert total["w:26956"] == sum(SCENARIOS[0].profile[-7:])  # Thạnh Mỹ Tây: the flooding scenario
    assert negative["w:26956"] <= total["w:26956"]
    assert all(area.startswith("w:") for area in total)


# --------------------------------------------------------------------------- briefing


def test_department_briefing_figures(store: SQLiteStore) -> None:
    from api.reports.briefing import build_department_briefing

    day = END_DAY + timedelta(days=1)
    briefing = build_department_briefing(store, "construction", day)
    data = briefing.data
    covered = mentions_on(store, END_DAY, department="construction", civic=True)
    assert data.total == len(covered)
    assert data.negative_total == sum(m.sentiment == "negative" for m in covered)
    assert {ln.issue_id for ln in data.issues} == {m.issue_id for m in covered if m.issue_id}
    flood = by_label(store, "Nguyễn Hữu Cảnh")
    water = by_label(store, "Gò Vấp")
    rising = {ln.issue_id for ln in data.rising}
    assert flood in rising and water in rising  # 9 and 6 mentions against ~3/day before
    steady = by_label(store, "Tân Sơn Nhất")
    assert steady not in rising
    assert all(m.sentiment == "negative" and m.department == "construction" for m in data.negatives)
    assert "Sở Xây dựng" in briefing.subject and "21/11/2025" in briefing.subject
    assert "Vấn đề đang tăng" in briefing.html and "Nguyễn Hữu Cảnh" in briefing.text
    assert "<style>" in briefing.html and "&#34;Noto Sans&#34;" not in briefing.html
    english = build_department_briefing(store, "construction", day, lang="en")
    assert "Rising issues" in english.html and "Department of Construction" in english.subject


def test_new_issue_appears_in_its_departments_briefing(store: SQLiteStore) -> None:
    from api.reports.briefing import briefing_data

    poisoning = by_label(store, "ngộ độc")
    data = briefing_data(store, "food_safety", END_DAY)  # covers 19/11, the first day of the poisoning
    assert [ln.issue_id for ln in data.new] == [poisoning]
    assert data.new[0].count == SCENARIOS[7].profile[-2]
    assert briefing_data(store, "food_safety", END_DAY - timedelta(days=1)).issues == []


def test_briefing_rejects_unknown_department(store: SQLiteStore) -> None:
    from api.reports.briefing import build_department_briefing

    with pytest.raises(ValueError, match="unknown department"):
        build_department_briefing(store, "ministry_of_magic", END_DAY)


def test_briefing_marks_uncertain_routings(tmp_path: Path) -> None:
    """A negative mention whose department_score is under 0.5 carries the 'check routing' label;
    a confident one and one classified before the score was stored (None) do not."""

    from api.reports.briefing import build_department_briefing

    day = date(2025, 11, 21)
    noon = day_start(day - timedelta(days=1)) + timedelta(hours=12)
    scores = {"low": 0.31, "high": 0.93, "old": None}
    mentions = [Mention(id=mid, source="tuoitre.vn", url=f"https://tuoitre.vn/{mid}.html", title=f"Tin {mid}",
                        text="Đường ngập sâu sau mưa.", published_at=noon + timedelta(minutes=k), civic=True,
                        civic_score=0.9, sentiment="negative", sentiment_score=0.8, topic="flooding",
                        department="construction", topic_score=0.9, department_score=score,
                        areas=["hcmc"], processed_at=noon + timedelta(hours=1))
                for k, (mid, score) in enumerate(scores.items())]
    with SQLiteStore(tmp_path / "store.db") as db:
        db.write_mentions(mentions)
        briefing = build_department_briefing(db, "construction", day)
        english = build_department_briefing(db, "construction", day, lang="en")
    assert [m.id for m in briefing.data.negatives] == ["old", "high", "low"]
    items = re.findall(r"<li><p class=\"title\">.*?</li>", briefing.html, flags=re.S)
    assert len(items) == 3
    marked = [item for item in items if 'data-check="routing"' in item]
    assert len(marked) == 1 and "Tin low" in marked[0] and "cần kiểm tra phân công" in marked[0]
    assert "31%" in marked[0]  # the score, in the label's hint
    lines = [line for line in briefing.text.splitlines() if line.startswith("- Tin ")]
    assert [line.endswith("[cần kiểm tra phân công]") for line in lines] == [False, False, True]
    assert english.html.count('data-check="routing"') == 1 and "check routing" in english.html
    assert "[check routing]" in english.text


# --------------------------------------------------------------------------- digest


def test_weekly_digest_top_and_changes(store: SQLiteStore) -> None:
    from api.reports.digest import digest_context

    week = "2025-W47"
    context = digest_context(store, week)
    top = store.top_issues("hcmc", "week", week, 10)
    assert [c.entry.issue_id for c in context["city"]] == [e.issue_id for e in top]
    before = {e.issue_id: e for e in store.top_issues("hcmc", "week", previous_week(week), 50)}
    for change in context["city"]:
        prev = before.get(change.entry.issue_id)
        assert change.is_new == (prev is None)
        if prev is not None:
            assert change.previous_rank == prev.rank
            assert change.mention_change == change.entry.mention_count - prev.mention_count
    poisoning = by_label(store, "ngộ độc")
    assert next(c for c in context["city"] if c.entry.issue_id == poisoning).is_new
    first, last = week_bounds(week)
    assert context["now"].mentions == sum(p.total for p in daily_series(store, first, last))
    assert {a.area_id for a in context["area_tops"]} >= {"fd:binh-thanh", "fd:quan-7", "fd:go-vap"}


@pytest.mark.integration
@pytest.mark.slow
@needs_chromium
@needs_poppler
def test_weekly_digest_pdf_renders_vietnamese(store: SQLiteStore, tmp_path: Path) -> None:
    from api.reports.digest import build_weekly_digest

    digest = build_weekly_digest(store, "2025-W47")
    assert digest.pdf_bytes is not None and digest.pdf_bytes.startswith(b"%PDF-")
    pdf = tmp_path / "digest.pdf"
    pdf.write_bytes(digest.pdf_bytes)
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, check=True,
                          text=True).stdout
    for phrase in ("Bản tin tuần 2025-W47", "10 vấn đề nổi bật toàn thành phố", "Ngập nước sâu trên đường",
                   "Nguyễn Hữu Cảnh", "Lượt nhắc mỗi ngày theo sắc thái"):
        assert phrase in text, phrase
    subprocess.run(["pdftoppm", "-r", "50", "-png", "-f", "1", "-l", "1", str(pdf), str(tmp_path / "page")],
                   check=True)
    png = next(tmp_path.glob("page*.png"))
    data = png.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 10_000  # a page with text, not a blank one


# --------------------------------------------------------------------------- e-mail over real SMTP


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:  # noqa: N802
        self.messages.append(email.message_from_bytes(envelope.content,  # type: ignore[attr-defined]
                                                      policy=email.policy.default))
        return "250 OK"


@pytest.fixture()
def smtp() -> Iterator[tuple[_Inbox, object]]:
    aiosmtpd = pytest.importorskip("aiosmtpd.controller")
    from api.mailer import SmtpConfig
    from tests.browser.server import free_port

    inbox = _Inbox()
    port = free_port()
    controller = aiosmtpd.Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, SmtpConfig(host="127.0.0.1", port=port, starttls=False, sender="Lắng Nghe <bot@example.org>")
    finally:
        controller.stop()


def _decoded(message: Message, subtype: str) -> str:
    for part in message.walk():
        if part.get_content_type() == f"text/{subtype}":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode(part.get_content_charset() or "utf-8")
    raise AssertionError(f"no text/{subtype} part")


@pytest.mark.integration
def test_briefing_email_over_smtp(store: SQLiteStore, smtp: tuple[_Inbox, object]) -> None:
    from api.reports.briefing import build_department_briefing
    from api.reports.mail import send_briefing

    inbox, config = smtp
    briefing = build_department_briefing(store, "construction", END_DAY + timedelta(days=1))
    send_briefing(briefing, ["so.xay.dung@example.org"], config=config)  # type: ignore[arg-type]
    assert len(inbox.messages) == 1
    msg = inbox.messages[0]
    # (compared without spaces: CPython's RFC 2047 folding can drop a space between encoded words)
    assert "".join(str(msg["Subject"]).split()) == "".join(briefing.subject.split())
    assert msg["To"] == "so.xay.dung@example.org"
    assert "Ý kiến tiêu cực cần phản hồi" in _decoded(msg, "html")
    assert "Nguyễn Hữu Cảnh" in _decoded(msg, "plain")


@pytest.mark.integration
@pytest.mark.slow
@needs_chromium
def test_digest_email_with_pdf_over_smtp(store: SQLiteStore, smtp: tuple[_Inbox, object]) -> None:
    from api.reports.digest import build_weekly_digest
    from api.reports.mail import send_digest

    inbox, config = smtp
    digest = build_weekly_digest(store, "2025-W47", lang="en")
    send_digest(digest, ["lanh.dao@example.org"], config=config)  # type: ignore[arg-type]
    msg = inbox.messages[0]
    assert "City-wide top 10" in _decoded(msg, "html")
    pdfs = [p for p in msg.walk() if p.get_content_type() == "application/pdf"]
    assert len(pdfs) == 1 and pdfs[0].get_filename() == "lang-nghe-2025-W47.pdf"
    assert pdfs[0].get_payload(decode=True) == digest.pdf_bytes


def test_counted_words_agree_with_their_number() -> None:
    from api.reports.i18n import t, unit

    assert [unit(t("en"), "mentions", n) for n in (0, 1, 2)] == ["mentions", "mention", "mentions"]
    assert unit(t("en"), "sources", 1) == "source"
    assert {unit(t("vi"), "mentions", n) for n in (0, 1, 2)} == {"lượt nhắc"}


def test_briefing_subject_counts_in_english() -> None:
    from api.reports.briefing import BriefingData, IssueLine, subject_of

    day = date(2025, 11, 21)
    one = IssueLine("iss-1", "Ngập nước", None, [], 0, [0, 1], is_new=True)
    data = BriefingData("construction", day, day - timedelta(days=1), False, [one], negative_total=1)
    assert subject_of(data, "en").endswith("Department of Construction: 1 issue, 1 new, 1 negative mention")
    data.negative_total = 3
    assert subject_of(data, "en").endswith(": 1 issue, 1 new, 3 negative mentions")
    assert subject_of(data, "vi").endswith(": 1 vấn đề, 1 mới, 3 ý kiến tiêu cực")


def test_report_counts_agree_with_their_number(store: SQLiteStore) -> None:
    from api.reports.briefing import build_department_briefing
    from nlp.taxonomy import DEPARTMENTS

    kpis = []
    for department in DEPARTMENTS:
        html = build_department_briefing(store, department, END_DAY + timedelta(days=1), lang="en").html
        kpis += re.findall(r'data-kpi="(issues|mentions|new|rising)">(\d+)</strong> ([\w ]+)', html)
    assert {number for _, number, _ in kpis} >= {"0", "1", "2"}
    for kpi, number, words in kpis:
        assert words.endswith("s") == (number != "1"), (kpi, number, words)
