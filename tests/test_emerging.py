"""Tests of nlp.alerts_events: emerging-issue events, raised once."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from langnghe.records import Mention
from nlp.alerts_events import EmergingEvent, detect_emerging, emerging_candidates, stored_events
from nlp.ranking import update_rankings
from tests.test_issues import BT, W_THANH_MY_TAY, _mention
from tests.test_ranking import DAY, DAY_KEY


def _flood(k: int, when, story: str | None = None):  # type: ignore[no-untyped-def]
    m = _mention(k, f"src{k % 5}.vn", "Đường Nguyễn Hữu Cảnh ngập nước sau mưa lớn",
                 f"Mưa lớn làm đường Nguyễn Hữu Cảnh ngập nước, xe chết máy (bản tin {k}).",
                 [W_THANH_MY_TAY, BT], "negative", "flooding", "construction", when, "em")
    if story:
        m.story_id = story  # type: ignore[attr-defined]
    return m


def test_jump_raises_one_event_once(tmp_path: Path) -> None:
    sqlite = pytest.importorskip("storage.sqlite")
    store = sqlite.SQLiteStore(tmp_path / "e.sqlite3")
    # one report a week ago, then six today (two of them copies of one story)
    ms = [_flood(0, DAY - timedelta(days=6, hours=-9))]
    ms += [_flood(k, DAY.replace(hour=8 + k)) for k in range(1, 6)]
    ms.append(_flood(6, DAY.replace(hour=14), story=ms[-1].id))
    ms[-2].story_id = ms[-2].id  # type: ignore[attr-defined]
    store.write_mentions(ms)
    now = DAY.replace(hour=20)
    update_rankings(store, now=now, days=7)
    issue = store.top_issues(BT, "day", DAY_KEY)[0]
    events = detect_emerging(store, now)
    by_area = {e.area_id: e for e in events}
    assert set(by_area) >= {BT, W_THANH_MY_TAY, "hcmc", "dept:construction"}
    e = by_area[BT]
    assert isinstance(e, EmergingEvent) and e.issue_id == issue.issue_id and e.period == DAY_KEY
    # six mentions, five stories — once the store keeps Mention.story_id (crawler work)
    stories = 5 if "story_id" in Mention.__dataclass_fields__ else 6
    assert e.observed == stories
    assert e.baseline == pytest.approx(1 / 7, abs=1e-4)
    assert e.ratio == pytest.approx((stories + 1) / (1 + 1 / 7), abs=1e-3)
    # raised once: a second call finds nothing new, the stored list keeps them
    assert detect_emerging(store, now + timedelta(minutes=5)) == []
    assert {(x.issue_id, x.area_id) for x in stored_events(store)} == {(x.issue_id, x.area_id) for x in events}
    # a steady issue raises nothing: the stricter rule finds no candidate
    assert emerging_candidates(store, now, min_ratio=100.0) == []
    store.close()
