"""Fallback load generator for bench/ingest.py when `wrk` is not installed (slower: the
client shares the CPUs with the servers). Prints one JSON object: rps, p50, p99 (ms), completed.

    loadgen.py URL '{"run":..,"path":..,"auth":..,"kind":..,"unique_ua":..}' CONNECTIONS SECONDS
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.ingest import UA, make_body, unique_ua


async def main(url: str, spec: dict, connections: int, seconds: float) -> dict:
    latencies: list[float] = []
    errors = 0
    deadline = time.monotonic() + seconds

    async def worker(worker_id: int, client: httpx.AsyncClient) -> None:
        nonlocal errors
        count = 0
        while time.monotonic() < deadline:
            count += 1
            event_id = f"{spec['run']}-{worker_id}-{count}"
            headers = {"authorization": spec["auth"], "user-agent": unique_ua(event_id) if spec["unique_ua"] else UA}
            started = time.perf_counter()
            response = await client.post(url, json=make_body(spec["kind"], event_id), headers=headers)
            latencies.append((time.perf_counter() - started) * 1000)
            errors += response.status_code >= 400

    limits = httpx.Limits(max_connections=connections)
    async with httpx.AsyncClient(limits=limits, timeout=10) as client:
        started = time.monotonic()
        await asyncio.gather(*(worker(i, client) for i in range(connections)))
        elapsed = time.monotonic() - started
    cuts = statistics.quantiles(latencies, n=100)
    return {"rps": len(latencies) / elapsed, "p50": cuts[49], "p99": cuts[98], "completed": len(latencies),
            "errors": f"{errors} HTTP errors" if errors else "none"}  # fmt: skip


if __name__ == "__main__":
    url, spec, connections, seconds = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    print(json.dumps(asyncio.run(main(url, spec, connections, seconds))))
