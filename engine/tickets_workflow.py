"""The ticket workflow: one Temporal workflow per ticket (``ticket/<id>``) running its ticket flow.

It walks the compiled ticket flow with the same node types as journeys (triggers, logic, waits,
actions run as the same activities under ``<workflow id>/<node>/<visit>`` idempotency keys) and, at
the same time, keeps the ticket's SLA clocks as durable timers:

* the ``ticket.sla_plan`` activity says which SLA checkpoints are still to fire and when; the
  workflow sleeps on a Temporal timer until the first one (so it survives worker restarts);
* the ``changed`` signal (sent by the API after every change: reply, status, priority, claim,
  transfer, review decision) wakes it: it asks for the plan again — a new priority or a pause
  moves the deadlines;
* when a timer fires, ``ticket.sla_fire`` re-checks at the workflow's time and fires what is due,
  recording each checkpoint key on the ticket, so a checkpoint fires once even if the activity is
  retried or the plan is recomputed.

A ticket node that must wait for people (a review chain, sub-tasks) returns ``defer_until`` like a
quiet-hours deferral does in journeys; here the wait also ends on a ``changed`` signal, and the node
runs again under the same key. Resolving or closing the ticket ends the workflow (and its flow).

The SLA and context activities are domain code (activities/tickets); the engine names them only.
Workflow code is deterministic: no I/O, no wall clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from engine import expressions
    from engine.event_match import event_matches
    from engine.interpreter import carried_reason
    from engine.nodes.base import Context, NodeType
    from engine.registry import default_registry
    from engine.runtime import ActionRequest, Checkpoint
    from wording import Msg, message_of
    from wording.stored import MAX_REASON, stored

if TYPE_CHECKING:
    from temporalio.client import Client

TICKET_WORKFLOW = "Ticket"
FINAL = ("resolved", "closed")
HISTORY_LIMIT = 4000
log = logging.getLogger(__name__)


@dataclass
class TicketInput:
    flow: dict[str, Any]
    ticket_id: int
    customer_id: str | None
    variables: dict[str, Any] = field(default_factory=dict)
    #: after continue-as-new: the walk is over, only the SLA watch goes on
    walk_done: bool = False


def ticket_workflow_id(ticket_id: int) -> str:
    return f"ticket/{ticket_id}"


_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                     maximum_interval=timedelta(minutes=5))


@workflow.defn(name=TICKET_WORKFLOW)
class TicketWorkflow:
    @workflow.init
    def __init__(self, inp: TicketInput) -> None:
        self.input = inp
        self.changes = 0
        self.inbox: list[dict[str, Any]] = []
        self.seen: list[str] = []
        self.walk_done = inp.walk_done
        self.node: str | None = None
        self.ticket_status = "open"
        self.ctx = Context(vars={**inp.variables, "ticket_id": inp.ticket_id})
        self.timeline: list[dict[str, Any]] = []
        self.stats: list[list[Any]] = []
        self.checkpoints = 0
        self.next_checkpoint: dict[str, Any] | None = None
        self._watch_mark: tuple[int, bool, int] = (0, False, 0)
        #: actions the flow has run (one may have started an SLA or changed the priority)
        self.acted = 0
        self._act_mark = 0

    # -- signals and queries --------------------------------------------------------------------
    @workflow.signal
    def changed(self, what: str = "") -> None:
        """Something about the ticket changed (status, priority, reply, review decision …)."""
        self.changes += 1

    @workflow.signal
    def event(self, evt: dict[str, Any]) -> None:
        """A customer event (from the router): for ``wait.event`` nodes in ticket flows."""
        evt_id = str(evt.get("id", ""))
        if evt_id and evt_id in self.seen:
            return
        if evt_id:
            self.seen.append(evt_id)
            del self.seen[:-200]
        self.inbox.append(evt)
        self.changes += 1

    @workflow.query
    def state(self) -> dict[str, Any]:
        return {"ticket_id": self.input.ticket_id, "node": self.node, "walk_done": self.walk_done,
                "ticket_status": self.ticket_status, "next_sla_checkpoint": self.next_checkpoint,
                "variables": self.ctx.vars, "timeline": self.timeline[-50:]}

    # -- helpers ----------------------------------------------------------------------------------
    def _note(self, what: str, detail: dict[str, Any], node: str | None = None) -> None:
        self.timeline.append({"at": workflow.now().isoformat(), "what": what, "node": node or self.node, **detail})
        del self.timeline[:-200]

    def _note_failed(self, error: str, reason: Msg | None, node: str | None = None) -> None:
        """A failed step: its English ``error`` as before and, when the reason is a Msg of ours (the workflow's
        own, or one an action carried across Temporal), that Msg saved beside it as ``stored_error`` — data only,
        as on a journey's timeline, for a reader in either language (``said``)."""
        detail: dict[str, Any] = {"error": error}
        if reason is not None:
            detail["stored_error"] = stored(reason, MAX_REASON)
        self._note("failed", detail, node)

    async def _call(self, name: str, arg: Any) -> Any:
        return await workflow.execute_activity(name, arg, start_to_close_timeout=timedelta(seconds=60),
                                               retry_policy=_RETRY)

    async def _checkpoint(self, status: str) -> None:
        self.checkpoints += 1
        flow = self.input.flow
        cp = Checkpoint(key=f"ckpt/{workflow.info().run_id}/{self.checkpoints}",
                        workflow_id=workflow.info().workflow_id, flow_id=flow["flow_id"], version=flow["version"],
                        customer_id=self.input.customer_id, status=status, node=self.node, stats=self.stats)
        await workflow.execute_local_activity("journey.checkpoint", cp, start_to_close_timeout=timedelta(seconds=30),
                                              retry_policy=_RETRY)
        self.stats = []

    async def _refresh(self) -> None:
        found = await self._call("ticket.context", self.input.ticket_id)
        self.ctx.customer = found.get("customer") or {}
        self.ctx.vars = {**self.ctx.vars, "ticket": found.get("ticket") or {}}
        self.ticket_status = str((found.get("ticket") or {}).get("status", self.ticket_status))

    # -- the run ----------------------------------------------------------------------------------
    @workflow.run
    async def run(self, inp: TicketInput) -> dict[str, Any]:
        walk: asyncio.Task[None] | None = None
        if not self.walk_done:
            walk = asyncio.create_task(self._walk_safely())
        outcome = await self._watch(walk)
        if walk is not None and not walk.done():
            walk.cancel()
            with contextlib.suppress(asyncio.CancelledError, ActivityError):
                await walk
        await self._checkpoint("completed")
        return {"ticket_id": inp.ticket_id, "status": outcome, "node": self.node, "timeline": self.timeline}

    async def _watch(self, walk: asyncio.Task[None] | None) -> str:
        """Keep the SLA timers until the ticket is resolved or closed."""
        while True:
            self._watch_mark = (self.changes, self.walk_done, self.acted)
            plan: dict[str, Any] = await self._call("ticket.sla_plan", self.input.ticket_id)
            self.ticket_status = str(plan.get("status", "open"))
            if self.ticket_status in FINAL or plan.get("missing"):
                return self.ticket_status if not plan.get("missing") else "missing"
            upcoming = plan.get("plan") or []
            self.next_checkpoint = upcoming[0] if upcoming else None
            timeout: timedelta | None = None
            if upcoming:
                timeout = datetime.fromisoformat(upcoming[0]["due"]) - workflow.now()
            if self.walk_done and not upcoming and self._should_continue_as_new():
                workflow.continue_as_new(TicketInput(flow=self.input.flow, ticket_id=self.input.ticket_id,
                                                     customer_id=self.input.customer_id, variables=self.ctx.vars,
                                                     walk_done=True))
            try:
                if timeout is not None and timeout <= timedelta(0):
                    raise TimeoutError
                await workflow.wait_condition(
                    lambda: (self.changes, self.walk_done, self.acted) != self._watch_mark, timeout=timeout)
            except TimeoutError:
                fired = await self._call("ticket.sla_fire", {"ticket_id": self.input.ticket_id,
                                                             "now": workflow.now().isoformat(),
                                                             "workflow_id": workflow.info().workflow_id})
                for key in fired.get("fired") or []:
                    self._note("sla", {"checkpoint": key})

    def _should_continue_as_new(self) -> bool:
        info = workflow.info()
        return info.is_continue_as_new_suggested() or info.get_current_history_length() > HISTORY_LIMIT

    def _node_type(self, name: str) -> type[NodeType]:
        node_type = default_registry().get(name)
        if node_type is None:  # the same Msg as the journey interpreter's, carried as the failure's detail
            reason = Msg("node type '%(type)s' is not installed on this worker", type=name)
            raise ApplicationError(str(reason), stored(reason, MAX_REASON), non_retryable=True)
        return node_type

    async def _walk_safely(self) -> None:
        """A flow that fails (a bad expression, an action out of retries) leaves the ticket in its queue
        with its SLA still running; the failure is on the timeline and in the node statistics."""
        try:
            await self._walk()
        except ApplicationError as exc:
            self.stats.append([self.node or "", "failed", "", 1])
            self._note_failed(str(exc), carried_reason(exc))

    async def _walk(self) -> None:
        flow = self.input.flow
        nodes: dict[str, dict[str, Any]] = flow["nodes"]
        visits: dict[str, int] = {}
        node_id: str | None = flow["trigger"]
        await self._refresh()
        try:
            while node_id is not None:
                self.node = node_id
                node = nodes[node_id]
                node_type = self._node_type(node["type"])
                visits[node_id] = visits.get(node_id, 0) + 1
                self.stats.append([node_id, "entered", "", 1])
                try:
                    config = node_type.Config.model_validate(node["config"])
                except ValidationError:
                    reason = Msg("node '%(node)s': config no longer valid for %(type)s", node=node_id,
                                 type=node["type"])
                    raise ApplicationError(str(reason), stored(reason, MAX_REASON), non_retryable=True) from None
                category = node["category"]
                port: str | None
                if category == "trigger":
                    port = "out"
                elif category == "end":
                    self._note("end", {}, node_id)
                    break
                elif category == "logic":
                    await self._refresh()
                    self.ctx.now = workflow.now()
                    try:
                        port = node_type.decide(config, self.ctx, workflow.info().workflow_id, node_id)
                    except expressions.ExpressionError as exc:
                        self._note_failed(str(exc), message_of(exc), node_id)
                        reason = Msg("node '%(node)s': %(detail)s", node=node_id, type=node["type"],
                                     detail=message_of(exc))
                        raise ApplicationError(str(reason), stored(reason, MAX_REASON), non_retryable=True) from None
                elif category == "wait":
                    port = await self._wait(node_type, config)
                else:
                    port = await self._act(node_id, node, node_type, visits[node_id])
                    if port is None:
                        self._note("failed", {}, node_id)
                        break
                self.stats.append([node_id, "left", port, 1])
                self._note("step", {"port": port, "type": node["type"]}, node_id)
                node_id = node["next"].get(port)
        finally:
            self.walk_done = True

    async def _wait(self, node_type: type[NodeType], config: Any) -> str:
        plan = node_type.wait_plan(config, self.ctx, workflow.now(), (self.input.flow.get("settings") or {})
                                   .get("timezone", "UTC"))
        cursor = len(self.inbox)
        found: dict[str, Any] = {}

        def ready() -> bool:
            for evt in self.inbox[cursor:]:
                for want in plan.events:
                    if event_matches(want, evt, self.ctx):
                        found["event"], found["port"] = evt, want.port
                        return True
            return False

        await self._checkpoint("waiting")
        try:
            if plan.timeout is not None and plan.timeout <= timedelta(0):
                if not ready():
                    raise TimeoutError
            else:
                await workflow.wait_condition(ready, timeout=plan.timeout)
        except TimeoutError:
            return plan.timeout_port
        self.ctx.event = found["event"]
        return str(found["port"])

    async def _act(self, node_id: str, node: dict[str, Any], node_type: type[NodeType], visit: int) -> str | None:
        info = workflow.info()
        flow = self.input.flow
        while True:
            await self._refresh()
            request = ActionRequest(
                key=f"{info.workflow_id}/{node_id}/{visit}", workflow_id=info.workflow_id, flow_id=flow["flow_id"],
                version=flow["version"], node_id=node_id, node_type=node["type"], config=node["config"],
                customer_id=self.input.customer_id, variables=self.ctx.vars, event=self.ctx.event,
                settings=flow.get("settings") or {}, now=workflow.now().isoformat())
            self._act_mark = self.changes
            try:
                result: dict[str, Any] = await workflow.execute_activity(
                    node_type.activity_name(), request, start_to_close_timeout=node_type.timeout,
                    retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                                             maximum_interval=timedelta(minutes=5),
                                             maximum_attempts=node_type.max_attempts))
            except ActivityError as exc:
                self._note_failed(str(exc.cause or exc), carried_reason(exc.cause), node_id)
                return node_type.failure_port
            self.acted += 1
            if result.get("defer_until"):
                # waiting for people (a review, sub-tasks): until the time given or the next change
                until = datetime.fromisoformat(result["defer_until"])
                self._note("waiting", {"until": result["defer_until"], "detail": result.get("detail") or {}},
                           node_id)
                await self._checkpoint("waiting")
                delay = until - workflow.now()
                if delay > timedelta(0):
                    with contextlib.suppress(TimeoutError):
                        await workflow.wait_condition(lambda: self.changes != self._act_mark, timeout=delay)
                continue
            break
        self.ctx.vars = {**self.ctx.vars, **(result.get("variables") or {})}
        if result.get("detail"):
            self._note("action", {"detail": result["detail"]}, node_id)
        return str(result.get("port") or "out")


