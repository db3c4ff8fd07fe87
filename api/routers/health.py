"""Liveness: a cheap check that the store answers."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import StoreDep
from api.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="Service health")
def healthz(store: StoreDep) -> Health:
    """`ok` and the number of stored mentions."""
    return Health(status="ok", mentions=store.count_mentions())
