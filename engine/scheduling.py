"""Temporal schedules for flows that start on a clock: segment broadcasts, date triggers, schedules.

One schedule per flow, id ``flow/<flow id>``, pointing at the current version.
:func:`sync_schedules` makes Temporal match the database; it runs when a flow is
published from the designer, when a worker starts, and every minute in the worker.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.common import WorkflowIDReusePolicy
from temporalio.service import RPCError

from engine.db import models
from engine.db.session import session_factory
from engine.durations import parse_duration
from engine.runtime import BROADCAST_WORKFLOW, JOURNEY_WORKFLOW, BroadcastInput, JourneyInput

log = logging.getLogger(__name__)
CLOCK_TRIGGERS = ("trigger.segment", "trigger.date", "trigger.schedule")


def schedule_id(flow_id: str) -> str:
    return f"flow/{flow_id}"


def _at_cron(at: str, dow: str = "*") -> str:
    hour, minute = at.split(":")
    return f"{int(minute)} {int(hour)} * * {dow}"


def plan(flow: dict[str, Any], task_queue: str) -> tuple[Schedule | None, bool]:
    """The schedule for a compiled flow, and whether it runs once right now (segment 'once')."""
    trigger = flow["nodes"][flow["trigger"]]
    config = trigger["config"]
    tz = flow["settings"].get("timezone") or "UTC"
    fid, version = flow["flow_id"], flow["version"]
    if trigger["type"] == "trigger.segment":
        if config["schedule"] == "once":
            return None, True
        cron = {"daily": _at_cron(config["at"]), "weekly": _at_cron(config["at"], "1"),
                "cron": config.get("cron") or _at_cron(config["at"])}[config["schedule"]]
        spec = ScheduleSpec(cron_expressions=[cron], time_zone_name=tz)
        action = ScheduleActionStartWorkflow(BROADCAST_WORKFLOW, BroadcastInput(flow=flow, run_key=""),
                                             id=f"broadcast/{fid}/v{version}", task_queue=task_queue)
    elif trigger["type"] == "trigger.date":
        spec = ScheduleSpec(cron_expressions=[_at_cron(config["at"])], time_zone_name=tz)
        action = ScheduleActionStartWorkflow(BROADCAST_WORKFLOW, BroadcastInput(flow=flow, run_key=""),
                                             id=f"dates/{fid}/v{version}", task_queue=task_queue)
    elif trigger["type"] == "trigger.schedule":
        if config.get("cron"):
            spec = ScheduleSpec(cron_expressions=[config["cron"]], time_zone_name=tz)
        else:
            from temporalio.client import ScheduleIntervalSpec

            spec = ScheduleSpec(intervals=[ScheduleIntervalSpec(every=parse_duration(config["every"]))])
        action = ScheduleActionStartWorkflow(JOURNEY_WORKFLOW, JourneyInput(flow=flow, customer_id=None),
                                             id=f"run/{fid}/v{version}", task_queue=task_queue)
    else:
        return None, False
    return Schedule(action=action, spec=spec, policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP)), False


async def sync_flow(client: Client, flow: dict[str, Any] | None, flow_id: str, task_queue: str) -> str:
    """Make Temporal's schedule for one flow match ``flow`` (None: the flow no longer runs on a clock)."""
    handle = client.get_schedule_handle(schedule_id(flow_id))
    schedule, once = plan(flow, task_queue) if flow else (None, False)
    if once and flow is not None:
        try:
            await client.start_workflow(BROADCAST_WORKFLOW, BroadcastInput(flow=flow, run_key=f"v{flow['version']}"),
                                        id=f"broadcast/{flow_id}/v{flow['version']}/once", task_queue=task_queue,
                                        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE)
        except Exception as exc:  # already broadcast for this version
            log.debug("broadcast of %s not started again: %s", flow_id, exc)
    if schedule is None:
        try:
            await handle.delete()
            return "deleted"
        except RPCError:
            return "none"
    try:
        await client.create_schedule(schedule_id(flow_id), schedule)
        return "created"
    except ScheduleAlreadyRunningError:
        def _replace(_: ScheduleUpdateInput) -> ScheduleUpdate:
            return ScheduleUpdate(schedule=schedule)

        await handle.update(_replace)
        return "updated"


async def sync_schedules(client: Client, database_url: str | None, task_queue: str) -> dict[str, str]:
    with session_factory(database_url)() as db:
        rows = db.execute(select(models.FlowRecord.id, models.FlowRecord.status, models.FlowVersion.compiled)
                          .join(models.FlowVersion, (models.FlowVersion.flow_id == models.FlowRecord.id)
                                & (models.FlowVersion.version == models.FlowRecord.current_version))
                          .where(models.FlowVersion.trigger_type.in_(CLOCK_TRIGGERS))).all()
    result = {}
    for flow_id, status, compiled in rows:
        try:
            result[flow_id] = await sync_flow(client, dict(compiled) if status == "active" else None, flow_id,
                                              task_queue)
        except RPCError as exc:
            log.warning("schedule of flow %s not synced: %s", flow_id, exc)
            result[flow_id] = f"error: {exc}"
    return result
