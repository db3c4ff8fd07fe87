"""Tests of nlp.ranking: per-area top issues for days and ISO weeks, and the rank job."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from langnghe.records import Mention, RankingEntry
from nlp.issues import group_issues
from nlp.ranking import (
    WEIGHTS,
    period_bounds,
    previous_key,
    rank_mentions,
    rank_period,
    score_parts,
    update_rankings,
)
from tests.test_issues import (
    BT,
    CITY,
    Q7,
    W_TAN_THUAN,
    W_THANH_MY_TAY,
    _mention,
    planted_mentions,
)

DAY = datetime(2025, 11, 20, tzinfo=CITY)  # a Thursday of ISO week 2025-W47
DAY_KEY = "2025-11-20"
WEEK_KEY = "2025-W47"


def _grouped(ms: list[Mention]) -> list[Mention]:
    res = group_issues(ms)
    for m in ms:
        m.issue_id = res.assignments.get(m.id)
    return ms


def _top(entries: list[RankingEntry], area: str) -> list[RankingEntry]:
    return sorted((e for e in entries if e.area_id == area), key=lambda e: e.rank)


def _flood_issue(ms: list[Mention]) -> str:
    return next(str(m.issue_id) for m in ms if m.topic == "flooding" and "Nguyễn Hữu Cảnh" in m.content)


def _previous_day() -> list[Mention]:
    """One earlier flood report (Nguyễn Hữu Cảnh) and three garbage ones (Quận 7) the day before."""
    prev = DAY - timedelta(days=1)
    out = [_mention(500, "vnexpress.net", "Đường Nguyễn Hữu Cảnh ngập nước sau mưa lớn",
                    "Mưa lớn chiều 19/11 làm đường Nguyễn Hữu Cảnh ngập nước, xe chết máy.",
                    [W_THANH_MY_TAY, BT], "negative", "flooding", "construction",
                    prev.replace(hour=16), "prev")]
    for k in range(3):
        out.append(_mention(510 + k, f"source{k}.vn", "Rác thải chất đống ở chân cầu Tân Thuận",
                            "Rác thải chất đống bốc mùi hôi ở chân cầu Tân Thuận, người dân bức xúc.",
                            [W_TAN_THUAN, Q7], "negative", "environment", "commune_pc",
                            prev.replace(hour=9 + k), "prev"))
    return out


# --------------------------------------------------------------------------- periods and parts


def test_period_bounds_and_previous() -> None:
    start, end = period_bounds("day", DAY_KEY)
    assert start == DAY and end - start == timedelta(days=1)
    wstart, wend = period_bounds("week", WEEK_KEY)
    assert wstart == datetime(2025, 11, 17, tzinfo=CITY) and wend - wstart == timedelta(days=7)
    assert previous_key("day", "2025-01-01") == "2024-12-31"
    assert previous_key("week", "2025-W01") == "2024-W52"
    with pytest.raises(ValueError):
        period_bounds("month", "2025-11")
    with pytest.raises(ValueError):
        period_bounds("week", "2025-47")


def test_score_parts_formula() -> None:
    parts = score_parts(8, 4, 7, 1, 3600.0, 86400.0)
    assert parts["volume"] == pytest.approx(WEIGHTS["volume"] * math.log(9), abs=1e-6)
    assert parts["sources"] == pytest.approx(WEIGHTS["sources"] * math.log(5), abs=1e-6)
    assert parts["negativity"] == pytest.approx(WEIGHTS["negativity"] * 7 / 8, abs=1e-6)
    assert parts["growth"] == pytest.approx(WEIGHTS["growth"] * math.tanh(math.log(9 / 2)), abs=1e-6)
    assert parts["recency"] == pytest.approx(WEIGHTS["recency"] * 2 ** (-1 / 12), abs=1e-6)
    assert score_parts(2, 1, 0, 5, 0, 86400)["growth"] < 0
    assert score_parts(2, 1, 0, 2, 0, 86400)["growth"] == 0


# --------------------------------------------------------------------------- planted day


def test_planted_day_ranking() -> None:
    ms = _grouped(planted_mentions(DAY) + _previous_day())
    entries = rank_mentions(ms, "day", DAY_KEY, previous=ms)
    flood = _flood_issue(ms)
    for area in (BT, "hcmc"):
        top = _top(entries, area)
        assert top[0].issue_id == flood, area
        assert [e.rank for e in top] == list(range(1, len(top) + 1))
    bt = _top(entries, BT)[0]
    assert bt.mention_count == 8 and bt.source_count == 4
    assert bt.sentiment_counts == {"negative": 7, "neutral": 1, "positive": 0}
    assert set(bt.score_parts) == {"volume", "reach", "sources", "negativity", "growth", "recency"}
    assert bt.score_parts["reach"] == 0  # no syndicated copies: every mention is its own story
    assert bt.score == pytest.approx(sum(bt.score_parts.values()), abs=1e-9)
    assert bt.score_parts["growth"] > 0  # 8 today against 1 the day before
    # evidence: 5 mentions of this issue, the 4 sources first
    flood_ms = {m.id: m for m in ms if m.issue_id == flood}
    assert len(bt.evidence_ids) == 5 and set(bt.evidence_ids) <= set(flood_ms)
    assert len({flood_ms[i].source for i in bt.evidence_ids[:4]}) == 4
    # the city: all civic issues of the day (7), flood first, garbage second
    city = _top(entries, "hcmc")
    assert len(city) == 7 and city[1].mention_count == 3
    assert city[1].sentiment_counts == {"negative": 3, "neutral": 0, "positive": 0}
    # the garbage issue did not grow: 3 reports on both days
    assert city[1].score_parts["growth"] == 0
    # a ward gets only its own mentions: 5 flood reports name Thạnh Mỹ Tây
    ward = _top(entries, W_THANH_MY_TAY)
    assert [(e.issue_id, e.mention_count, e.source_count) for e in ward] == [(flood, 5, 3)]
    q7 = _top(entries, W_TAN_THUAN)
    assert len(q7) == 1 and q7[0].mention_count == 3 and q7[0].source_count == 3
    # Bình Thạnh: the flood and the pothole single; no other district's issue leaks in
    assert len(_top(entries, BT)) == 2
    assert {e.area_id for e in entries if not e.area_id.startswith("dept:")} == {
        "hcmc", BT, W_THANH_MY_TAY, "w:26929", Q7, W_TAN_THUAN, "fd:quan-1", "w:26743",
        "fd:tan-binh", "fd:thu-duc"}
    # department rankings: city-wide, keyed "dept:<code>"
    dept = _top(entries, "dept:construction")
    assert dept[0].issue_id == flood and dept[0].mention_count == 8
    assert {e.area_id for e in entries if e.area_id.startswith("dept:")} == {
        "dept:construction", "dept:commune_pc", "dept:education", "dept:food_safety"}


def test_limit_and_determinism() -> None:
    ms = _grouped(planted_mentions(DAY))
    a = rank_mentions(ms, "day", DAY_KEY, limit=3)
    b = rank_mentions(list(reversed(ms)), "day", DAY_KEY, limit=3)
    assert a == b
    assert len(_top(a, "hcmc")) == 3
    with pytest.raises(ValueError):
        rank_mentions(ms, "day", DAY_KEY, limit=0)


def test_week_aggregates_days() -> None:
    ms = _grouped(planted_mentions(DAY) + _previous_day())
    week = rank_mentions(ms, "week", WEEK_KEY, previous=ms)
    flood = _flood_issue(ms)
    top = _top(week, BT)[0]
    assert top.issue_id == flood and top.mention_count == 9 and top.source_count == 4
    garbage = next(e for e in _top(week, Q7))
    assert garbage.mention_count == 6  # 3 on each day
    assert top.score_parts["growth"] > 0  # nothing the week before


def test_ungrouped_and_not_civic_are_left_out() -> None:
    ms = planted_mentions(DAY)  # no issue ids yet
    assert rank_mentions(ms, "day", DAY_KEY) == []
    ms = _grouped(ms)
    entries = rank_mentions(ms, "day", "2025-11-21")
    assert entries == []


def test_ungrouped_mentions_are_reported_for_the_period_only(caplog: pytest.LogCaptureFixture) -> None:
    current = _grouped(planted_mentions(DAY))
    previous = _previous_day()  # not grouped: a new store's first run
    with caplog.at_level("INFO", logger="nlp.ranking"):
        assert rank_mentions(current, "day", DAY_KEY, previous=previous)
    assert "left out" not in caplog.text
    caplog.clear()
    with caplog.at_level("INFO", logger="nlp.ranking"):
        rank_mentions(current + _previous_day(), "day", previous_key("day", DAY_KEY))
    assert "4 civic mentions without an issue left out" in caplog.text


# --------------------------------------------------------------------------- the rank job


def _store(path: Path) -> Any:
    sqlite = pytest.importorskip("storage.sqlite")
    return sqlite.SQLiteStore(path / "test.sqlite3")


def test_update_rankings_end_to_end_and_idempotent(tmp_path: Path) -> None:
    store = _store(tmp_path)
    ms = planted_mentions(DAY) + _previous_day()
    store.write_mentions(ms)
    now = DAY.replace(hour=23)
    summary = update_rankings(store, now=now, days=3)
    assert summary["days"] == ["2025-11-18", "2025-11-19", DAY_KEY]
    assert summary["weeks"] == [WEEK_KEY]
    issues = {i.id: i for i in store.list_issues()}
    assert summary["issues_new"] == len(issues) == 7
    stored = {m.id: m for m in store.iter_mentions()}
    flood = next(str(m.issue_id) for m in stored.values()
                 if m.topic == "flooding" and "Nguyễn Hữu Cảnh" in m.content)
    assert issues[flood].mention_count == 9
    assert all(m.issue_id for m in stored.values() if m.civic)
    top = store.top_issues(BT, "day", DAY_KEY)
    assert top[0].issue_id == flood and top[0].mention_count == 8
    assert store.top_issues("hcmc", "day", DAY_KEY)[0].issue_id == flood
    assert store.top_issues(BT, "week", WEEK_KEY)[0].mention_count == 9
    assert rank_period(store, "day", DAY_KEY) == [
        e for area in sorted({e.area_id for e in rank_period(store, "day", DAY_KEY)})
        for e in store.top_issues(area, "day", DAY_KEY)]

    # run again: same issues, same ids, same rankings
    before = {a: store.top_issues(a, "day", DAY_KEY) for a in ("hcmc", BT, W_THANH_MY_TAY, Q7)}
    again = update_rankings(store, now=now, days=3)
    assert again["assigned"] == 0 and again["issues_new"] == 0 and again["issues_written"] == 0
    assert {i.id: i for i in store.list_issues()} == issues
    assert {a: store.top_issues(a, "day", DAY_KEY) for a in before} == before

    # the next day: new reports join the existing flood issue
    nxt = DAY + timedelta(days=1)
    new = [
        _mention(700 + k, src, title, text, [W_THANH_MY_TAY, BT], "negative", "flooding", "construction",
                 nxt.replace(hour=7 + k), "next")
        for k, (src, title, text) in enumerate([
            ("nld.com.vn", "Đường Nguyễn Hữu Cảnh lại ngập nước sau mưa lớn",
             "Sáng 21/11, mưa lớn lại khiến đường Nguyễn Hữu Cảnh ngập nước, nhiều xe chết máy."),
            ("facebook:group/cu-dan-binh-thanh", "",
             "Nguyễn Hữu Cảnh ngập nước tiếp rồi, mưa lớn chút là ngập, xe chết máy."),
        ])
    ]
    store.write_mentions(new)
    third = update_rankings(store, now=nxt.replace(hour=12), days=2)
    assert third["issues_new"] == 0
    after = {i.id: i for i in store.list_issues()}
    assert len(after) == 7 and after[flood].mention_count == 11
    assert after[flood].last_seen == new[-1].published_at
    top_next = store.top_issues(BT, "day", "2025-11-21")
    assert top_next[0].issue_id == flood and top_next[0].mention_count == 2
    assert top_next[0].score_parts["growth"] < 0  # 2 today against 8 the day before
    store.close()
