"""The event router: starts the flows an event triggers and signals the customer's running journeys.

Workflow ids are derived, so a duplicate trigger cannot enrol a customer twice:
``journey/<flow>/<customer>`` when re-entry is ``never`` (Temporal refuses a second
start, and the journeys table remembers past ones beyond Temporal's retention),
``journey/<flow>/<customer>/<entry id>`` when it is ``always`` or ``after`` a
duration (then the last journey's end time is checked first).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from engine import expressions
from engine.customers import customer_view, merged_ids
from engine.db import models
from engine.db.models import utcnow
from engine.db.session import database_unavailable, session_factory
from engine.durations import parse_duration
from engine.journeys import ACTIVE
from engine.metrics import PICKUP
from engine.registry import entry_event_of
from engine.runtime import JOURNEY_WORKFLOW, JourneyInput
from engine.text import Msg, MsgError

log = logging.getLogger(__name__)
CACHE_SECONDS = 2.0
#: the attribute the Temporal client sets on a handle whose start came back with its first workflow task
#: (temporalio.client, 1.x): it is set on every handle a start returns, False when the start was not eager
EAGERLY_STARTED = "__temporal_eagerly_started"


class EnrollError(MsgError):
    """The flow cannot take this customer (not published, wrong trigger, unknown customer): a 409 on the API."""


@dataclass
class RouteResult:
    """What routing one event did: journeys it started (each with what the journeys table needs to remember
    it) and how many running journeys it was signalled to."""

    started: list[str] = field(default_factory=list)
    signalled: int = 0
    #: (workflow id, flow id, flow version, customer id) of each journey started
    journeys: list[tuple[str, str, int, str]] = field(default_factory=list)


def is_transient(exc: BaseException) -> bool:
    """Whether a routing failure is the infrastructure's (Temporal or the database unreachable, a timeout):
    retried later without counting against the event. Anything else is the event's own failure."""
    from temporalio.service import RPCStatusCode

    if isinstance(exc, RPCError):
        return exc.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED,
                              RPCStatusCode.RESOURCE_EXHAUSTED, RPCStatusCode.ABORTED, RPCStatusCode.CANCELLED)
    return database_unavailable(exc) or isinstance(exc, ConnectionError | TimeoutError)


#: a customer's past journeys in one flow, each as (status, ended_at, started_at), for :func:`may_enter`
History = list[tuple[str, datetime | None, datetime]]


def may_enter(entry: dict[str, Any], history: History, now: datetime) -> tuple[bool, str]:
    """Whether a customer with these past journeys (status, ended_at, started_at) may enter again."""
    if not history:
        return True, ""
    if entry["reentry"] == "never":
        return False, "already entered (re-entry: never)"
    if entry["reentry"] == "after":
        if any(status in ACTIVE for status, _, _ in history):
            return False, "still in the flow"
        last_end = max((ended or started) for _, ended, started in history)
        if now - last_end < parse_duration(entry["reentry_after"]):
            return False, "re-entry window not reached"
    return True, ""


@dataclass(frozen=True)
class EntryHistory:
    """What :func:`may_enter` needs about some customers in some flows, read in one query
    (:func:`entry_history`), and, when asked, the workflow ids of their running journeys in any flow."""
    journeys: dict[tuple[str, str], History]  # (flow id, customer id) → its journeys there
    running: list[str]

    def of(self, flow_id: str, *customer_ids: str) -> History:
        """The journeys of these customer ids (one customer and those merged into it) in this flow."""
        return [journey for cid in customer_ids for journey in self.journeys.get((flow_id, cid), ())]