# -- starting and signalling (outside workflows) ------------------------------------------------------


async def start_ticket(client: Client, database_url: str | None, task_queue: str, ticket_id: int) -> str | None:
    """Start the ticket's workflow once (the id is derived); None when its type has no published flow."""
    from sqlalchemy import update
    from temporalio.common import WorkflowIDReusePolicy
    from temporalio.exceptions import WorkflowAlreadyStartedError

    from engine.db import models
    from engine.db.session import session_factory, transaction

    with session_factory(database_url)() as db:
        ticket = db.get(models.Ticket, ticket_id)
        if ticket is None or ticket.workflow_id:
            return ticket.workflow_id if ticket else None
        kind = db.get(models.TicketType, ticket.type_key)
        flow_id = kind.flow_id if kind else None
        record = db.get(models.FlowRecord, flow_id) if flow_id else None
        if record is None or record.status != "active" or record.current_version is None:
            return None
        version = db.get(models.FlowVersion, (record.id, record.current_version))
        if version is None or version.compiled.get("kind") != "ticket":
            return None
        compiled, customer_id = dict(version.compiled), ticket.customer_id
    wid = ticket_workflow_id(ticket_id)
    with contextlib.suppress(WorkflowAlreadyStartedError):
        await client.start_workflow(TICKET_WORKFLOW, TicketInput(flow=compiled, ticket_id=ticket_id,
                                                                 customer_id=customer_id),
                                    id=wid, task_queue=task_queue,
                                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE)
    with transaction(database_url) as db:
        db.execute(update(models.Ticket).where(models.Ticket.id == ticket_id).values(workflow_id=wid))
    return wid


