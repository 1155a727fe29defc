"""Scale-out on PostgreSQL: Tideflow's capacity (the ingest benchmark's ramp) with 1, 2 and 4 worker processes
behind one web process, and with 2 web processes (the load split between them) and 2 workers — all on this one
machine, the Temporal dev server and PostgreSQL included. docs/performance.md explains where the limit is."""

from __future__ import annotations

import contextlib
import itertools
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from bench.ingest import EVENT_TYPE, SINK_SECRET, Sizes, Target, flow_document, measure, quick
from bench.sink import Sink, payload


@contextlib.asynccontextmanager
async def deployment(root: Path, sink: Sink, workers: int, webs: int) -> AsyncIterator[Target]:
    import asyncio

    from bench.common import free_port
    from faults.scenarios import postgres_stack

    with postgres_stack(root) as (stack, _cluster):
        for n in range(2, workers + 1):
            stack.spawn(f"worker-{n}", [*stack.tideflow(), "worker"])
        ports = [stack.web_port]
        for n in range(2, webs + 1):
            port = free_port()
            stack.env["TIDEFLOW_WEB_PORT"] = str(port)
            stack.spawn(f"web-{n}", [*stack.tideflow(), "web"])
            ports.append(port)
        for n in range(2, workers + 1):
            await asyncio.to_thread(stack.wait_log, f"worker-{n}", "worker on task queue", 120)
        async with httpx.AsyncClient(timeout=5) as probe:
            for port in ports:
                for _ in range(240):
                    with contextlib.suppress(httpx.HTTPError):
                        if (await probe.get(f"http://127.0.0.1:{port}/api/health")).status_code == 200:
                            break
                    await asyncio.sleep(0.5)
        stack.api("PUT", "/api/connectors/bench-sink", expect=201, json={
            "kind": "webhook", "name": "bench sink", "settings": {"url": sink.url, "timeout_seconds": 10},
            "secrets": {"secret": SINK_SECRET}})
        stack.api("POST", "/api/flows", expect=201, json=flow_document())
        stack.api("POST", "/api/flows/bench-ingest/publish", expect=201)
        turn = itertools.cycle(ports)

        async def post(client: httpx.AsyncClient, run: str, n: int) -> httpx.Response:
            return await client.post(f"http://127.0.0.1:{next(turn)}/api/events", json={
                "id": f"{run}-{n}", "type": EVENT_TYPE, "source": "bench", "customer": {"external_id": f"{run}-{n}"},
                "payload": payload(run, n)})

        yield Target(f"PostgreSQL, {webs} web + {workers} worker", stack.base_url, post,
                     {"Authorization": f"Bearer {stack.token}"}, {name: proc.pid for name, proc in stack.procs.items()})


def stacks() -> list[tuple[int, int]]:
    """(web processes, workers) to measure: BENCH_SCALEOUT="1-1,2-2" picks some, default all four."""
    import os

    chosen = os.environ.get("BENCH_SCALEOUT", "").strip()
    if not chosen:
        return [(1, 1), (1, 2), (1, 4), (2, 2)]
    try:
        return [(int(pair.split("-")[0]), int(pair.split("-")[1])) for pair in chosen.split(",")]
    except (ValueError, IndexError):
        raise SystemExit(f"BENCH_SCALEOUT must look like 1-1,2-2 (web-workers pairs), not {chosen!r}") from None


async def run(_stack: Any) -> Any:
    from bench.common import Report, Row

    sizes = Sizes.quick() if quick() else Sizes(step_seconds=4, paced_events=30, partial_seconds=3,
                                                overload_seconds=3, warm_up=20)
    report = Report("scaleout")
    with tempfile.TemporaryDirectory(prefix="tideflow-scaleout-") as tmp:
        async with Sink() as sink:
            for webs, workers in stacks():
                print(f"… scale-out: {webs} web, {workers} worker", file=sys.stderr, flush=True)
                async with deployment(Path(tmp) / f"{webs}-{workers}", sink, workers, webs) as target:
                    figures = await measure(target, sink, sizes, lambda text: print(text, file=sys.stderr))
                report.rows.append(Row(
                    f"scale-out: {webs} web + {workers} worker (PostgreSQL)",
                    f"{figures.saturated:.1f} msg/s, paced p50 {figures.paced_p50 * 1000:.0f} ms, 2× capacity p99 "
                    f"{figures.overload_p99 * 1000:.0f} ms ({figures.overload_refused} × 429), CPU per event "
                    f"{figures.cpu_ramp:.1f} ms (" + ", ".join(f"{name} {ms:.1f}" for name, ms
                                                             in figures.cpu_by_process.items()) + ")"))
    return report
