"""The workforce activities the workflows (activities/workforce/workflows.py) call by name, and starting those
workflows. Registered with the worker through ``tideflow.worker_activities`` / ``tideflow.worker_workflows``.

Activities are ``async`` and run their blocking work (database, WeCom) in a thread; events they produce
are stored, then routed on the worker's loop with the worker's Temporal client. Errors are mapped once
(:func:`_mapped`): WeCom busy or rate-limited → retried after WeCom's hint; a request Tideflow or WeCom
refused for good → non-retryable ``WorkforceRejected`` (the workflow records it).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from temporalio import activity
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError

from activities.workforce import chat_archive, compliance, flow_mass_sends, handovers, mass_sends
from activities.workforce.common import WorkforceError, settings_of, store_events, wecom_client
from activities.workforce.mass_sends import MassSendIn
from activities.workforce.workflows import (
    HANDOVER_WORKFLOW,
    MASS_SEND_WORKFLOW,
    SYNC_WORKFLOW,
    HandoverInput,
    HandoverWorkflow,
    MassSendInput,
    MassSendWorkflow,
    SyncInput,
    SyncWorkflow,
    handover_workflow_id,
    mass_send_workflow_id,
    sync_workflow_id,
)
from engine.actions import Services
from engine.db.models import utcnow
from engine.db.session import session_factory, transaction
from engine.journeys import wake
from engine.text import N_, Msg

log = logging.getLogger(__name__)
T = TypeVar("T")


async def _mapped(work: Callable[[], T]) -> T:
    """Run blocking work in a thread and map its errors for Temporal."""
    try:
        return await asyncio.to_thread(work)
    except WorkforceError as exc:
        raise ApplicationError(exc.message, type="WorkforceRejected", non_retryable=True) from None
    except Exception as exc:
        retryable = getattr(exc, "retryable", None)
        if retryable is None:  # not WeCom: a database error may quote values (PII) — name the type only
            log.warning("workforce activity failed: %s", type(exc).__name__)
            raise ApplicationError(f"failed ({type(exc).__name__}); retrying", type=type(exc).__name__) from None
        if not retryable:
            raise ApplicationError(str(exc), type="WorkforceRejected", non_retryable=True) from None
        after = getattr(exc, "retry_after", None)
        raise ApplicationError(str(exc), type=type(exc).__name__,
                               next_retry_delay=timedelta(seconds=after) if after else None) from None


def _at(now: str | None) -> datetime:
    """The workflow's time when it passed one, else the wall clock."""
    return datetime.fromisoformat(now) if now else utcnow()


def _heartbeat() -> Callable[[Any], None]:
    """A heartbeat that blocking work in a thread may call (async activities heartbeat on their loop)."""
    loop = asyncio.get_running_loop()
    context = contextvars.copy_context()

    def beat(detail: Any) -> None:
        loop.call_soon_threadsafe(activity.heartbeat, detail, context=context)

    return beat


async def _signal_tickets(ticket_ids: list[int]) -> None:
    from engine.tickets_workflow import signal_changed

    if not ticket_ids:
        return
    client = activity.client()
    for ticket_id in ticket_ids:
        try:
            await signal_changed(client, ticket_id, "reassigned")
        except Exception as exc:  # the ticket workflow re-reads the ticket on its next wake-up anyway
            log.info("ticket %s not signalled: %s", ticket_id, type(exc).__name__)


