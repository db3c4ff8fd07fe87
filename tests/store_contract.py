"""Backend conformance suite for `storage.base.Store` (Haystack-style).

Every backend runs the same tests: subclass `StoreContract` in a ``test_*.py`` module and give
it a ``store`` fixture that yields an empty, open store, e.g.::

    class TestMyStore(StoreContract):
        @pytest.fixture
        def store(self, tmp_path):
            s = MyStore(...)
            yield s
            s.close()

The tests only use the protocol's methods, so they hold for SQLite and a search engine alike.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from langnghe.records import Issue, Location, Mention, RankingEntry
from storage.base import FilterError, SearchPage, Store, WriteResult, mention_filters

T0 = datetime(2025, 11, 20, 8, 0, tzinfo=UTC)
HOSTILE_QUERIES = [
    '"', '""', '"ngap', 'AND', 'AND OR (', 'OR', 'NOT', '(', ')', '*', '**', '^', ':', 'title:ngap',
    "'; DROP TABLE mentions; --", 'NEAR(ngap nuoc)', 'ngap AND', '-ngap', '+', '{}', '\\', '%', '_',
    '\x00', 'ngap " nuoc', '"ngap" OR "nuoc" AND (', '🌧️', 'ngap' * 500, ' '.join(['ngap nuoc'] * 2000),
]


def make_mention(mid: str, *, title: str = "Tin tức", text: str = "Nội dung", source: str = "vnexpress.net",
                 published_at: datetime = T0, crawled_at: datetime | None = None, **kwargs: Any) -> Mention:
    """A mention with sensible defaults; kwargs set any other field."""
    return Mention(id=mid, source=source, url=f"https://{source}/{mid}.html", title=title, text=text,
                   published_at=published_at, crawled_at=crawled_at or T0 + timedelta(hours=1), **kwargs)


def enriched(m: Mention, **kwargs: Any) -> Mention:
    """A copy of `m` with NLP fields set (defaults: a civic, negative, flooding mention of Thủ Đức)."""
    data = m.to_dict()
    data.update({
        "civic": True, "civic_score": 0.91, "sentiment": "negative", "sentiment_score": 0.8,
        "topic": "flooding", "department": "construction", "topic_score": 0.87, "department_score": 0.42,
        "issue_id": "iss-1",
        "areas": ["hcmc", "fd:thu-duc", "w:26800"],
        "locations": [Location(text="Thủ Đức", start=0, end=7, level="district", former_district="Thủ Đức",
                               area_ids=["fd:thu-duc"]).to_dict()],
        "processed_at": T0 + timedelta(hours=2),
    })
    data.update(kwargs)
    return Mention.from_dict(data)


def corpus() -> list[Mention]:
    """Six enriched mentions spread over sources, areas, topics, sentiments and days."""
    base: list[tuple[str, str, str, str, int, dict[str, Any]]] = [
        ("m1", "Ngập nước nghiêm trọng ở Thủ Đức", "Đường Võ Văn Ngân ngập nước sâu sau cơn mưa lớn.",
         "vnexpress.net", 0, dict(topic="flooding", sentiment="negative", department="construction",
                                  areas=["hcmc", "fd:thu-duc"], civic=True, issue_id="iss-flood")),
        ("m2", "Kẹt xe kéo dài trên cầu Sài Gòn", "Giao thông ùn tắc nhiều giờ ở Bình Thạnh.",
         "tuoitre.vn", 1, dict(topic="traffic", sentiment="negative", department="transport",
                               areas=["hcmc", "fd:binh-thanh"], civic=True, issue_id="iss-traffic")),
        ("m3", "Quận 7 khai trương công viên mới", "Người dân vui mừng với công viên ven sông.",
         "thanhnien.vn", 2, dict(topic="environment", sentiment="positive", department=None, department_score=0.0,
                                 areas=["hcmc", "fd:quan-7"], civic=True, issue_id=None)),
        ("m4", "Nước ngập sau mưa ở Quận 7", "Nhiều tuyến đường Quận 7 bị ngập.",
         "vnexpress.net", 3, dict(topic="flooding", sentiment="neutral", department="construction",
                                  areas=["hcmc", "fd:quan-7", "w:27487"], civic=True, issue_id="iss-flood")),
        ("m5", "Giá vàng hôm nay", "Giá vàng trong nước tăng nhẹ.",
         "facebook:page/1", 4, dict(topic=None, sentiment="neutral", department=None, areas=[],
                                    topic_score=0.0, department_score=0.0,
                                    civic=False, issue_id=None)),
        ("m6", "Rác thải ùn ứ ở Thủ Đức", "Bãi rác tự phát gây ô nhiễm ở Thủ Đức.",
         "tuoitre.vn", 5, dict(topic="waste", sentiment="negative", department="environment",
                               areas=["hcmc", "fd:thu-duc", "w:26800"], civic=True, issue_id="iss-waste")),
    ]
    out = []
    for mid, title, text, source, day, fields in base:
        m = make_mention(mid, title=title, text=text, source=source, published_at=T0 + timedelta(days=day),
                         crawled_at=T0 + timedelta(days=day, hours=1))
        out.append(enriched(m, **fields, language="vi"))
    return out


def ids(page_or_list: SearchPage | list[Mention]) -> list[str]:
    if isinstance(page_or_list, SearchPage):
        return [h.mention.id for h in page_or_list.hits]
    return [m.id for m in page_or_list]


def cond(field: str, op: str, value: Any) -> dict[str, Any]:
    return {"field": field, "operator": op, "value": value}


def make_issue(iid: str, **kwargs: Any) -> Issue:
    data: dict[str, Any] = dict(id=iid, label=f"Ngập nước {iid}", topic="flooding", department="construction",
                                area_ids=["hcmc", "fd:thu-duc"], keywords=["ngập", "mưa"],
                                first_seen=T0, last_seen=T0 + timedelta(days=1), mention_count=3)
    data.update(kwargs)
    return Issue(**data)


def make_entry(area: str, rank: int, period: str = "day", key: str = "2025-11-20",
               **kwargs: Any) -> RankingEntry:
    data: dict[str, Any] = dict(area_id=area, period=period, period_key=key, rank=rank,
                                issue_id=f"iss-{rank}",
                                score=10.0 / max(rank, 1), score_parts={"volume": 1.5, "negativity": 0.25},
                                mention_count=10 - rank, source_count=2,
                                sentiment_counts={"negative": 3, "neutral": 1, "positive": 0},
                                evidence_ids=["m1", "m4"])
    data.update(kwargs)
    return RankingEntry(**data)


class StoreContract:
    """The behaviour every `Store` backend must show. Needs a `store` fixture (empty store)."""

    # -- protocol

    def test_implements_protocol(self, store: Store) -> None:
        assert isinstance(store, Store)

    # -- writes: idempotency, updates, enrichment

    def test_write_is_idempotent(self, store: Store) -> None:
        m = make_mention("a", title="Ngập nước", text="Mưa lớn")
        assert store.write_mentions([m]) == WriteResult(inserted=1)
        assert store.write_mentions([m]) == WriteResult(unchanged=1)
        assert store.count_mentions() == 1
        assert store.search("ngap").total == 1

    def test_same_id_twice_in_one_batch_is_stored_once(self, store: Store) -> None:
        m = make_mention("a")
        result = store.write_mentions([m, m, make_mention("b")])
        assert (result.inserted, result.updated, result.unchanged) == (2, 0, 1)
        assert store.count_mentions() == 2

    def test_empty_write(self, store: Store) -> None:
        assert store.write_mentions([]) == WriteResult()
        assert store.write_mentions(iter(())) == WriteResult()

    def test_write_accepts_a_generator(self, store: Store) -> None:
        result = store.write_mentions(make_mention(f"g{i}") for i in range(5))
        assert result.inserted == 5 and store.count_mentions() == 5

    def test_recrawl_with_new_crawled_at_is_unchanged(self, store: Store) -> None:
        store.write_mentions([make_mention("a", crawled_at=T0)])
        again = make_mention("a", crawled_at=T0 + timedelta(days=3))
        assert store.write_mentions([again]) == WriteResult(unchanged=1)
        got = store.get_mention("a")
        assert got is not None and got.crawled_at == T0  # first crawl time kept

    def test_changed_title_is_an_update(self, store: Store) -> None:
        store.write_mentions([make_mention("a", title="Cũ"), make_mention("b")])
        result = store.write_mentions([make_mention("a", title="Mới"), make_mention("b")])
        assert result == WriteResult(updated=1, unchanged=1)
        got = store.get_mention("a")
        assert got is not None and got.title == "Mới"
        assert store.count_mentions() == 2

    def test_enrichment_survives_recrawl(self, store: Store) -> None:
        m = make_mention("a", title="Ngập ở Thủ Đức", text="Mưa lớn gây ngập.")
        store.write_mentions([m])
        assert store.update_enrichment([enriched(m)]) == 1
        recrawl = make_mention("a", title="Ngập ở Thủ Đức", text="Mưa lớn gây ngập.",
                               crawled_at=T0 + timedelta(days=1))
        assert recrawl.processed_at is None and recrawl.civic is None
        assert store.write_mentions([recrawl]) == WriteResult(unchanged=1)
        got = store.get_mention("a")
        assert got is not None
        assert got.civic is True and got.civic_score == pytest.approx(0.91)
        assert (got.topic_score, got.department_score) == (pytest.approx(0.87), pytest.approx(0.42))
        assert (got.sentiment, got.topic, got.department, got.issue_id) == (
            "negative", "flooding", "construction", "iss-1")
        assert got.areas == ["hcmc", "fd:thu-duc", "w:26800"]
        assert got.locations[0].former_district == "Thủ Đức"
        assert got.processed_at == T0 + timedelta(hours=2)
        assert store.unprocessed_mentions() == []
        assert store.count_mentions(mention_filters(area="fd:thu-duc")) == 1

    def test_recrawl_with_other_metadata_keeps_enrichment(self, store: Store) -> None:
        m = make_mention("a", title="Ngập", text="Mưa")
        store.write_mentions([m])
        store.update_enrichment([enriched(m)])
        moved = make_mention("a", title="Ngập", text="Mưa", author="Phóng viên A")
        assert store.write_mentions([moved]) == WriteResult(updated=1)
        got = store.get_mention("a")
        assert got is not None and got.author == "Phóng viên A"
        assert got.processed_at is not None and got.topic == "flooding"

    def test_changed_text_resets_processed_at_and_reindexes(self, store: Store) -> None:
        m = make_mention("a", title="Kẹt xe", text="Kẹt xe ở cầu Sài Gòn")
        store.write_mentions([m])
        store.update_enrichment([enriched(m)])
        changed = make_mention("a", title="Kẹt xe", text="Ngập nước ở Quận 7",
                               crawled_at=T0 + timedelta(days=2))
        assert store.write_mentions([changed]) == WriteResult(updated=1)
        got = store.get_mention("a")
        assert got is not None
        assert got.text == "Ngập nước ở Quận 7" and got.processed_at is None
        assert got.crawled_at == T0 + timedelta(days=2)
        assert ids(store.unprocessed_mentions()) == ["a"]
        assert store.search("quan 7").total == 1
        assert store.search("sai gon").total == 0  # the old text is no longer indexed
        assert store.search("ket xe").total == 1  # the title still is

    def test_story_id_round_trip_and_kept_by_a_writer_that_knows_none(self, store: Store) -> None:
        """Syndication: the story id is stored; a write without one keeps it, another one replaces it."""
        store.write_mentions([make_mention("a", story_id="story-a"), make_mention("b")])
        got = store.get_mention("a")
        assert got is not None and got.story_id == "story-a"
        assert [m.story_id for m in store.get_mentions(["a", "b"])] == ["story-a", None]
        assert store.write_mentions([make_mention("a", crawled_at=T0 + timedelta(days=1))]) == WriteResult(
            unchanged=1)
        got = store.get_mention("a")
        assert got is not None and got.story_id == "story-a"
        assert store.write_mentions([enriched(make_mention("a"))]) == WriteResult(updated=1)
        assert store.get_mention("a").story_id == "story-a"  # type: ignore[union-attr]
        result = store.write_mentions([make_mention("a", story_id="story-b"), make_mention("b", story_id="a")])
        assert result == WriteResult(updated=2)
        assert {m.id: m.story_id for m in store.iter_mentions()} == {"a": "story-b", "b": "a"}
        # within one batch too: the later copy without a story keeps the earlier one's
        result = store.write_mentions([make_mention("c", story_id="story-c"), make_mention("c")])
        assert result == WriteResult(inserted=1, unchanged=1)
        assert store.get_mention("c").story_id == "story-c"  # type: ignore[union-attr]

    def test_write_with_enrichment_stores_it(self, store: Store) -> None:
        m = enriched(make_mention("a"))
        store.write_mentions([m])
        got = store.get_mention("a")
        assert got == m
        newer = enriched(make_mention("a"), topic="traffic", processed_at=T0 + timedelta(days=1))
        assert store.write_mentions([newer]) == WriteResult(updated=1)
        got = store.get_mention("a")
        assert got is not None and got.topic == "traffic"

    def test_enriched_rewrite_moves_area_membership(self, store: Store) -> None:
        store.write_mentions([enriched(make_mention("a"), areas=["hcmc", "fd:quan-7"])])
        later = T0 + timedelta(days=1)
        store.write_mentions([enriched(make_mention("a"), areas=["hcmc", "fd:go-vap"], processed_at=later)])
        assert store.count_mentions(mention_filters(area="fd:quan-7")) == 0
        assert ids(store.search(None, mention_filters(area="fd:go-vap"))) == ["a"]

    def test_routing_scores_round_trip(self, store: Store) -> None:
        m = make_mention("a")
        store.write_mentions([m])
        got = store.get_mention("a")
        assert got is not None and (got.topic_score, got.department_score) == (None, None)
        assert store.update_enrichment([enriched(m, topic_score=0.9312, department_score=0.2875)]) == 1
        got = store.get_mention("a")
        assert got is not None and (got.topic_score, got.department_score) == (0.9312, 0.2875)
        # a later enrichment replaces them; 0.0 (not_civic / none) is kept as 0.0, not as None
        later = T0 + timedelta(days=1)
        store.write_mentions([enriched(m, civic=False, topic=None, department=None, topic_score=0.0,
                                       department_score=0.0, processed_at=later)])
        got = store.get_mention("a")
        assert got is not None and (got.topic_score, got.department_score) == (0.0, 0.0)
        store.update_enrichment([enriched(m, topic_score=0.7, department_score=None)])
        got = store.get_mention("a")
        assert got is not None and (got.topic_score, got.department_score) == (0.7, None)
        assert [x.department_score for x in store.get_mentions(["a"])] == [None]

    def test_update_enrichment_skips_unknown_ids(self, store: Store) -> None:
        a, b = make_mention("a"), make_mention("b")
        store.write_mentions([a])
        assert store.update_enrichment([enriched(a), enriched(b)]) == 1
        assert store.get_mention("b") is None
        assert store.update_enrichment([]) == 0

    def test_update_enrichment_moves_area_membership(self, store: Store) -> None:
        m = make_mention("a")
        store.write_mentions([m])
        store.update_enrichment([enriched(m, areas=["hcmc", "fd:quan-7"])])
        assert store.count_mentions(mention_filters(area="fd:quan-7")) == 1
        store.update_enrichment([enriched(m, areas=["hcmc", "fd:binh-thanh"])])
        assert store.count_mentions(mention_filters(area="fd:quan-7")) == 0
        assert store.count_mentions(mention_filters(area="fd:binh-thanh")) == 1
        assert store.count_mentions(mention_filters(area="hcmc")) == 1

    def test_update_enrichment_ignores_crawl_fields(self, store: Store) -> None:
        m = make_mention("a", title="Gốc", text="Nội dung gốc")
        store.write_mentions([m])
        store.update_enrichment([enriched(m, title="Khác", text="Khác")])
        got = store.get_mention("a")
        assert got is not None and (got.title, got.text) == ("Gốc", "Nội dung gốc")
        assert got.processed_at is not None

    def test_update_enrichment_without_processed_at_marks_processed(self, store: Store) -> None:
        m = make_mention("a")
        store.write_mentions([m])
        store.update_enrichment([enriched(m, processed_at=None)])
        got = store.get_mention("a")
        assert got is not None and got.processed_at is not None
        assert store.unprocessed_mentions() == []

    def test_malformed_mention_writes_nothing(self, store: Store) -> None:
        bad = make_mention("")
        with pytest.raises(ValueError):
            store.write_mentions([make_mention("ok"), bad])
        assert store.count_mentions() == 0

    # -- reads

    def test_round_trip_every_field(self, store: Store) -> None:
        local = timezone(timedelta(hours=7))
        m = enriched(make_mention("a", title="Tiêu đề <b>", text="Dòng 1\nDòng 2 “ngoặc” & 'nháy'",
                                  published_at=datetime(2025, 11, 20, 15, 30, 12, 345678, tzinfo=local),
                                  author="Nguyễn Văn A"), sentiment_score=0.123456789)
        store.write_mentions([m])
        got = store.get_mention("a")
        assert got == m
        assert got is not None and got.published_at.utcoffset() is not None
        assert got.published_at == datetime(2025, 11, 20, 8, 30, 12, 345678, tzinfo=UTC)
        assert store.get_mention("missing") is None

    def test_get_mentions_keeps_order(self, store: Store) -> None:
        store.write_mentions(corpus())
        assert ids(store.get_mentions(["m4", "m1", "nope", "m6"])) == ["m4", "m1", "m6"]
        assert store.get_mentions([]) == []

    def test_get_mentions_many_ids(self, store: Store) -> None:
        store.write_mentions([make_mention(f"x{i:04d}") for i in range(1200)])
        wanted = [f"x{i:04d}" for i in range(1199, -1, -3)]
        assert ids(store.get_mentions(wanted)) == wanted

    def test_unprocessed_oldest_crawled_first(self, store: Store) -> None:
        ms = [make_mention("c", crawled_at=T0 + timedelta(hours=1)),
              make_mention("b", crawled_at=T0 + timedelta(hours=1)),
              make_mention("a", crawled_at=T0 + timedelta(hours=3)),
              make_mention("d", crawled_at=T0)]
        store.write_mentions(ms)
        assert ids(store.unprocessed_mentions()) == ["d", "b", "c", "a"]
        assert ids(store.unprocessed_mentions(limit=2)) == ["d", "b"]
        store.update_enrichment([enriched(ms[3])])
        assert ids(store.unprocessed_mentions()) == ["b", "c", "a"]

    def test_iter_mentions_oldest_published_first(self, store: Store) -> None:
        ms = corpus()
        store.write_mentions(reversed(ms))
        assert ids(list(store.iter_mentions(batch_size=2))) == ["m1", "m2", "m3", "m4", "m5", "m6"]
        flood = cond("topic", "==", "flooding")
        assert ids(list(store.iter_mentions(flood, batch_size=1))) == ["m1", "m4"]

    def test_iter_mentions_same_published_at(self, store: Store) -> None:
        store.write_mentions([make_mention(f"s{i}") for i in range(7)])
        got = ids(list(store.iter_mentions(batch_size=3)))
        assert sorted(got) == [f"s{i}" for i in range(7)] and len(got) == 7

    def test_count_mentions(self, store: Store) -> None:
        store.write_mentions(corpus())
        assert store.count_mentions() == 6
        assert store.count_mentions({}) == 6
        assert store.count_mentions(mention_filters(area="fd:thu-duc")) == 2

    # -- search

    @pytest.mark.parametrize("query", ["ngap nuoc", "Ngập Nước", "ngập nước", "NGAP NUOC", "ngẬp  nƯớc"])
    def test_search_ignores_accents_and_case(self, store: Store, query: str) -> None:
        store.write_mentions(corpus())
        assert set(ids(store.search(query))) == {"m1", "m4"}

    def test_search_finds_place_names(self, store: Store) -> None:
        store.write_mentions(corpus())
        assert set(ids(store.search("thu duc"))) == {"m1", "m6"}
        assert set(ids(store.search("Thủ Đức"))) == {"m1", "m6"}
        assert set(ids(store.search("quan 7"))) == {"m3", "m4"}

    def test_search_ands_words(self, store: Store) -> None:
        store.write_mentions(corpus())
        assert ids(store.search("ngap quan 7")) == ["m4"]
        assert ids(store.search("ngap binh thanh")) == []

    def test_search_phrase(self, store: Store) -> None:
        store.write_mentions(corpus())
        assert set(ids(store.search('"ngap nuoc"'))) == {"m1"}
        assert ids(store.search('"nuoc ngap"')) == ["m4"]
        assert set(ids(store.search('"thu duc" rac'))) == {"m6"}
        assert ids(store.search('"ngap')) and set(ids(store.search('"ngap'))) == {"m1", "m4"}

    def test_search_prefix(self, store: Store) -> None:
        store.write_mentions(corpus())
        assert set(ids(store.search("khai*"))) == {"m3"}

    def test_search_relevance(self, store: Store) -> None:
        store.write_mentions([
            make_mention("once", title="Tin tổng hợp",
                         text="Có một điểm ngập nhỏ và nhiều tin khác về giá cả thị trường, thời tiết."),
            make_mention("many", title="Ngập khắp nơi", text="Ngập, ngập nữa, ngập mãi."),
        ])
        page = store.search("ngap")
        assert ids(page) == ["many", "once"]
        assert page.hits[0].score > page.hits[1].score

    def test_search_highlight(self, store: Store) -> None:
        store.write_mentions([make_mention("h", title="Tin", text="Đường <Võ Văn Ngân> NGẬP nước & kẹt xe.")])
        hit = store.search("ngap nuoc").hits[0]
        assert hit.highlight == "Đường &lt;Võ Văn Ngân&gt; <mark>NGẬP</mark> <mark>nước</mark> &amp; kẹt xe."

    def test_search_highlight_title_only_match(self, store: Store) -> None:
        store.write_mentions([make_mention("h", title="Ngập ở Thủ Đức", text="Mưa lớn chiều qua.")])
        hit = store.search("thu duc").hits[0]
        assert hit.highlight == "Ngập ở <mark>Thủ</mark> <mark>Đức</mark>"

    def test_search_highlight_long_text_is_cut_around_the_match(self, store: Store) -> None:
        text = "Mở đầu dài dòng. " * 60 + "Người dân phản ánh ngập nước ở Thủ Đức. " + "Kết thúc. " * 60
        store.write_mentions([make_mention("h", title="Tin", text=text)])
        highlight = store.search("ngap nuoc").hits[0].highlight
        assert highlight is not None
        assert "<mark>ngập</mark> <mark>nước</mark>" in highlight
        assert highlight.startswith("…") and highlight.endswith("…")
        assert len(highlight) < 400

    @pytest.mark.parametrize("query", HOSTILE_QUERIES)
    def test_hostile_queries_never_raise(self, store: Store, query: str) -> None:
        store.write_mentions(corpus())
        page = store.search(query, limit=5)
        assert isinstance(page, SearchPage)
        assert page.total >= len(page.hits)

    def test_query_without_searchable_words_returns_nothing(self, store: Store) -> None:
        store.write_mentions(corpus())
        for query in ['"', "*", "()", "--", "''"]:
            assert store.search(query).total == 0

    def test_sql_in_query_is_only_text(self, store: Store) -> None:
        store.write_mentions(corpus())
        store.search("'; DROP TABLE mentions; --")
        assert store.count_mentions() == 6

    def test_operator_words_are_plain_words(self, store: Store) -> None:
        store.write_mentions([make_mention("op", title="Chữ AND và OR", text="NOT NEAR")])
        assert ids(store.search("and or")) == ["op"]
        assert ids(store.search("NOT")) == ["op"]

    @pytest.mark.parametrize("query", [None, "", "   "])
    def test_no_query_lists_newest_first(self, store: Store, query: str | None) -> None:
        store.write_mentions(corpus())
        page = store.search(query)
        assert page.total == 6
        assert ids(page) == ["m6", "m5", "m4", "m3", "m2", "m1"]
        assert all(h.highlight is None for h in page.hits)

    def test_search_with_filters(self, store: Store) -> None:
        store.write_mentions(corpus())
        assert ids(store.search("ngap", mention_filters(area="fd:quan-7"))) == ["m4"]
        assert ids(store.search("thu duc", mention_filters(topic="waste"))) == ["m6"]
        assert ids(store.search(None, mention_filters(area="fd:thu-duc"))) == ["m6", "m1"]

    def test_pagination(self, store: Store) -> None:
        store.write_mentions([make_mention(f"p{i:02d}", text=f"ngập số {i}",
                                           published_at=T0 + timedelta(hours=i)) for i in range(25)])
        for query in (None, "ngap"):
            pages = [store.search(query, limit=10, offset=o) for o in (0, 10, 20, 30)]
            assert [p.total for p in pages] == [25, 25, 25, 25]
            assert [len(p.hits) for p in pages] == [10, 10, 5, 0]
            seen = [i for p in pages for i in ids(p)]
            assert len(seen) == len(set(seen)) == 25
        assert ids(store.search(None, limit=3)) == ["p24", "p23", "p22"]
        assert ids(store.search(None, limit=2, offset=3)) == ["p21", "p20"]
        assert store.search(None, limit=0).hits == [] and store.search(None, limit=0).total == 25

    # -- filters

    @pytest.mark.parametrize("filters, expected", [
        (cond("topic", "==", "flooding"), {"m1", "m4"}),
        (cond("topic", "!=", "flooding"), {"m2", "m3", "m5", "m6"}),
        (cond("topic", "in", ["traffic", "waste"]), {"m2", "m6"}),
        (cond("topic", "not in", ["traffic", "waste"]), {"m1", "m3", "m4", "m5"}),
        (cond("topic", "==", None), {"m5"}),
        (cond("topic", "!=", None), {"m1", "m2", "m3", "m4", "m6"}),
        (cond("department", "==", "construction"), {"m1", "m4"}),
        (cond("department", "in", ["environment", None]), {"m3", "m5", "m6"}),
        (cond("department", "not in", ["construction", None]), {"m2", "m6"}),
        (cond("sentiment", "==", "negative"), {"m1", "m2", "m6"}),
        (cond("sentiment", "not in", ["negative"]), {"m3", "m4", "m5"}),
        (cond("source", "==", "vnexpress.net"), {"m1", "m4"}),
        (cond("source", "in", ["tuoitre.vn", "facebook:page/1"]), {"m2", "m5", "m6"}),
        (cond("civic", "==", True), {"m1", "m2", "m3", "m4", "m6"}),
        (cond("civic", "==", False), {"m5"}),
        (cond("civic", "!=", True), {"m5"}),
        (cond("issue_id", "==", "iss-flood"), {"m1", "m4"}),
        (cond("issue_id", "in", []), set()),
        (cond("issue_id", "not in", []), {"m1", "m2", "m3", "m4", "m5", "m6"}),
        (cond("language", "==", "vi"), {"m1", "m2", "m3", "m4", "m5", "m6"}),
        (cond("language", "==", "en"), set()),
        (cond("area", "==", "hcmc"), {"m1", "m2", "m3", "m4", "m6"}),
        (cond("area", "==", "w:26800"), {"m6"}),
        (cond("area", "!=", "hcmc"), {"m5"}),
        (cond("area", "in", ["fd:quan-7", "fd:binh-thanh"]), {"m2", "m3", "m4"}),
        (cond("area", "not in", ["fd:thu-duc", "fd:quan-7"]), {"m2", "m5"}),
        (cond("area", "in", []), set()),
        (cond("published_at", ">", T0 + timedelta(days=3)), {"m5", "m6"}),
        (cond("published_at", ">=", T0 + timedelta(days=3)), {"m4", "m5", "m6"}),
        (cond("published_at", "<", T0 + timedelta(days=1)), {"m1"}),
        (cond("published_at", "<=", (T0 + timedelta(days=1)).isoformat()), {"m1", "m2"}),
        (cond("published_at", ">=", "2025-11-22T15:00:00+07:00"), {"m3", "m4", "m5", "m6"}),
        (cond("published_at", ">=", "2025-11-22T08:00:00"), {"m3", "m4", "m5", "m6"}),  # naive = UTC
        (cond("published_at", "==", T0 + timedelta(days=2)), {"m3"}),
        (cond("published_at", "in", [T0, T0 + timedelta(days=5)]), {"m1", "m6"}),
        ({"operator": "AND", "conditions": [cond("topic", "==", "flooding"),
                                            cond("area", "==", "fd:quan-7")]}, {"m4"}),
        ({"operator": "OR", "conditions": [cond("topic", "==", "traffic"), cond("area", "==", "w:26800")]},
         {"m2", "m6"}),
        ({"operator": "NOT", "conditions": [cond("sentiment", "==", "negative"),
                                            cond("area", "==", "fd:thu-duc")]}, {"m2", "m3", "m4", "m5"}),
        ({"operator": "AND", "conditions": [
            {"operator": "OR", "conditions": [cond("source", "==", "tuoitre.vn"),
                                              cond("source", "==", "thanhnien.vn")]},
            {"operator": "NOT", "conditions": [cond("topic", "==", "waste")]}]}, {"m2", "m3"}),
        ({"operator": "AND", "conditions": []}, {"m1", "m2", "m3", "m4", "m5", "m6"}),
        ({"operator": "OR", "conditions": []}, set()),
        ({}, {"m1", "m2", "m3", "m4", "m5", "m6"}),
        (None, {"m1", "m2", "m3", "m4", "m5", "m6"}),
    ])
    def test_filters(self, store: Store, filters: dict[str, Any] | None, expected: set[str]) -> None:
        store.write_mentions(corpus())
        assert store.count_mentions(filters) == len(expected)
        assert set(ids(store.search(None, filters, limit=100))) == expected
        assert set(ids(list(store.iter_mentions(filters)))) == expected

    def test_date_range(self, store: Store) -> None:
        store.write_mentions(corpus())
        f = mention_filters(since=T0 + timedelta(days=1), until=T0 + timedelta(days=4))
        assert ids(list(store.iter_mentions(f))) == ["m2", "m3", "m4"]  # until is exclusive
        f = mention_filters(area="fd:thu-duc", since=T0 + timedelta(days=1))
        assert ids(store.search(None, f)) == ["m6"]

    @pytest.mark.parametrize("filters", [
        cond("colour", "==", "red"),
        cond("topic", "~", "x"),
        cond("topic", ">", "a"),
        cond("topic", "in", "flooding"),
        cond("topic", "==", 3),
        cond("area", "==", 7),
        cond("civic", "==", "yes"),
        cond("published_at", ">", "not a date"),
        cond("published_at", ">", None),
        {"operator": "XOR", "conditions": []},
        {"operator": "AND", "conditions": "nope"},
        {"operator": "AND", "conditions": [cond("nope", "==", 1)]},
    ])
    def test_bad_filters_raise(self, store: Store, filters: dict[str, Any]) -> None:
        store.write_mentions(corpus())
        with pytest.raises(FilterError):
            store.count_mentions(filters)
        with pytest.raises(FilterError):
            store.search("ngap", filters)
        with pytest.raises(FilterError):
            list(store.iter_mentions(filters))

    # -- issues

    def test_issues_round_trip_and_upsert(self, store: Store) -> None:
        a, b = make_issue("a"), make_issue("b", last_seen=T0 + timedelta(days=5), department=None)
        assert store.write_issues([a, b]) == WriteResult(inserted=2)
        assert store.get_issue("a") == a and store.get_issue("b") == b
        assert store.get_issue("zzz") is None
        assert store.write_issues([a]) == WriteResult(unchanged=1)
        a2 = make_issue("a", mention_count=9, keywords=["ngập", "triều cường"])
        assert store.write_issues([a2, b]) == WriteResult(updated=1, unchanged=1)
        assert store.get_issue("a") == a2
        assert [i.id for i in store.list_issues()] == ["b", "a"]  # most recently seen first
        assert store.write_issues([]) == WriteResult()

    # -- rankings

    def test_rankings_round_trip(self, store: Store) -> None:
        entries = [make_entry("hcmc", r) for r in (2, 1, 3)] + [make_entry("fd:quan-7", 1)]
        assert store.replace_rankings("day", "2025-11-20", entries) == 4
        top = store.top_issues("hcmc", "day", "2025-11-20")
        assert [e.rank for e in top] == [1, 2, 3]
        assert top[0] == make_entry("hcmc", 1)
        assert [e.rank for e in store.top_issues("hcmc", "day", "2025-11-20", limit=2)] == [1, 2]
        assert store.top_issues("fd:quan-7", "day", "2025-11-20") == [make_entry("fd:quan-7", 1)]
        assert store.top_issues("fd:quan-1", "day", "2025-11-20") == []
        assert store.top_issues("hcmc", "week", "2025-11-20") == []

    def test_replace_rankings_replaces_one_period_only(self, store: Store) -> None:
        store.replace_rankings("day", "2025-11-20", [make_entry("hcmc", 1), make_entry("fd:quan-7", 1)])
        store.replace_rankings("day", "2025-11-21", [make_entry("hcmc", 1, key="2025-11-21")])
        store.replace_rankings("week", "2025-W47", [make_entry("hcmc", 1, period="week", key="2025-W47")])
        store.replace_rankings("day", "2025-11-20", [make_entry("hcmc", 1, issue_id="new")])
        assert [e.issue_id for e in store.top_issues("hcmc", "day", "2025-11-20")] == ["new"]
        assert store.top_issues("fd:quan-7", "day", "2025-11-20") == []  # all areas replaced
        assert len(store.top_issues("hcmc", "day", "2025-11-21")) == 1
        assert len(store.top_issues("hcmc", "week", "2025-W47")) == 1
        assert store.replace_rankings("day", "2025-11-21", []) == 0
        assert store.top_issues("hcmc", "day", "2025-11-21") == []

    def test_ranking_keys_newest_first(self, store: Store) -> None:
        for key in ("2025-11-19", "2025-11-21", "2025-11-20"):
            store.replace_rankings("day", key, [make_entry("hcmc", 1, key=key)])
        store.replace_rankings("week", "2025-W47", [make_entry("hcmc", 1, period="week", key="2025-W47")])
        assert store.ranking_keys("day") == ["2025-11-21", "2025-11-20", "2025-11-19"]
        assert store.ranking_keys("week") == ["2025-W47"]
        assert store.ranking_keys("month") == []

    @pytest.mark.parametrize("period, key, entries", [
        ("month", "2025-11", []),
        ("day", "2025-11-20", [make_entry("hcmc", 1, key="2025-11-21")]),
        ("day", "2025-11-20", [make_entry("hcmc", 1, period="week")]),
        ("day", "2025-11-20", [make_entry("hcmc", 1), make_entry("hcmc", 1, issue_id="dup")]),
        ("day", "2025-11-20", [make_entry("hcmc", 0)]),
    ])
    def test_bad_rankings_change_nothing(self, store: Store, period: str, key: str,
                                         entries: list[RankingEntry]) -> None:
        store.replace_rankings("day", "2025-11-20", [make_entry("hcmc", 1, issue_id="kept")])
        with pytest.raises(ValueError):
            store.replace_rankings(period, key, entries)
        assert [e.issue_id for e in store.top_issues("hcmc", "day", "2025-11-20")] == ["kept"]

    # -- state

    def test_state(self, store: Store) -> None:
        assert store.get_state("crawl:vnexpress") is None
        store.set_state("crawl:vnexpress", "2025-11-20T08:00:00Z")
        store.set_state("other", "x")
        store.set_state("crawl:vnexpress", "2025-11-21T08:00:00Z")
        assert store.get_state("crawl:vnexpress") == "2025-11-21T08:00:00Z"
        assert store.get_state("other") == "x"
