"""Load test of the top-10 endpoint: a fixed request rate over real HTTP, with authentication.

    python bench/bench_load.py --mentions 20000 --rate 200 --duration 20

Builds a store of generated mentions (bench_api.generate) and its rankings, creates an account
and an API key, starts uvicorn in a SUBPROCESS on 127.0.0.1 (one worker), then an open-loop
load generator (httpx, asyncio) sends `rate` requests per second for `duration` seconds to
/api/v1/issues/top with random areas and periods, each with ``Authorization: Bearer <key>``.
Latency is measured from each request's SCHEDULED send time (no coordinated omission), so a
server that falls behind shows it. Prints throughput, p50/p95/p99/max and errors as Markdown.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
SERVER = """
import sys, uvicorn
from api.main import create_app
from storage.sqlite import SQLiteStore
store = SQLiteStore(sys.argv[1])
uvicorn.run(create_app(store), host="127.0.0.1", port=int(sys.argv[2]), log_level="warning",
            access_log=False)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), to report the server's cost per request
    independently of how busy the machine is."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def prepare(db: Path, mentions: int) -> str:
    """Fill the store (when smaller than asked) and return a fresh API key."""
    from bench_api import generate

    from api.auth.models import Role
    from api.cli_accounts import open_accounts
    from nlp.discovery import DiscoveryConfig
    from nlp.ranking import update_rankings
    from storage.sqlite import SQLiteStore

    store = SQLiteStore(db)
    if store.count_mentions() < mentions:
        t0 = time.perf_counter()
        store.write_mentions(generate(mentions))
        update_rankings(store, days=14, config=DiscoveryConfig(backend="lexical"))  # API figures only
        print(f"built store: {mentions} mentions + rankings in {time.perf_counter() - t0:.1f}s")
    store.close()
    os.environ.setdefault("LANGNGHE_DATA_DIR", str(db.parent))
    accounts = open_accounts(db)
    user = accounts.get_user_by_email("bench@langnghe.test") or accounts.create_user(
        "bench@langnghe.test", "bench-password-" + os.urandom(6).hex(), Role.leadership)
    key, _ = accounts.create_api_key(user.id, "bench")
    accounts.close()
    return key


async def load(base: str, key: str, rate: float, duration: float, paths: list[str],
               concurrency: int) -> tuple[list[float], int, float]:
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {key}"},
                                 limits=limits, timeout=10) as client:
        for path in paths[:20]:  # warm up
            (await client.get(path)).raise_for_status()
        start = time.perf_counter()
        total = int(rate * duration)

        async def one(i: int) -> None:
            nonlocal errors
            scheduled = start + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                response = await client.get(paths[i % len(paths)])
                ok = response.status_code == 200
            except httpx.HTTPError:
                ok = False
            latencies.append((time.perf_counter() - scheduled) * 1000)
            if not ok:
                errors += 1

        await asyncio.gather(*(one(i) for i in range(total)))
        elapsed = time.perf_counter() - start
    return latencies, errors, elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mentions", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds (bounded to 120)")
    parser.add_argument("--concurrency", type=int, default=32, help="connections")
    parser.add_argument("--db", type=Path, default=None, help="reuse/keep the store here")
    args = parser.parse_args()
    duration = min(args.duration, 120.0)

    db = args.db or Path(tempfile.mkdtemp()) / "load.sqlite3"
    key = prepare(db, args.mentions)
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(db), str(port)],
                              env={**os.environ, "LANGNGHE_DATA_DIR": str(db.parent)})
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise SystemExit("server did not start")
        from nlp.areas import load_areas

        rng = random.Random(1)
        areas = ["hcmc", *[a.id for a in load_areas().all() if a.level != "city"]]
        paths = [f"/api/v1/issues/top?area={rng.choice(areas)}&period={rng.choice(['day', 'week'])}"
                 for _ in range(2000)]
        cpu_before = cpu_seconds(server.pid)
        latencies, errors, elapsed = asyncio.run(load(base, key, args.rate, duration, paths, args.concurrency))
        cpu = cpu_seconds(server.pid) - cpu_before
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
    n = len(latencies)
    print(f"\n{n} requests in {elapsed:.1f}s = {n / elapsed:.0f} req/s (target {args.rate:.0f}), "
          f"{errors} errors, {args.mentions} mentions, authenticated with an API key")
    print("| rate target | achieved req/s | requests | errors | p50 ms | p95 ms | p99 ms | max ms |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| {args.rate:.0f} | {n / elapsed:.0f} | {n} | {errors} | {percentile(latencies, 50):.1f} | "
          f"{percentile(latencies, 95):.1f} | {percentile(latencies, 99):.1f} | {max(latencies):.1f} |")
    per_request = cpu / max(n, 1) * 1000
    load1 = os.getloadavg()[0]
    print(f"\nserver CPU: {cpu:.1f}s for {n} requests = {per_request:.2f} ms/request "
          f"(one free core serves about {1000 / max(per_request, 1e-9):.0f} req/s); "
          f"load average during the run: {load1:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
