"""Shared fixtures: where the labelled data and saved pages are (../shared), skipping without them."""

from __future__ import annotations

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
