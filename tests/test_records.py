"""The records that flow through the pipeline."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from langnghe.records import Location, Mention, mention_id, period_key


def test_mention_id_is_stable_and_keyed() -> None:
    assert mention_id("https://vnexpress.net/a.html") == mention_id("https://vnexpress.net/a.html")
    assert mention_id("https://vnexpress.net/a.html") != mention_id("https://vnexpress.net/b.html")
    assert mention_id(source="facebook", native_id="123") != mention_id(source="youtube", native_id="123")
    with pytest.raises(ValueError):
        mention_id()


def test_mention_round_trip_keeps_aware_datetimes() -> None:
    m = Mention(id="x", source="s", url="u", title="T", text="b",
                published_at="2025-11-20T08:00:00+07:00",  # type: ignore[arg-type]
                locations=[Location(text="Q.7", start=0, end=3, level="district",
                                    former_district="Quận 7", area_ids=["hcmc", "fd:quan-7"])],
                areas=["hcmc", "fd:quan-7"])
    assert m.published_at.utcoffset() == timedelta(hours=7)
    back = Mention.from_dict(m.to_dict())
    assert back == m
    naive = Mention(id="y", source="s", url="u", title="", text="b", published_at=datetime(2025, 1, 1))
    assert naive.published_at.tzinfo is not None


def test_period_key_uses_city_time() -> None:
    # 20:00 UTC on 23 Nov is 03:00 on 24 Nov in Ho Chi Minh City
    when = datetime(2025, 11, 23, 20, 0, tzinfo=UTC)
    assert period_key("day", when) == "2025-11-24"
    assert period_key("week", when) == "2025-W48"
    morning = datetime(2025, 11, 24, 1, 0, tzinfo=timezone(timedelta(hours=7)))
    assert period_key("day", morning) == "2025-11-24"
    with pytest.raises(ValueError):
        period_key("month", when)
