"""Prometheus metrics (prometheus-client) and the per-request log line.

Process-wide metrics live in `REGISTRY`: HTTP requests by method, route template and status, their
latency, alerts sent, scheduler runs. Store gauges (mentions, issues, latest ranking) are read at
scrape time by `/metrics` (api.routers.ops).
"""

from __future__ import annotations

import logging
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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


class ObserveMiddleware:
    """Pure ASGI middleware (cheaper than `@app.middleware("http")`): counts and times each HTTP
    request, logs one line (no query string, no secrets) and adds `headers` to every response."""

    def __init__(self, app: ASGIApp, headers: dict[str, str] | None = None) -> None:
        self.app = app
        self.extra = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                if self.extra:
                    present = {k.lower() for k, _ in message.get("headers", [])}
                    message["headers"] = [*message.get("headers", []),
                                          *((k, v) for k, v in self.extra if k not in present)]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope.get("method", "")
            if not route.startswith("/static"):
                HTTP_REQUESTS.labels(method, route, str(status)).inc()
                HTTP_LATENCY.labels(method, route).observe(elapsed)
            if log.isEnabledFor(logging.INFO):
                state = scope.get("state") or {}
                log.info("%s %s %d", method, route, status, extra={
                    "event": "request", "method": method, "route": route, "status": status,
                    "duration_ms": round(elapsed * 1000, 2), "user_id": state.get("user_id")})

