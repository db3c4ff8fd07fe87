"""The whole chain: demo news site on 127.0.0.1 → real spider → SQLite → pipeline → ranking → API."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from crawlers.run import run_crawl
from langnghe.config import REPO_ROOT
from langnghe.demo_site import build_site, load_corpus, serve_directory, source_names
from langnghe.jobs import LOCAL_SITE_SETTINGS
from langnghe.records import Mention, mention_id, period_key, utcnow
from nlp.pipeline import Normalizer, Pipeline, PipelineError, default_pipeline, process_pending
from nlp.ranking import update_rankings
from storage.sqlite import SQLiteStore
from tests.auth_helpers import logged_in

MODELS = REPO_ROOT / "models"
pytestmark = pytest.mark.integration


def _flood_items() -> list[dict[str, str]]:
    """Three outlets report the same flood in Bình Thạnh; plus real corpus items around them."""
    text = ("Cơn mưa lớn chiều qua khiến đường Nguyễn Hữu Cảnh, quận Bình Thạnh ngập sâu hơn nửa mét, "
            "hàng trăm xe máy chết máy, người dân phải lội nước về nhà. Triều cường dâng cao khiến nước "
            "rút rất chậm, nhiều hộ dân phản ánh tình trạng ngập kéo dài nhiều năm chưa được khắc phục.")
    return [
        {"outlet": outlet, "section": "politics_society", "title": title, "text": text, "vntc_id": f"planted-{i}",
         "hours_ago": str(0.1 * i)}
        for i, (outlet, title) in enumerate([
            ("vnexpress", "Đường Nguyễn Hữu Cảnh ngập sâu sau mưa lớn"),
            ("tuoitre", "Nguyễn Hữu Cảnh lại ngập nặng, xe chết máy hàng loạt"),
            ("thanhnien", "Mưa lớn, đường Nguyễn Hữu Cảnh quận Bình Thạnh biến thành sông"),
        ])
    ]


@pytest.fixture(scope="module")
def demo_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[list[str], dict[str, str]]]:
    root = tmp_path_factory.mktemp("site")
    server = serve_directory(root)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    corpus = _flood_items() + load_corpus()[:45]
    feeds = build_site(root, base, utcnow(), corpus=corpus)
    yield feeds, source_names(base)
    server.shutdown()


@pytest.fixture(scope="module")
def chain(demo_site: tuple[list[str], dict[str, str]], tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    feeds, sources = demo_site
    db = tmp_path_factory.mktemp("db") / "langnghe.sqlite3"
    stats = run_crawl(feeds, db, settings={"LANGNGHE_SOURCES": sources, **LOCAL_SITE_SETTINGS})
    store = SQLiteStore(db)
    processed = process_pending(store, default_pipeline(MODELS), batch_size=16)
    summary = update_rankings(store, days=10)
    yield db, store, stats, processed, summary
    store.close()


def test_crawl_stores_every_article_once(chain) -> None:  # type: ignore[no-untyped-def]
    db, store, stats, processed, _ = chain
    assert stats.inserted == 48
    assert store.count_mentions() == 48
    assert processed == 48
    again = run_crawl(_feeds_of(chain), db, settings=LOCAL_SITE_SETTINGS)
    assert again.inserted == 0
    assert store.count_mentions() == 48


def _feeds_of(chain) -> list[str]:  # type: ignore[no-untyped-def]
    store = chain[1]
    urls = {m.url.rsplit("/", 1)[0] + "/rss.xml" for m in store.iter_mentions()}
    return sorted(urls)


def test_mentions_carry_sources_dates_and_enrichment(chain) -> None:  # type: ignore[no-untyped-def]
    store = chain[1]
    flood = [m for m in store.iter_mentions() if "Nguyễn Hữu Cảnh" in m.title]
    assert {m.source for m in flood} == {"VnExpress", "Tuổi Trẻ", "Thanh Niên"}
    for m in flood:
        assert m.published_at.tzinfo is not None
        assert m.civic is True
        assert m.topic == "flooding"
        assert m.sentiment == "negative"
        assert "fd:binh-thanh" in m.areas and "hcmc" in m.areas
        assert any(loc.former_district == "Bình Thạnh" for loc in m.locations)
        assert m.issue_id is not None
    assert len({m.issue_id for m in flood}) == 1


def test_top10_through_the_api(chain) -> None:  # type: ignore[no-untyped-def]
    store = chain[1]
    flood = next(m for m in store.iter_mentions() if "Nguyễn Hữu Cảnh" in m.title)
    week = period_key("week", flood.published_at)
    client = TestClient(create_app(store))
    logged_in(client)
    body = client.get("/api/v1/issues/top", params={"area": "fd:binh-thanh", "period": "week",
                                                   "date": week}).json()
    top = body["issues"][0]
    assert top["topic"] == "flooding"
    assert top["mention_count"] == 3
    assert top["source_count"] == 3
    assert top["sentiment"]["negative"] == 3
    assert {e["source"] for e in top["evidence"]} == {"VnExpress", "Tuổi Trẻ", "Thanh Niên"}
    assert abs(sum(top["score_parts"].values()) - top["score"]) < 1e-6
    city = client.get("/api/v1/issues/top", params={"area": "hcmc", "period": "week", "date": week}).json()
    assert top["issue_id"] in [i["issue_id"] for i in city["issues"]]
    found = client.get("/api/v1/mentions/search", params={"q": "ngap sau nguyen huu canh"}).json()
    assert found["total"] >= 3
    assert "<mark>" in found["items"][0]["highlight"]


def test_processing_is_idempotent_and_ranking_repeatable(chain) -> None:  # type: ignore[no-untyped-def]
    store = chain[1]
    assert process_pending(store, default_pipeline(MODELS)) == 0
    week = store.ranking_keys("week")[0]
    before = {(e.area_id, e.rank, e.issue_id) for e in store.top_issues("hcmc", "week", week)}
    issues_before = len(store.list_issues())
    update_rankings(store, days=10)
    after = {(e.area_id, e.rank, e.issue_id) for e in store.top_issues("hcmc", "week", week)}
    assert before == after
    assert len(store.list_issues()) == issues_before


def test_pipeline_checks_what_components_need() -> None:
    class NeedsAreas:
        name = "needs-areas"
        requires = ("areas",)
        assigns = ("topic",)

        def __call__(self, batch: list[Mention]) -> list[Mention]:
            return batch

    with pytest.raises(PipelineError, match="areas"):
        Pipeline([Normalizer(), NeedsAreas()])


def _mentions(count: int) -> list[Mention]:
    now = utcnow()
    return [Mention(id=mention_id(f"https://example.vn/{i}"), source="example.vn", url=f"https://example.vn/{i}",
                    title=f"Kẹt xe kéo dài trên đường Cộng Hòa, quận Tân Bình ({i})",
                    text="Người dân phản ánh tình trạng ùn tắc giao thông vào giờ cao điểm.",
                    published_at=now - timedelta(minutes=i)) for i in range(count)]


@pytest.mark.slow
def test_processing_killed_midway_resumes_without_loss(tmp_path: Path) -> None:
    db = tmp_path / "kill.sqlite3"
    store = SQLiteStore(db)
    store.write_mentions(_mentions(3000))
    env = {**os.environ, "LANGNGHE_DB_PATH": str(db)}
    proc = subprocess.Popen([sys.executable, "-m", "langnghe.cli", "process", "--db", str(db), "--batch-size", "20"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(store.unprocessed_mentions(limit=3000)) == 3000:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    left = len(store.unprocessed_mentions(limit=3000))
    assert 0 < left < 3000, "the kill should land mid-run"
    assert process_pending(store, default_pipeline(MODELS), batch_size=200) == left
    assert store.count_mentions() == 3000
    assert store.unprocessed_mentions(limit=10) == []
    assert all(m.topic == "traffic" for m in store.iter_mentions())
    store.close()


@pytest.mark.slow
def test_demo_command_runs_the_whole_chain(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "langnghe.cli", "demo", "--no-serve", "--data-dir", str(tmp_path),
         "--site-port", "0"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Processed 400 mentions" in result.stdout
    store = SQLiteStore(tmp_path / "demo.sqlite3")
    assert store.count_mentions() == 400
    keys = store.ranking_keys("day")
    assert keys and store.top_issues("hcmc", "day", keys[0])
    store.close()
