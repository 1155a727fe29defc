"""Journeys parked in a wait: worker memory, Tideflow's interpreter against a hand-written workflow, and the
Temporal server's memory per parked journey.

``BENCH_PARKED`` journeys (10,000) run ``send a message → wait one day`` and park there, first through the
interpreter (the published flow), then — on a fresh dev server and a fresh worker process — through a
hand-written workflow doing the same (the same send activity, then ``workflow.sleep``). Each worker is a
process of its own built the same way (``engine.worker.build_worker``: same code loaded, same cache of 1,000
workflows), so the difference in resident memory is what the parked workflows cost. The dev server's resident
memory is read before and after parking them.

``python -m bench.parked worker --kind journey|hand`` is the worker process.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from engine.runtime import ActionRequest, JourneyInput

FLOW_ID = "bench-parked"
HAND = "BenchParkedByHand"


@workflow.defn(name=HAND)
class ParkedByHand:
    """The same steps as the flow, by hand: send (a local activity, like the interpreter), sleep a day, send."""

    @workflow.run
    async def run(self, inp: JourneyInput) -> str:
        wid = workflow.info().workflow_id
        for node_id in ("hello", "again"):
            node = inp.flow["nodes"][node_id]
            await workflow.execute_local_activity(
                "node:action.send_message",
                ActionRequest(key=f"{wid}/{node_id}/1", workflow_id=wid, flow_id=inp.flow["flow_id"],
                              version=inp.flow["version"], node_id=node_id, node_type=node["type"],
                              config=node["config"], customer_id=inp.customer_id, event=inp.entry_event,
                              settings=inp.flow["settings"], now=workflow.now().isoformat()),
                start_to_close_timeout=timedelta(seconds=30))
            if node_id == "hello":
                await workflow.sleep(timedelta(days=1))
        return "done"


def flow_document() -> dict[str, Any]:
    return {"schema": "tideflow/flow@1", "id": FLOW_ID, "name": "bench: parked", "kind": "journey",
            "nodes": [{"id": "start", "type": "trigger.event", "config": {"event": "custom.bench_parked"}},
                      {"id": "hello", "type": "action.send_message",
                       "config": {"channel": "dry-run", "template": "你好 {{ customer.name }}",
                                  "category": "transactional"}},
                      {"id": "park", "type": "wait.delay", "config": {"duration": "P1D"}},
                      {"id": "again", "type": "action.send_message",
                       "config": {"channel": "dry-run", "template": "再见", "category": "transactional"}}],
            "edges": [{"from": "start", "port": "out", "to": "hello"}, {"from": "hello", "port": "out", "to": "park"},
                      {"from": "park", "port": "out", "to": "again"}]}


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class Parked:
    kind: str
    journeys: int
    worker_rss: float  # MiB
    server_rss_before: float
    server_rss_after: float
    seconds: float


async def park(kind: str, count: int, root: Path) -> Parked:
    """``count`` journeys of ``kind`` (journey: the interpreter; hand: the hand-written workflow) parked."""
    from sqlalchemy import func, select

    from bench.common import bulk_customers, publish
    from engine.db import models
    from engine.db.session import session_factory, upgrade
    from engine.runtime import JOURNEY_WORKFLOW
    from tests.e2e.stack import E2EStack

    with E2EStack(root) as stack:
        await asyncio.to_thread(stack.start_temporal, False, True, 120)
        url = stack.database_url
        await asyncio.to_thread(upgrade, url)
        compiled = await asyncio.to_thread(publish, url, flow_document())
        customers = await asyncio.to_thread(bulk_customers, url, count, f"pk{kind[0]}")
        stack.env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)
        stack.spawn("worker", [sys.executable, "-m", "bench.parked", "worker"])
        await asyncio.to_thread(stack.wait_log, "worker", "parked worker ready", 120)
        from temporalio.client import Client

        client = await Client.connect(f"127.0.0.1:{stack.temporal_port}")
        server_pid = stack.procs["temporal"].pid
        before = rss_mib(server_pid)
        name = JOURNEY_WORKFLOW if kind == "journey" else HAND
        began = time.perf_counter()
        limit = asyncio.Semaphore(32)

        async def start(i: int, cid: str) -> None:
            async with limit:
                entry = {"id": f"bench:p{i}", "type": "custom.bench_parked", "source": "bench", "customer_id": cid,
                         "payload": {}}
                await client.start_workflow(name, JourneyInput(flow=compiled, customer_id=cid, entry_event=entry),
                                            id=f"journey/{FLOW_ID}/{cid}", task_queue=stack.env["TIDEFLOW_TASK_QUEUE"])

        await asyncio.gather(*(start(i, c) for i, c in enumerate(customers)))

        def sent() -> int:
            with session_factory(url)() as db:
                return int(db.scalar(select(func.count()).select_from(models.Message)) or 0)

        deadline = time.monotonic() + 1800
        while await asyncio.to_thread(sent) < count:  # every journey sent its first message: parked
            if time.monotonic() > deadline:
                raise RuntimeError(f"{kind}: only {await asyncio.to_thread(sent)} of {count} journeys parked")
            await asyncio.sleep(1)
        await asyncio.sleep(3)  # the last workflow tasks complete
        seconds = time.perf_counter() - began
        worker = rss_mib(stack.procs["worker"].pid)
        after = rss_mib(server_pid)
        return Parked(kind, count, worker, before, after, seconds)


async def run(_stack: Any) -> Any:
    import tempfile

    from bench.common import Report, Row, at_most, sized

    count = sized("BENCH_PARKED", 10000)
    report = Report("parked")
    with tempfile.TemporaryDirectory(prefix="tideflow-parked-") as tmp:
        journey = await park("journey", count, Path(tmp) / "journey")
        hand = await park("hand", count, Path(tmp) / "hand")
    ratio = journey.worker_rss / hand.worker_rss
    per = [(p.server_rss_after - p.server_rss_before) * 1024 / p.journeys for p in (journey, hand)]
    report.rows += [
        Row(f"{count} parked journeys: worker RSS", f"{journey.worker_rss:.0f} MiB (hand-written {hand.worker_rss:.0f} "
            f"MiB): {ratio:.2f}×", "≤ 1.2×", at_most(ratio, 1.2)),
        Row("Temporal dev server memory per parked journey", f"{per[0]:.1f} KiB (hand-written {per[1]:.1f} KiB)"),
    ]
    report.notes.append(f"parked: {count} journeys each; parking took {journey.seconds:.0f} s (interpreter) and "
                        f"{hand.seconds:.0f} s (by hand); dev server RSS {journey.server_rss_before:.0f} → "
                        f"{journey.server_rss_after:.0f} MiB and {hand.server_rss_before:.0f} → "
                        f"{hand.server_rss_after:.0f} MiB")
    return report


def worker_main() -> None:
    """A worker process built like ``tideflow worker`` (engine.worker.build_worker), plus the hand-written
    workflow, on TIDEFLOW_TASK_QUEUE against TEMPORAL_ADDRESS."""
    from temporalio.client import Client

    import engine.worker
    from engine.settings import get_settings

    async def serve() -> None:
        settings = get_settings()
        client = await Client.connect(settings.temporal_address)
        own = engine.worker.workflows
        engine.worker.workflows = lambda: [*own(), ParkedByHand]  # type: ignore[assignment]
        async with engine.worker.build_worker(client, settings.task_queue):
            print("parked worker ready", flush=True)
            await asyncio.Event().wait()

    asyncio.run(serve())


if __name__ == "__main__":
    if sys.argv[1:] == ["worker"]:
        worker_main()
    else:
        print("usage: python -m bench.parked worker", file=sys.stderr)
        sys.exit(2)
    _ = os
