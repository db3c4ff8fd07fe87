"""Syndication: a mention's story id is stored, and a writer that knows no story keeps it."""

from datetime import UTC, datetime
from pathlib import Path

from langnghe.records import Mention
from storage.sqlite import SQLiteStore


def _mention(story_id: str | None, text: str = "Ngập nước đường Nguyễn Hữu Cảnh") -> Mention:
    return Mention(id="m1", source="tuoitre.vn", url="https://tuoitre.vn/a.html", title="Ngập", text=text,
                   published_at=datetime(2025, 11, 20, tzinfo=UTC), story_id=story_id)


def test_story_id_round_trip_and_kept(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "s.sqlite3") as store:
        store.write_mentions([_mention("story-a")])
        assert store.get_mention("m1").story_id == "story-a"  # type: ignore[union-attr]
        assert store.write_mentions([_mention(None)]).unchanged == 1
        assert store.get_mention("m1").story_id == "story-a"  # type: ignore[union-attr]
        store.write_mentions([_mention("story-b")])
        assert store.get_mention("m1").story_id == "story-b"  # type: ignore[union-attr]