#: start failures per ticket in this process (a ticket is quarantined at engine.events.MAX_ATTEMPTS)
_start_failures: dict[int, int] = {}


async def start_pending(client: Client, database_url: str | None, task_queue: str, limit: int = 200,
                        only: Sequence[int] | None = None) -> list[str]:
    """Start the workflows of tickets that have none yet (created by an event hook, or while Temporal
    was down) — of the tickets ``only`` when given (those a transaction just committed: engine/follow_ups.py;
    rows that did not commit, and sub-tasks marked ``""``, are skipped). Safe to run from several processes:
    the workflow id is derived from the ticket.

    One ticket that cannot be started never holds up the others: its failure is counted and, at the
    limit, the ticket goes to the quarantine (skipped here until an operator sends it again). An
    unreachable Temporal or database ends the pass without counting against any ticket."""
    from sqlalchemy import select

    from engine import quarantine
    from engine.db import models
    from engine.db.session import session_factory
    from engine.events import MAX_ATTEMPTS
    from engine.router import is_transient

    def waiting() -> list[int]:
        with session_factory(database_url)() as db:
            held = {int(ref.split(":", 1)[1]) for ref in quarantine.open_refs(db, "ticket_start")}
            query = select(models.Ticket.id).where(models.Ticket.workflow_id.is_(None))
            if only is not None:
                query = query.where(models.Ticket.id.in_(only))
            ids = db.scalars(query.order_by(models.Ticket.id).limit(limit + len(held))).all()
            return [i for i in ids if i not in held][:limit]

    started = []
    for ticket_id in await asyncio.to_thread(waiting):
        try:
            wid = await start_ticket(client, database_url, task_queue, ticket_id)
        except Exception as exc:
            if is_transient(exc):
                raise
            failures = _start_failures[ticket_id] = _start_failures.get(ticket_id, 0) + 1
            log.warning("ticket %s: its workflow could not be started (%d): %s", ticket_id, failures,
                        type(exc).__name__)
            if failures >= MAX_ATTEMPTS:
                await asyncio.to_thread(_quarantine_start, database_url, ticket_id, quarantine.reason(exc), failures)
                _start_failures.pop(ticket_id, None)
            continue
        _start_failures.pop(ticket_id, None)
        if wid:
            started.append(wid)
    return started


