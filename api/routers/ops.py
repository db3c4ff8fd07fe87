"""Operations: readiness and Prometheus metrics (liveness is /healthz in api.routers.health)."""

from __future__ import annotations

import logging
import time

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from api.auth.deps import get_accounts, get_auth_config, resolve_principal
from api.auth.models import Role
from api.deps import StoreDep
from api.metrics import REGISTRY

log = logging.getLogger(__name__)

router = APIRouter(tags=["ops"])


class ReadyOut(BaseModel):
    status: str
    checks: dict[str, str]


@router.get("/readyz", response_model=ReadyOut, responses={503: {"model": ReadyOut}},
            summary="Readiness: the store and the accounts answer")
def readyz(request: Request, store: StoreDep) -> Response:
    """200 when the mention store and the accounts database answer, 503 (naming what failed)
    otherwise. Public, for load balancers; it reveals no data."""
    checks: dict[str, str] = {}
    try:
        store.count_mentions({"field": "issue_id", "operator": "==", "value": "\u0000readyz"})
        checks["store"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        log.warning("readyz: store failed: %s", exc)
        checks["store"] = "error"
    try:
        checks["accounts"] = "ok" if get_accounts(request).ping() else "error"
    except Exception as exc:  # noqa: BLE001
        log.warning("readyz: accounts failed: %s", exc)
        checks["accounts"] = "error"
    ok = all(v == "ok" for v in checks.values())
    body = ReadyOut(status="ready" if ok else "not ready", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)


def _store_gauges(store: StoreDep) -> str:
    """Gauges read from the store at scrape time, in the text exposition format."""
    lines = []
    started = time.perf_counter()
    try:
        mentions = store.count_mentions()
        processed = store.count_mentions({"field": "civic", "operator": "!=", "value": None})
        days = store.ranking_keys("day")
    except Exception as exc:  # noqa: BLE001 - a scrape must not fail because of the store
        log.warning("metrics: store gauges failed: %s", exc)
        return "# store gauges unavailable\nlangnghe_store_up 0\n"
    lines += ["# HELP langnghe_store_up Whether the store answered the scrape",
              "# TYPE langnghe_store_up gauge", "langnghe_store_up 1",
              "# HELP langnghe_mentions Mentions stored", "# TYPE langnghe_mentions gauge",
              f"langnghe_mentions {mentions}",
              "# HELP langnghe_mentions_processed Mentions enriched by the NLP pipeline",
              "# TYPE langnghe_mentions_processed gauge", f"langnghe_mentions_processed {processed}",
              "# HELP langnghe_ranked_days Days with a stored ranking", "# TYPE langnghe_ranked_days gauge",
              f"langnghe_ranked_days {len(days)}",
              "# HELP langnghe_store_scrape_seconds Time to read the store gauges",
              "# TYPE langnghe_store_scrape_seconds gauge",
              f"langnghe_store_scrape_seconds {time.perf_counter() - started:.6f}"]
    return "\n".join(lines) + "\n"


@router.get("/metrics", summary="Prometheus metrics", response_class=Response,
            responses={200: {"content": {"text/plain": {}}}, 401: {}, 403: {}})
def metrics(request: Request, store: StoreDep) -> Response:
    """Prometheus text format. Needs an administrator or leadership account (e.g. an API key in
    Prometheus' `authorization` setting) unless `metrics_public` is set."""
    if get_auth_config(request).auth_required and not get_auth_config(request).metrics_public:
        principal = resolve_principal(request)
        if principal is None:
            raise HTTPException(401, detail="Cần đăng nhập / authentication required",
                                headers={"WWW-Authenticate": "Bearer"})
        if principal.role not in (Role.administrator, Role.leadership):
            raise HTTPException(403, detail="Không có quyền truy cập / forbidden")
    body = generate_latest(REGISTRY).decode("utf-8") + _store_gauges(store)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
