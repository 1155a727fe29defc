"""The worker: the interpreter workflows plus every registered action as an activity."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from typing import Any

from temporalio import activity
from temporalio.client import Client
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
    Worker,
)
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from engine import journeys
from engine.actions import Services, make_activity
from engine.interpreter import JourneyWorkflow
from engine.metrics import PICKUP
from engine.registry import Registry, default_registry
from engine.settings import get_settings

#: modules the workflow sandbox shares with the host instead of re-importing per run:
#: deterministic code only (the node types' pure functions, expression sandbox, models)
PASSTHROUGH = ("engine", "activities", "connectors", "decisions", "re2", "jinja2", "markupsafe", "pydantic",
               "pydantic_core", "sqlalchemy", "zoneinfo", "tzdata", "wording")


class _NotePickup(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        PICKUP.picked(activity.info().workflow_id or "")
        return await super().execute_activity(input)


class PickupInterceptor(Interceptor):
    """Notes each activity's journey as picked up (engine.metrics.PICKUP) as the activity starts, on the
    worker's event loop: a journey started eagerly in this process stops waiting at its first step."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _NotePickup(next)


def workflows() -> list[type]:
    """The workflow classes. Loads the node registry first, so plugin modules are imported by the
    host (and shared with the sandbox) rather than inside a workflow run."""
    from engine.broadcast import BroadcastWorkflow
    from engine.shop_sync import ShopSyncWorkflow
    from engine.tickets_workflow import TicketWorkflow

    default_registry()
    found: list[type] = [JourneyWorkflow, BroadcastWorkflow, ShopSyncWorkflow, TicketWorkflow]
    # domain workflows (e.g. workforce handovers, archive pulls) the engine knows only by entry point
    for ep in sorted(entry_points(group="tideflow.worker_workflows"), key=lambda e: e.name):
        found += ep.load()()
    return found


def activities(services: Services, registry: Registry | None = None) -> list[Callable[..., Any]]:
    from engine.broadcast import BroadcastActivities
    from engine.shop_sync import ShopSyncActivities

    reg = registry or default_registry()
    bookkeeping = journeys.JourneyActivities(services)
    bulk = BroadcastActivities(services)
    acts: list[Callable[..., Any]] = [bookkeeping.checkpoint, bookkeeping.customer, bulk.page, bulk.deliver,
                                      ShopSyncActivities(services.database_url).poll]
    # domain activities that engine workflows call by name (e.g. the ticket workflow's SLA timers)
    for ep in sorted(entry_points(group="tideflow.worker_activities"), key=lambda e: e.name):
        acts += ep.load()(services)
    return [*acts, *[make_activity(t, services) for t in reg.actions()]]


def build_worker(client: Client, task_queue: str | None = None, database_url: str | None = None,
                 max_concurrent_activities: int = 64, extra_activities: Sequence[Callable[..., Any]] = ()
                 ) -> Worker:
    """A worker bound to ``client``; activities use ``database_url`` (default: settings)."""
    from engine import logs
    from engine.router import Router

    logs.install()  # no secrets or unmasked personal data in any log record
    services = Services(database_url=database_url or get_settings().resolved_database_url(),
                        loop=asyncio.get_running_loop())
    router = Router(client, services.database_url, task_queue or get_settings().task_queue)
    services.enroll = router.enroll_from_action
    services.start_flow = router.start_for_entry
    settings = get_settings()
    # for actions that start or signal their domain's own workflows (a WeCom mass send from a flow)
    services.extras["temporal_client"] = client
    services.extras["task_queue"] = router.task_queue
    return Worker(
        client,
        task_queue=task_queue or settings.task_queue,
        workflows=workflows(),
        activities=[*activities(services), *extra_activities],
        interceptors=[PickupInterceptor()],
        activity_executor=concurrent.futures.ThreadPoolExecutor(
            max_workers=max_concurrent_activities + settings.worker_local_activities),
        max_concurrent_activities=max_concurrent_activities,
        # few workflow tasks at once: a worker that cannot keep up leaves the rest in Temporal's task queue,
        # where their age is visible to admission control (engine/pipeline.py), instead of in its own memory
        max_concurrent_workflow_tasks=settings.worker_workflow_tasks,
        max_concurrent_local_activities=settings.worker_local_activities,
        workflow_runner=SandboxedWorkflowRunner(
            restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH)),
    )