async def restart_ticket(client: Client, database_url: str | None, task_queue: str, ticket_id: int) -> str | None:
    """A reopened ticket's workflow ended when it was resolved: start it again (same id, a new run) to keep
    its SLA timers — the flow's walk is over, so only the SLA watch runs (``walk_done``), with the flow
    version the ticket ran. Returns the workflow id; None when the ticket runs no flow or is not open."""
    from temporalio.common import WorkflowIDReusePolicy
    from temporalio.exceptions import WorkflowAlreadyStartedError

    from engine.db import models
    from engine.db.session import session_factory

    with session_factory(database_url)() as db:
        ticket = db.get(models.Ticket, ticket_id)
        if ticket is None or not ticket.workflow_id or ticket.status in FINAL:
            return None
        wid, customer_id = ticket.workflow_id, ticket.customer_id
    handle = client.get_workflow_handle(wid)
    try:
        history = await handle.fetch_history()
        first = history.events[0].workflow_execution_started_event_attributes
        decoded = await client.data_converter.decode(list(first.input.payloads), [TicketInput])
        started: TicketInput = decoded[0]
    except Exception as exc:  # its history is gone (retention): the ticket keeps its SLA state, no timers
        log.warning("ticket %s: cannot restart its workflow (%s)", ticket_id, type(exc).__name__)
        return None
    try:
        await client.start_workflow(TICKET_WORKFLOW, TicketInput(flow=started.flow, ticket_id=ticket_id,
                                                                 customer_id=customer_id, variables=started.variables,
                                                                 walk_done=True),
                                    id=wid, task_queue=task_queue,
                                    id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE)
    except WorkflowAlreadyStartedError:  # still running (it had not seen the resolution yet): tell it
        await signal_changed(client, ticket_id, "status")
    return wid


def _quarantine_start(database_url: str | None, ticket_id: int, error: str, attempts: int) -> None:
    from engine import quarantine
    from engine.db.session import transaction

    with transaction(database_url) as db:
        quarantine.put(db, "ticket_start", f"ticket:{ticket_id}", error, {"ticket_id": ticket_id}, attempts=attempts)


async def signal_changed(client: Client, ticket_id: int, what: str = "") -> bool:
    """Tell the ticket's workflow something changed; False when it is not running (nothing to tell)."""
    from temporalio.service import RPCError

    try:
        await client.get_workflow_handle(ticket_workflow_id(ticket_id)).signal("changed", what)
    except RPCError:
        return False
    return True