class WorkforceActivities:
    def __init__(self, services: Services) -> None:
        self.url = services.database_url
        self.services = services

    async def _emit(self, connector_id: str, events: list[dict[str, Any]]) -> int:
        if not events:
            return 0
        return await asyncio.to_thread(store_events, self.url, connector_id, events)

    # -- handovers -------------------------------------------------------------------------------------
    def _connector_of(self, handover_id: int) -> str:
        with session_factory(self.url)() as db:
            return handovers.get(db, handover_id).connector_id

    @activity.defn(name="workforce.handover_begin")
    async def handover_begin(self, handover_id: int) -> dict[str, Any]:
        moved = await _mapped(lambda: handovers.begin(self.url, handover_id, utcnow()))
        await _signal_tickets(moved)
        return {"tickets": moved}

    @activity.defn(name="workforce.handover_send")
    async def handover_send(self, handover_id: int, day: int) -> dict[str, int]:
        beat = _heartbeat()

        def work() -> dict[str, int]:
            client, _ = wecom_client(self.url, self._connector_of(handover_id))
            return handovers.send_day(self.url, client, handover_id, day, utcnow(), beat)

        return await _mapped(work)

    @activity.defn(name="workforce.handover_poll")
    async def handover_poll(self, handover_id: int) -> dict[str, Any]:
        connector_id = await asyncio.to_thread(self._connector_of, handover_id)

        def work() -> dict[str, Any]:
            client, _ = wecom_client(self.url, connector_id)
            return handovers.poll(self.url, client, handover_id, utcnow())

        result = await _mapped(work)
        await self._emit(connector_id, result.pop("events"))
        await _signal_tickets(result.pop("tickets"))
        return result

    @activity.defn(name="workforce.handover_finish")
    async def handover_finish(self, handover_id: int, cancelled: bool) -> dict[str, Any]:
        return await _mapped(lambda: handovers.finish(self.url, handover_id, utcnow(), cancelled))


    # -- mass sends --------------------------------------------------------------------------------------
    def _send_connector(self, mass_send_id: int) -> str | None:
        """The send's connector; None when there is no such send (withdrawn: ``mass_sends.withdraw``)."""
        from engine.db import workforce_models as wf

        with session_factory(self.url)() as db:
            send = db.get(wf.MassSend, mass_send_id)
            return None if send is None else send.connector_id

    @activity.defn(name="workforce.mass_send_dispatch")
    async def mass_send_dispatch(self, mass_send_id: int, now: str | None = None) -> dict[str, int]:
        def work() -> dict[str, int]:
            from connectors.wecom.media import media_for

            connector_id = self._send_connector(mass_send_id)
            if connector_id is None:  # a workflow whose send was withdrawn: it sends nothing
                return mass_sends.withdrawn_dispatch()
            client, loaded = wecom_client(self.url, connector_id)
            media = media_for(client, getattr(loaded.settings, "image_hosts", ()))
            return mass_sends.dispatch(self.url, client, mass_send_id, _at(now), media)

        return await _mapped(work)

    @activity.defn(name="workforce.mass_send_collect")
    async def mass_send_collect(self, mass_send_id: int, now: str | None = None) -> dict[str, Any]:
        """A round of outcomes; a send that is not there (withdrawn) is final at once and ends its workflow."""
        def work() -> dict[str, Any]:
            connector_id = self._send_connector(mass_send_id)
            if connector_id is None:
                return dict(mass_sends.WITHDRAWN)
            client, _ = wecom_client(self.url, connector_id)
            return mass_sends.collect(self.url, client, mass_send_id, _at(now))

        result = await _mapped(work)
        if not result.get("withdrawn"):
            await self._tell_flows(mass_send_id)
        return result

    async def _tell_flows(self, mass_send_id: int) -> None:
        """The flows whose recipients' outcomes came in (flow_mass_sends.follow_up): journeys are woken, broadcast
        customers resumed. A journey Temporal cannot reach now is told in a later round (or its backstop timer
        runs the node again); a resume that fails fails this round, which is retried."""
        def read() -> flow_mass_sends.FollowUp:
            with session_factory(self.url)() as db:
                return flow_mass_sends.follow_up(db, mass_send_id)

        follow = await asyncio.to_thread(read)
        told: list[str] = []
        for workflow_id, key in follow.wake:
            try:
                await wake(activity.client(), workflow_id, key)  # False: the journey ended meanwhile
            except Exception as exc:
                log.info("journey %s not woken now: %s", workflow_id, type(exc).__name__)
                continue
            told.append(key)
        if told:
            def mark() -> None:
                with transaction(self.url) as db:
                    flow_mass_sends.mark_notified(db, told, utcnow())

            await asyncio.to_thread(mark)
        for batch in follow.resume:
            beat = _heartbeat()
            await _mapped(functools.partial(self._resume, batch, beat))

    def _resume(self, batch: flow_mass_sends.Batch, beat: Callable[[Any], None]) -> None:
        from engine.broadcast import resume_page
        from engine.db.models import FlowVersion

        with session_factory(self.url)() as db:
            version = db.get(FlowVersion, (batch.flow_id, batch.version))
            flow = dict(version.compiled) if version is not None else None
        if flow is None:  # cannot happen (versions are immutable): say so and do not ask again
            log.warning("flow %s v%s is gone: its mass-send customers cannot be resumed", batch.flow_id,
                        batch.version)
            with transaction(self.url) as db:
                flow_mass_sends.mark_notified(db, list(batch.keys.values()), utcnow())
            return

        def claim(db: Any, done: list[str]) -> bool:
            marked = flow_mass_sends.mark_notified(db, [batch.keys[cid] for cid in done], utcnow())
            return marked > 0 or not done

        resume_page(flow, batch.run_key, batch.node_id, list(batch.keys), self.services, batch.variables, beat,
                    claim)

    @activity.defn(name="workforce.mass_send_cancel")
    async def mass_send_cancel(self, mass_send_id: int) -> None:
        def work() -> None:
            connector_id = self._send_connector(mass_send_id)
            if connector_id is None:  # withdrawn: nothing to cancel
                return
            client, _ = wecom_client(self.url, connector_id)
            mass_sends.cancel(self.url, client, mass_send_id, utcnow())

        await _mapped(work)

    # -- archive and groups ------------------------------------------------------------------------------
    @activity.defn(name="workforce.sync")
    async def sync(self, connector_id: str, chats: list[str], full_groups: bool) -> dict[str, Any]:
        """One round for a connector: changed groups (or all), then the archive pull and pending alerts."""
        beat = _heartbeat()

        def work() -> dict[str, Any]:
            from activities.workforce import groups

            with session_factory(self.url)() as db:
                settings = settings_of(db, connector_id)
                enabled = settings.archive_enabled
            try:
                client, _ = wecom_client(self.url, connector_id)
            except WorkforceError:
                return {"stopped": True}
            now = utcnow()
            out: dict[str, Any] = {"events": []}
            if full_groups:
                synced = groups.sync_all(self.url, client, connector_id, now)
                out["groups"] = synced["groups"]
                out["events"] += synced["events"]
            else:
                for chat_id in chats:
                    out["events"] += groups.sync_one(self.url, client, connector_id, chat_id, now)
            if enabled:
                sdk = chat_archive.sdk_for(self.url, connector_id)
                out["archive"] = chat_archive.pull(self.url, connector_id, sdk, now, heartbeat=beat)
            out["alerts"] = compliance.deliver_alerts(self.url, connector_id)
            return out

        result = await _mapped(work)
        result["events"] = await self._emit(connector_id, result.pop("events"))
        return result


