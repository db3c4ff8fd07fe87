"""Prometheus metrics (prometheus-client) and the per-request log line.

Process-wide metrics live in `REGISTRY`: HTTP requests by method, route template and status, their
latency, alerts sent, scheduler runs. Store gauges (mentions, issues, latest ranking) are read at
scrape time by `/metrics` (api.routers.ops).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.requests import Request
from starlette.responses import Response

log = logging.getLogger("api.requests")

REGISTRY = CollectorRegistry(auto_describe=True)

HTTP_REQUESTS = Counter("langnghe_http_requests_total", "HTTP requests served",
                        ("method", "route", "status"), registry=REGISTRY)
HTTP_LATENCY = Histogram("langnghe_http_request_duration_seconds", "Time to serve an HTTP request",
                         ("method", "route"), registry=REGISTRY,
                         buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))
ALERTS_SENT = Counter("langnghe_alerts_total", "Alert messages attempted",
                      ("kind", "channel", "status"), registry=REGISTRY)
SCHEDULER_RUNS = Counter("langnghe_scheduler_runs_total", "Scheduled pipeline runs",
                         ("job", "status"), registry=REGISTRY)
SCHEDULER_LAST_SUCCESS = Gauge("langnghe_scheduler_last_success_timestamp_seconds",
                               "Unix time of the last successful run of a job", ("job",), registry=REGISTRY)
SCHEDULER_DURATION = Gauge("langnghe_scheduler_last_duration_seconds", "Duration of the last run of a job",
                           ("job",), registry=REGISTRY)


def route_of(request: Request) -> str:
    """The matched route's template (bounded label values), or 'unmatched'."""
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "unmatched"


async def observe(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    """Middleware: count and time each request, and log one line (no query string, no secrets)."""
    started = time.perf_counter()
    status = 500
    try:
        response = await call_next(request)
        status = response.status_code
        return response
    finally:
        elapsed = time.perf_counter() - started
        route = route_of(request)
        if route != "/static":
            HTTP_REQUESTS.labels(request.method, route, str(status)).inc()
            HTTP_LATENCY.labels(request.method, route).observe(elapsed)
        if log.isEnabledFor(logging.INFO):
            log.info("%s %s %d", request.method, route, status, extra={
                "event": "request", "method": request.method, "route": route, "status": status,
                "duration_ms": round(elapsed * 1000, 2),
                "user_id": getattr(request.state, "user_id", None)})