def entry_history(db: Any, flow_ids: list[str], customer_ids: list[str], running: bool = False) -> EntryHistory:
    """Past journeys of these customers in these flows, for :func:`may_enter`, and with ``running`` the
    workflow ids of their running journeys in any flow: one query."""
    j = models.Journey
    which = [j.flow_id.in_(sorted(set(flow_ids)))] if flow_ids else []
    if running:
        which.append(j.status.in_(ACTIVE))
    rows = db.execute(select(j.workflow_id, j.customer_id, j.flow_id, j.status, j.ended_at, j.started_at).where(
        j.customer_id.in_(customer_ids), or_(*which))).all() if which and customer_ids else []
    wanted = set(flow_ids)
    journeys: dict[tuple[str, str], History] = {}
    for _, cid, flow_id, status, ended, started in rows:
        if flow_id in wanted:
            journeys.setdefault((flow_id, cid), []).append((status, ended, started))
    active = [wid for wid, _, _, status, _, _ in rows if status in ACTIVE] if running else []
    return EntryHistory(journeys, active)


def journey_id(flow_id: str, customer_id: str, reentry: str, entry_id: str | None) -> str:
    if reentry == "never" or not entry_id:
        return f"journey/{flow_id}/{customer_id}"
    return f"journey/{flow_id}/{customer_id}/{entry_id}"