def worker_activities(services: Services) -> list[Callable[..., Awaitable[Any]]]:
    """Entry point (``tideflow.worker_activities``)."""
    acts = WorkforceActivities(services)
    return [acts.handover_begin, acts.handover_send, acts.handover_poll, acts.handover_finish, acts.sync,
            acts.mass_send_dispatch, acts.mass_send_collect, acts.mass_send_cancel]


def worker_workflows() -> list[type]:
    """Entry point (``tideflow.worker_workflows``)."""
    return [HandoverWorkflow, MassSendWorkflow, SyncWorkflow]


# -- starting workflows ------------------------------------------------------------------------------


async def start_handover(client: Client, database_url: str | None, task_queue: str, handover_id: int) -> str:
    """Execute a planned handover (idempotent: a second start finds the running workflow)."""
    def read() -> tuple[str, int, str]:
        with session_factory(database_url)() as db:
            handover = handovers.get(db, handover_id)
            if handover.status not in ("planned",):
                raise WorkforceError(Msg("handover %(handover_id)s is %(status)s", handover_id=handover_id,
                                         status=handover.status), Msg("only a planned handover starts"),
                                     "status", 409)
            return handover.connector_id, max(1, int(handover.summary.get("days") or 1)), handover.status

    connector_id, days, _ = await asyncio.to_thread(read)
    wid = handover_workflow_id(handover_id)
    with contextlib.suppress(WorkflowAlreadyStartedError):
        await client.start_workflow(HANDOVER_WORKFLOW, HandoverInput(handover_id, connector_id, days), id=wid,
                                    task_queue=task_queue, id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE)

    def mark() -> None:
        with transaction(database_url) as db:
            handover = handovers.get(db, handover_id)
            handover.workflow_id = wid

    await asyncio.to_thread(mark)
    return wid


#: how often a mass send's workflow start is tried when Temporal's answer is a transient error, and the pauses
#: between the tries: a start is idempotent by workflow id (REJECT_DUPLICATE, "already started" is success), so
#: a start that was applied but whose reply was lost (a deadline, a dropped connection) is found by the next try
START_ATTEMPTS = 3
START_PAUSES = (0.2, 0.8)


