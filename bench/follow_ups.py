"""``python -m bench.follow_ups [N]``: how long a follow-up event takes from its commit to the journey it starts.

Points that lift a member to gold are earned in one transaction (as an action or the loyalty hook does); the
``loyalty.tier_changed`` it records starts the shipped 会员升级关怀 journey. Measured twice on the Temporal dev
server (in memory) and a SQLite file, the re-router running at its defaults (every 5 s, events older than 5 s)
both times: once with only the re-router (how follow-ups were routed before), once with the routing pipeline
installed for follow-ups (engine/follow_ups.py: routed when the transaction commits). Prints the delays.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from temporalio.client import Client

FLOWS = Path(__file__).resolve().parents[1] / "flows"


async def measure(client: Client, at_once: bool, count: int) -> list[float]:
    from activities.loyalty import ledger
    from activities.loyalty.program import ProgramConfig, TierSpec, save
    from engine import flows as flowsvc
    from engine.customers import resolve
    from engine.db import models
    from engine.db.session import session_factory, transaction, upgrade
    from engine.pipeline import RoutingPipeline, reroute_forever
    from engine.router import Router
    from engine.worker import build_worker

    url = f"sqlite:///{tempfile.mkdtemp()}/follow-ups.db"
    upgrade(url)
    with transaction(url) as db:
        save(db, ProgramConfig(enabled=True, tier_basis="points_12m",
                               tiers=[TierSpec(key="member", name="会员", threshold=0),
                                      TierSpec(key="gold", name="金卡", threshold=100)]), "bench")
        flowsvc.save_draft(db, json.loads((FLOWS / "loyalty-tier-upgrade.json").read_text("utf-8")), "bench")
        flowsvc.publish(db, "loyalty-tier-upgrade", "bench")
    queue = f"follow-ups-{uuid.uuid4().hex[:6]}"
    router = Router(client, url, queue)
    pipeline = RoutingPipeline(url, router)
    pipeline.start()
    if at_once:
        pipeline.routes_follow_ups()

    async def reconnect() -> Router:
        return router

    rerouter = asyncio.create_task(reroute_forever(pipeline, 5, 5, reconnect))
    delays: list[float] = []
    try:
        async with build_worker(client, queue, url):
            for i in range(count):
                with transaction(url) as db:
                    cid = resolve(db, {"external_id": f"m{i}"}, f"member {i}")

                def earn(cid: str = cid, i: int = i) -> None:
                    with transaction(url) as db:
                        ledger.earn(db, cid, 150, f"bench:{i}", datetime.now(UTC), reason="bench")

                await asyncio.sleep(1.7 * i % 5)  # commits spread over the re-router's period
                await asyncio.to_thread(earn)
                committed = time.monotonic()
                while True:
                    with session_factory(url)() as db:
                        if db.scalar(select(models.Journey.workflow_id).where(models.Journey.customer_id == cid)):
                            break
                    await asyncio.sleep(0.01)
                delays.append(time.monotonic() - committed)
    finally:
        rerouter.cancel()
        await pipeline.stop()
    return sorted(delays)


async def main(count: int) -> None:
    from temporalio.testing import WorkflowEnvironment

    from engine.temporal_bin import dev_server_path

    env = await WorkflowEnvironment.start_local(dev_server_existing_path=dev_server_path(),
                                                dev_server_extra_args=["--log-level", "error"])
    try:
        for label, at_once in (("re-router only", False), ("routed on commit", True)):
            delays = await measure(env.client, at_once, count)
            shown = ", ".join(f"{d * 1000:.0f}" for d in delays)
            print(f"{label:>17}: commit → journey started, ms: {shown} (median {delays[len(delays) // 2] * 1000:.0f})",
                  flush=True)
    finally:
        await env.shutdown()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 6))