class Router:
    def __init__(self, client: Client, database_url: str | None, task_queue: str, eager: bool = False) -> None:
        """``eager``: a worker for ``task_queue`` runs on ``client`` in this process, so journeys are started
        with eager workflow start (the first workflow task comes back in the start's answer)."""
        self.client = client
        self.eager = eager
        self.database_url = database_url
        self.task_queue = task_queue
        self._cache: dict[str, tuple[float, list[dict[str, Any]]]] = {}
        #: (flow, version) → its trigger's entry event and filter (versions are immutable)
        self._entries: dict[tuple[str, int], tuple[str, str | None] | None] = {}

    def invalidate(self) -> None:
        self._cache.clear()

    def _flows_for(self, event_type: str) -> list[dict[str, Any]]:
        hit = self._cache.get(event_type)
        now = time.monotonic()
        if hit and now - hit[0] < CACHE_SECONDS:
            return hit[1]
        with session_factory(self.database_url)() as db:
            rows = db.execute(
                select(models.FlowVersion.compiled)
                .join(models.FlowRecord, (models.FlowRecord.id == models.FlowVersion.flow_id)
                      & (models.FlowRecord.current_version == models.FlowVersion.version))
                .where(models.FlowRecord.status == "active", models.FlowVersion.trigger_event == event_type)
            ).scalars().all()
        flows = [dict(r) for r in rows]
        self._cache[event_type] = (now, flows)
        return flows

    # database calls run in a thread: the router lives on the web app's (or worker's) event loop, and a
    # request must not wait for SQLite's write lock held by another process while others queue behind it
    def _published(self, flow_id: str) -> dict[str, Any]:
        with session_factory(self.database_url)() as db:
            flow = db.get(models.FlowRecord, flow_id)
            if flow is None:
                raise EnrollError(Msg("flow '%(flow)s' does not exist", flow=flow_id),
                                  Msg("check the flow id in GET /api/flows"), "flow", 404)
            if flow.status != "active" or flow.current_version is None:
                raise EnrollError(Msg("flow '%(flow)s' is not published and active", flow=flow_id),
                                  Msg("publish the flow (or resume it) first"), "flow", 409)
            version = db.get(models.FlowVersion, (flow_id, flow.current_version))
            assert version is not None
            return dict(version.compiled)

    # -- entering ---------------------------------------------------------------------------------
    def _may_enter(self, flow: dict[str, Any], customer_id: str) -> tuple[bool, str]:
        return self._customer_state([flow], customer_id, running=False)[0][0]

    def _customer_state(self, flows: list[dict[str, Any]], customer_id: str, running: bool
                        ) -> tuple[list[tuple[bool, str]], list[str]]:
        """Whether the customer may enter each of ``flows``, and (with ``running``) the workflow ids of its
        running journeys: one session and one thread hop for an event's routing. A merged customer's journeys
        count as the survivor's."""
        with session_factory(self.database_url)() as db:
            ids = merged_ids(db, customer_id)
            now = utcnow()
            history = entry_history(db, [str(flow["flow_id"]) for flow in flows], ids, running)
        verdicts = [may_enter(flow["settings"]["entry"], history.of(flow["flow_id"], *ids), now) for flow in flows]
        return verdicts, history.running

    async def start(self, flow: dict[str, Any], customer_id: str, event: dict[str, Any] | None,
                    variables: dict[str, Any] | None = None, entry_id: str | None = None,
                    remember: bool = True, checked: tuple[bool, str] | None = None) -> str | None:
        """Start a journey (or deliver the event to the one running under the same id).
        Returns the workflow id, or None when the customer may not (re-)enter. Without ``remember`` the
        caller writes the journeys row (the routing pipeline does, for many events in one transaction).
        ``checked``: the caller has already read whether the customer may enter (:meth:`_customer_state`)."""
        ok, why = checked if checked is not None else await asyncio.to_thread(self._may_enter, flow, customer_id)
        if not ok:
            log.debug("not entering %s for %s: %s", flow["flow_id"], customer_id, why)
            return None
        reentry = flow["settings"]["entry"]["reentry"]
        wid = journey_id(flow["flow_id"], customer_id, reentry,
                         entry_id or (str(event["id"]) if event else None))
        policy = (WorkflowIDReusePolicy.REJECT_DUPLICATE if reentry == "never"
                  else WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY)
        inp = JourneyInput(flow=flow, customer_id=customer_id, entry_event=event, variables=variables or {})
        try:
            if event is not None and not self.eager:
                await self._signal_with_start(inp, wid, policy, event)
            else:
                # noted before the start: its first step may start in this process's worker before the start's
                # answer is back here
                if self.eager:
                    PICKUP.started(wid, time.monotonic())
                eager = False
                try:
                    handle = await self.client.start_workflow(JOURNEY_WORKFLOW, inp, id=wid,
                                                              task_queue=self.task_queue, id_reuse_policy=policy,
                                                              request_eager_start=self.eager)
                    # its first workflow task came back with the answer: it waits in this process's worker; when
                    # no slot was free it went to Temporal's task queue, where admission counts it already
                    eager = bool(getattr(handle, EAGERLY_STARTED, False))
                except WorkflowAlreadyStartedError:
                    if event is None:
                        raise
                    # eager start cannot carry a signal: the journey under this id runs already, so the event
                    # goes to it as signal-with-start delivers it (still refused if it has ended)
                    await self._signal_with_start(inp, wid, policy, event)
                finally:
                    if self.eager and not eager:  # not waiting here after all
                        PICKUP.picked(wid)
        except WorkflowAlreadyStartedError:
            return None
        if remember:
            await asyncio.to_thread(self._remember, wid, flow, customer_id)
        return wid

    async def _signal_with_start(self, inp: JourneyInput, wid: str, policy: WorkflowIDReusePolicy,
                                 event: dict[str, Any]) -> None:
        await self.client.start_workflow(JOURNEY_WORKFLOW, inp, id=wid, task_queue=self.task_queue,
                                         id_reuse_policy=policy, start_signal="event", start_signal_args=[event])

    def _remember(self, wid: str, flow: dict[str, Any], customer_id: str) -> None:
        from sqlalchemy.exc import IntegrityError

        from engine.db.session import transaction

        try:
            with transaction(self.database_url) as db:
                if db.get(models.Journey, wid) is None:
                    db.add(models.Journey(workflow_id=wid, flow_id=flow["flow_id"], version=flow["version"],
                                          customer_id=customer_id, status="running", checkpoint=0))
        except IntegrityError:
            pass  # the journey's own first checkpoint got there first

    async def enroll(self, flow_id: str, customer_id: str, variables: dict[str, Any] | None = None,
                     entry_id: str | None = None) -> str | None:
        """trigger.api (and action.enroll): put a customer into a published flow."""
        flow = await asyncio.to_thread(self._published, flow_id)
        trigger = flow["nodes"][flow["trigger"]]["type"]
        if trigger != "trigger.api" and entry_event_of(flow["nodes"][flow["trigger"]]) is None:
            raise EnrollError(Msg("flow '%(flow)s' starts with %(trigger)s; only trigger.api flows take enrolments",
                                  flow=flow_id, trigger=trigger),
                              Msg("publish the flow with a trigger.api trigger"), "flow", 409)
        if not await asyncio.to_thread(self._customer_exists, customer_id):
            raise EnrollError(Msg("customer '%(customer)s' does not exist", customer=customer_id),
                              Msg("send an identity of a known customer"), "customer", 409)
        return await self.start(flow, customer_id, None, variables, entry_id)

    def _customer_exists(self, customer_id: str) -> bool:
        with session_factory(self.database_url)() as db:
            return db.get(models.Customer, customer_id) is not None

    def _customer_view(self, customer_id: str) -> dict[str, Any]:
        with session_factory(self.database_url)() as db:
            return customer_view(db, customer_id)

    async def start_for_entry(self, flow: dict[str, Any], customer_id: str, entry_id: str) -> str | None:
        return await self.start(flow, customer_id, None, {}, entry_id)

    async def enroll_from_action(self, flow_id: str, customer_id: str, variables: dict[str, Any],
                                 key: str) -> str | None:
        return await self.enroll(flow_id, customer_id, variables, entry_id=key.replace("/", "-"))

    # -- events ----------------------------------------------------------------------------------
    async def route(self, event: dict[str, Any]) -> dict[str, Any]:
        """Start the flows this event triggers and signal the customer's running journeys."""
        result = await self.route_event(event, remember=True)
        return {"started": result.started, "signalled": result.signalled}

    async def route_event(self, event: dict[str, Any], remember: bool = False) -> RouteResult:
        """:meth:`route`; without ``remember`` the journeys started are returned for the caller to write."""
        customer_id = event.get("customer_id")
        result = RouteResult()
        started = result.started
        if not customer_id:
            return result
        hit = self._cache.get(event["type"])
        fresh = hit is not None and time.monotonic() - hit[0] < CACHE_SECONDS
        flows = hit[1] if hit is not None and fresh else await asyncio.to_thread(self._flows_for, event["type"])
        customer: dict[str, Any] | None = None
        entering: list[dict[str, Any]] = []
        for flow in flows:
            ident = (str(flow["flow_id"]), int(flow.get("version") or 0))
            if ident not in self._entries:
                self._entries[ident] = entry_event_of(flow["nodes"][flow["trigger"]])
            entry = self._entries[ident]
            condition = entry[1] if entry else None
            if condition:
                if customer is None:
                    customer = await asyncio.to_thread(self._customer_view, customer_id)
                try:  # bounded, but never on the event loop (engine/expressions.py)
                    if not await asyncio.to_thread(expressions.test, condition, {
                            "customer": customer, "event": event, "vars": {}, "journey": {}, "now": utcnow()}):
                        continue
                except expressions.ExpressionError as exc:
                    log.warning("trigger filter of flow %s failed: %s", flow["flow_id"], exc)
                    continue
            entering.append(flow)
        # entry checks and the running journeys in one read, before the starts: a customer's events are routed
        # one after another (the pipeline's lanes), so no journey of this customer starts in between but these
        # (which are in ``started`` and not signalled twice)
        verdicts, running = await asyncio.to_thread(self._customer_state, entering, customer_id, True)
        for flow, verdict in zip(entering, verdicts, strict=True):
            wid = await self.start(flow, customer_id, event, remember=remember, checked=verdict)
            if wid:
                started.append(wid)
                result.journeys.append((wid, flow["flow_id"], int(flow["version"]), customer_id))
        signalled = 0
        for wid in running:
            if wid in started:
                continue
            handle: WorkflowHandle[Any, Any] = self.client.get_workflow_handle(wid)
            try:
                await handle.signal("event", event)
                signalled += 1
            except RPCError as exc:  # finished meanwhile: nothing to deliver
                if is_transient(exc):
                    raise
                log.debug("signal to %s not delivered: %s", wid, exc)
        result.signalled = signalled
        return result