async def start_mass_send(client: Client, connector_id: str, task_queue: str, mass_send_id: int,
                          poll_seconds: int = 600) -> str:
    """Start the mass send's workflow, or find it started; a transient error (:func:`engine.router.is_transient`)
    is tried again up to :data:`START_ATTEMPTS` times, then raised (the start may or may not have been applied)."""
    from engine.router import is_transient

    wid = mass_send_workflow_id(mass_send_id)
    attempt = 1
    while True:
        try:
            with contextlib.suppress(WorkflowAlreadyStartedError):
                await client.start_workflow(MASS_SEND_WORKFLOW, MassSendInput(mass_send_id, connector_id,
                                                                              poll_seconds),
                                            id=wid, task_queue=task_queue,
                                            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE)
            return wid
        except Exception as exc:
            if attempt >= START_ATTEMPTS or not is_transient(exc):
                raise
            log.info("mass send %s: starting its workflow failed (%s), trying again", mass_send_id,
                     type(exc).__name__)
        await asyncio.sleep(START_PAUSES[min(attempt, len(START_PAUSES)) - 1])
        attempt += 1


#: why a mass send was refused when Temporal did not take its workflow (the API's 503, the page's problem)
ENGINE_UNREACHABLE = Msg("the workflow engine (Temporal) is not reachable, so the mass send was not created: nothing "
                         "was stored or sent")
ENGINE_UNREACHABLE_FIX = Msg("send it again in a minute; if this keeps happening, ask an admin to check that Temporal "
                             "and the tideflow worker are running")
#: the same when the send could not be withdrawn either and was ended failed instead (mass_sends.fail_unstarted)
ENGINE_UNREACHABLE_FAILED = N_("the workflow engine (Temporal) is not reachable, so mass send %(id)s was not started: "
                               "it is marked failed and nothing was sent")
#: the same when the database took neither the withdrawal nor the failure: the worker's sweep ends it
ENGINE_UNREACHABLE_STRANDED = N_(
    "the workflow engine (Temporal) is not reachable, so mass send %(id)s was not started, and the database did not "
    "take it back: nothing was sent, and within %(minutes)s minutes the worker marks it failed (until then it shows "
    "as sending)")
#: a person's mass send still ``sending`` without a WeCom task this long after it was stored, whose workflow Temporal
#: does not run, was left by a start and a withdrawal that both failed: :func:`fail_stranded_mass_sends` ends it
STRANDED_AFTER = timedelta(minutes=10)
#: how often the worker's sweep runs (tideflow/stack.py: every minute), for the wait the user is told of
SWEEP_MINUTES = 1


def _take_back(database_url: str | None, send_id: int) -> str:
    """After its workflow's start failed: withdraw the send (``withdrawn``), or else end it failed (``failed``),
    or find it kept because its workflow made a WeCom task (``kept``); ``stranded`` when the database took
    neither, for :func:`fail_stranded_mass_sends` to end later."""
    try:
        with transaction(database_url) as db:
            return "withdrawn" if mass_sends.withdraw(db, send_id) else "kept"
    except Exception as exc:
        log.warning("mass send %s: withdrawing it failed (%s); marking it failed instead", send_id,
                    type(exc).__name__)
    try:
        with transaction(database_url) as db:
            return "failed" if mass_sends.fail_unstarted(db, send_id, utcnow()) else "kept"
    except Exception as exc:
        log.error("mass send %s is left sending without a workflow (%s): the worker's sweep marks it failed",
                  send_id, type(exc).__name__)
        return "stranded"


async def create_mass_send(client: Client, database_url: str | None, task_queue: str, payload: MassSendIn,
                           actor: str, now: datetime) -> int:
    """Store a person's mass send and start its workflow — both or neither.

    The start is tried again on a transient error (:func:`start_mass_send`): a start Temporal applied but whose
    answer was lost is found by the next try, and the send is kept. When Temporal still does not answer, the send
    is withdrawn (:func:`mass_sends.withdraw`) and a 503 :class:`WorkforceError` says so (nothing re-starts a mass
    send later, and one left ``sending`` would hold its recipients' allowance) — unless its workflow did start
    and has made a WeCom task meanwhile: then the send is kept and its id returned, since it is being sent. A
    workflow started for a withdrawn send finds no send and ends without sending (its id is never reused).

    When the withdrawal fails too (the database refused or did not answer), the send is ended ``failed`` with
    its reason (:func:`mass_sends.fail_unstarted`) and the 503 names it; when the database takes that neither, the
    503 says the worker will mark it failed, which :func:`fail_stranded_mass_sends` does. Never is a send left
    ``sending`` with no workflow to send it."""
    from engine.router import is_transient

    def store() -> int:
        with transaction(database_url) as db:
            return mass_sends.create(db, payload, actor, now).id

    send_id = await asyncio.to_thread(store)
    try:
        await start_mass_send(client, payload.connector_id, task_queue, send_id)
    except Exception as exc:
        outcome = await asyncio.to_thread(_take_back, database_url, send_id)
        if outcome == "kept":
            log.warning("mass send %s kept: its workflow runs though starting it failed (%s)", send_id,
                        type(exc).__name__)
            return send_id
        if is_transient(exc):
            log.warning("mass send %s %s: Temporal did not take its workflow (%s)", send_id, outcome,
                        type(exc).__name__)
            message = ENGINE_UNREACHABLE if outcome == "withdrawn" else \
                Msg(ENGINE_UNREACHABLE_FAILED, id=send_id) if outcome == "failed" else \
                Msg(ENGINE_UNREACHABLE_STRANDED, id=send_id,
                    minutes=int(STRANDED_AFTER.total_seconds() // 60) + SWEEP_MINUTES)
            raise WorkforceError(message, ENGINE_UNREACHABLE_FIX, "temporal", 503) from None
        raise
    return send_id


async def fail_stranded_mass_sends(client: Client, database_url: str | None, now: datetime) -> list[int]:
    """End ``failed`` (:func:`mass_sends.fail_unstarted`) each person's mass send left ``sending`` with no
    workflow — its start and its withdrawal both failed (:func:`create_mass_send`) —, the ids ended. A send
    counts as stranded when it was stored :data:`STRANDED_AFTER` ago or more, has no WeCom task, and Temporal
    has no running workflow for it; one Temporal cannot tell about now is asked again at the next sweep. The
    worker runs this every minute (tideflow/stack.py). A flow's mass send is started by a retried activity, not
    here."""
    from sqlalchemy import select
    from temporalio.client import WorkflowExecutionStatus
    from temporalio.service import RPCError, RPCStatusCode

    from engine.db import workforce_models as wf

    def candidates() -> list[int]:
        with session_factory(database_url)() as db:
            has_task = select(wf.MassSendTask.id).where(wf.MassSendTask.mass_send_id == wf.MassSend.id).exists()
            return list(db.scalars(select(wf.MassSend.id).where(
                wf.MassSend.status == "sending", wf.MassSend.flow_id.is_(None),
                wf.MassSend.created_at <= now - STRANDED_AFTER, ~has_task).order_by(wf.MassSend.id).limit(100)))

    def end(send_id: int) -> bool:
        with transaction(database_url) as db:
            return mass_sends.fail_unstarted(db, send_id, now)

    ended = []
    for send_id in await asyncio.to_thread(candidates):
        try:
            described = await client.get_workflow_handle(mass_send_workflow_id(send_id)).describe()
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                continue
        else:
            if described.status == WorkflowExecutionStatus.RUNNING:
                continue
        if await asyncio.to_thread(end, send_id):
            log.warning("mass send %s was left sending without a workflow: marked failed", send_id)
            ended.append(send_id)
    return ended


async def ensure_sync(client: Client, connector_id: str, task_queue: str, interval_seconds: int = 300) -> bool:
    """Start the connector's sync workflow (archive catch-up, group sync) unless it runs; whether it started."""
    try:
        await client.start_workflow(SYNC_WORKFLOW, SyncInput(connector_id, interval_seconds),
                                    id=sync_workflow_id(connector_id), task_queue=task_queue,
                                    id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE)
    except WorkflowAlreadyStartedError:
        return False
    return True


async def ensure_running(client: Client, database_url: str | None, task_queue: str) -> list[str]:
    """The sync workflow of every enabled WeCom connector (the worker process calls this every minute)."""
    from sqlalchemy import select

    from engine.db import models

    def ids() -> list[str]:
        with session_factory(database_url)() as db:
            return list(db.scalars(select(models.ConnectorConfig.id).where(
                models.ConnectorConfig.kind == "wecom", models.ConnectorConfig.enabled.is_(True))))

    started = []
    for connector_id in await asyncio.to_thread(ids):
        if await ensure_sync(client, connector_id, task_queue):
            started.append(connector_id)
    return started


async def signal_sync(client: Client, connector_id: str, task_queue: str, signal: str, *args: Any) -> None:
    """Signal the connector's sync workflow, starting it first when it does not run."""
    from temporalio.service import RPCError

    handle = client.get_workflow_handle(sync_workflow_id(connector_id))
    try:
        await handle.signal(signal, *args) if args else await handle.signal(signal)
    except RPCError:
        await ensure_sync(client, connector_id, task_queue)
        handle = client.get_workflow_handle(sync_workflow_id(connector_id))
        await handle.signal(signal, *args) if args else await handle.signal(signal)
