"""Why a journey failed, read from Temporal — and retrying or giving up on it.

The interpreter (:mod:`engine.interpreter`) ends a journey whose node failed with the status ``failed``
(an action out of retries or refused for good) or fails its workflow (an expression that cannot be
evaluated). The reason is in Temporal's history of the run: the activity's (or local activity's) failure
with its attempt count, the workflow's failure, and the journey's own result (its timeline ends with a
``failed`` step naming the node and the error). This module reads it from there and keeps it in
``journey_failures`` (:class:`engine.db.failure_models.JourneyFailure`) so the failure list can filter on it and
the reason outlives Temporal's retention.

The interpreter's own reason (an expression that cannot be evaluated, a config no longer valid, a filter past its
bound, a node type not installed) is a stored :class:`Msg` since ``engine.interpreter.REASON_PATCH`` — the detail of
the workflow's failure, or the ``reason`` of its result — kept as that Msg, so pages say it in the reader's
language; its node and node type are its values. Runs from before have English text, the node parsed out of it
(``node '…'``). An activity's failure carries its Msg in the stored form as its detail when it was raised with one
of ours (``engine.actions.failure_of``), read back as that Msg; else its words, shown as they are.

A journey still running can be in trouble too: an action being retried right now (Temporal's pending
activity says the attempt and the last error), or a workflow task failing over and over (a bug; the
history's last ``WorkflowTaskFailed`` says why). :func:`read_trouble` tells both.

**Retry** resets the failed run to just before the failing step (Temporal's ``ResetWorkflowExecution`` to
the workflow task that scheduled it): the same code replays the same history up to there and runs the step
again, with the same idempotency key — nothing done before is done twice, signals received since are
re-applied. The step's ``entered`` count goes up once more (it is entered again); its ``failed`` count
keeps the failure that happened. **Cancel** gives a failed journey up (its status becomes ``cancelled``)
or terminates a journey in trouble. Both are audited with before → after.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from temporalio.api.common.v1 import Payload, WorkflowExecution
from temporalio.api.enums.v1 import EventType
from temporalio.api.failure.v1 import Failure as FailureProto
from temporalio.api.history.v1 import HistoryEvent
from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from engine import auth
from engine.db import models
from engine.db.failure_models import JourneyFailure
from engine.db.models import User, utcnow
from engine.db.session import session_factory, transaction
from engine.interpreter import RETRIES_PREFIX, carried_reason
from engine.text import Msg, MsgError, verbatim
from wording.stored import MAX_REASON, stored, stored_english, stored_msg

log = logging.getLogger(__name__)

LOCAL_ACTIVITY_MARKER = "core_local_activity"
_NODE_IN_MESSAGE = re.compile(r"node '([^']{1,80})'")


class JourneyActionError(MsgError):
    """A retry or cancel that cannot be done; ``status`` is the HTTP status to answer with, ``code`` names the
    case for pages that say it in the reader's language."""

    def __init__(self, message: Msg, fix: Msg, status: int = 409, code: str = "refused") -> None:
        super().__init__(message, fix, "id", status)
        self.code = code


@dataclass(frozen=True)
class Failure:
    """Why the latest run of a journey failed."""

    workflow_id: str
    run_id: str
    node_id: str | None
    node_type: str | None
    #: action: a node's activity out of retries or refused for good; logic: an expression; engine: the
    #: workflow itself (a node type missing, a history no longer kept)
    kind: str
    error: str
    attempts: int
    #: retrying can help (the outside system was down) or cannot without a change (refused, a bad value)
    retryable: bool
    failed_at: datetime
    #: the workflow task to reset to for a retry (None: cannot be retried from here)
    reset_event_id: int | None

    def as_dict(self) -> dict[str, Any]:
        found = asdict(self)
        found["failed_at"] = self.failed_at.isoformat()
        return found


@dataclass(frozen=True)
class Trouble:
    """A running journey that keeps failing right now."""

    #: retrying: an action is being retried; stuck: the workflow's own code fails on every try
    state: str
    node_id: str | None
    node_type: str | None
    error: str
    #: how many tries failed so far
    failed_tries: int
    #: 0: no limit
    max_attempts: int
    next_attempt_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        found = asdict(self)
        found["next_attempt_at"] = self.next_attempt_at.isoformat() if self.next_attempt_at else None
        return found


# -- reading Temporal ------------------------------------------------------------------------------------


def _when(event: HistoryEvent) -> datetime:
    return event.event_time.ToDatetime().replace(tzinfo=UTC)


async def _decode(client: Client, payloads: Iterable[Payload]) -> list[Any]:
    try:
        return list(await client.data_converter.decode(list(payloads)))
    except Exception:  # a payload this process cannot read (another codec): the reason still has the error
        return []


async def _failure_text(client: Client, failure: FailureProto) -> tuple[Msg, bool]:
    """The innermost failure's message and whether retrying may help. Our actions' failures carry their ``Msg`` in
    the stored form as their detail (``engine.actions.failure_of``): that Msg, said in the reader's language;
    anything else (an activity from before, a plugin's own ``ApplicationError``, a timeout) in the failing code's
    words, shown verbatim."""
    while failure.HasField("cause") and (failure.HasField("activity_failure_info") or not failure.message):
        failure = failure.cause
    retryable = not (failure.HasField("application_failure_info") and failure.application_failure_info.non_retryable)
    try:
        error = await client.data_converter.decode_failure(failure)
        message = str(getattr(error, "message", None) or error)
    except Exception:
        error, message = None, failure.message
    kept = carried_reason(error)
    if kept is not None:
        return kept, retryable
    said = " ".join(message.split())[:MAX_REASON]
    if said:
        return verbatim(said), retryable
    return Msg("timed out") if failure.HasField("timeout_failure_info") else Msg("failed without a message"), retryable


def _node_from(message: str) -> str | None:
    """The node named in a failure's text (``node '…'``: legacy English, an activity's words)."""
    named = _NODE_IN_MESSAGE.search(message)
    return named.group(1) if named else None


def _named(reason: Msg) -> tuple[str | None, str | None]:
    """The node and the node type the interpreter's own reason names (:mod:`engine.interpreter` keeps them as the
    ``node`` and ``type`` values of its Msg, or of its ``where`` for a filter) — never parsed out of the words."""
    for holder in (reason, reason.values.get("where")):
        values = getattr(holder, "values", None)
        if isinstance(holder, Msg) and isinstance(values, dict) and (values.get("node") or values.get("type")):
            node, node_type = values.get("node"), values.get("type")
            return (str(node) if node else None), (str(node_type) if node_type else None)
    return None, None


async def _journey_reason(client: Client, failure: FailureProto) -> Msg | None:
    """The interpreter's own reason a journey's workflow failed with, read back as the Msg: since
    ``engine.interpreter.REASON_PATCH`` the workflow's failure (raised by the workflow's code, never an activity's:
    those arrive wrapped) carries the stored Msg as its detail. None for any other failure (a run from before, a
    bug in the workflow's code)."""
    info = failure.application_failure_info
    if not failure.HasField("application_failure_info") or failure.HasField("cause"):
        return None
    details = await _decode(client, info.details.payloads)
    return stored_msg(details[0]) if details and isinstance(details[0], str) else None


def _node_type(activity_type: str) -> str | None:
    return activity_type.removeprefix("node:") if activity_type.startswith("node:") else None


async def read_failure(client: Client, workflow_id: str) -> Failure | None:
    """The failure of the journey's latest run, from its history; None when it did not fail (it runs, or
    ended otherwise). Raises :class:`RPCError` (NOT_FOUND) when Temporal no longer has the workflow."""
    handle = client.get_workflow_handle(workflow_id)
    history = await handle.fetch_history()
    events = list(history.events)
    if not events:
        return None
    run_id = history.run_id
    scheduled: dict[int, tuple[str, str | None, int]] = {}  # event id → (activity type, node id, wft completed)
    attempts: dict[int, int] = {}
    first_tried: set[int] = set()
    last_completed_task: int | None = None
    last: dict[str, Any] | None = None  # the latest failure seen
    for event in events:
        kind = event.event_type
        if kind == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            last_completed_task = event.event_id
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = event.activity_task_scheduled_event_attributes
            decoded = await _decode(client, attrs.input.payloads)
            node = decoded[0].get("node_id") if decoded and isinstance(decoded[0], dict) else None
            scheduled[event.event_id] = (attrs.activity_type.name, node, attrs.workflow_task_completed_event_id)
            if attrs.activity_id.startswith(RETRIES_PREFIX):
                first_tried.add(event.event_id)
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            attrs_s = event.activity_task_started_event_attributes
            # the retries of a short action's first try (run in the workflow task) count that try too
            attempts[attrs_s.scheduled_event_id] = attrs_s.attempt + (attrs_s.scheduled_event_id in first_tried)
        elif kind in (EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED, EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT):
            if kind == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED:
                failed = event.activity_task_failed_event_attributes
                scheduled_id, failure = failed.scheduled_event_id, failed.failure
            else:
                timed = event.activity_task_timed_out_event_attributes
                scheduled_id, failure = timed.scheduled_event_id, timed.failure
            activity_type, node, task = scheduled.get(scheduled_id, ("", None, 0))
            error, retryable = await _failure_text(client, failure)
            last = {"node": node or _node_from(error), "type": _node_type(activity_type), "kind": "action",
                    "error": error, "retryable": retryable, "attempts": attempts.get(scheduled_id, 1),
                    "at": _when(event), "reset": task or None}
        elif kind == EventType.EVENT_TYPE_MARKER_RECORDED:
            marker = event.marker_recorded_event_attributes
            if marker.marker_name != LOCAL_ACTIVITY_MARKER or not marker.HasField("failure"):
                continue
            data = await _decode(client, marker.details["data"].payloads) if "data" in marker.details else []
            info = data[0] if data and isinstance(data[0], dict) else {}
            activity_type = str(info.get("activity_type") or "")
            if not activity_type.startswith("node:"):
                continue  # bookkeeping (a checkpoint), retried by its own policy
            error, retryable = await _failure_text(client, marker.failure)
            last = {"node": _node_from(error), "type": _node_type(activity_type), "kind": "action", "error": error,
                    "retryable": retryable, "attempts": int(info.get("attempt") or 1), "at": _when(event),
                    "reset": last_completed_task}
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:
            attrs_f = event.workflow_execution_failed_event_attributes
            reason = await _journey_reason(client, attrs_f.failure)
            if reason is not None:  # the interpreter's stored Msg: the node and its type are its values
                error, retryable = reason, False
                node, node_type = _named(reason)
            else:  # a run from before, or the workflow's own code: the node, if any, is in the text
                error, retryable = await _failure_text(client, attrs_f.failure)
                node, node_type = _node_from(error), None
            last = {"node": node, "type": node_type, "kind": "logic" if node else "engine", "error": error,
                    "retryable": False, "attempts": 1, "at": _when(event),
                    "reset": attrs_f.workflow_task_completed_event_id or last_completed_task}
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
            decoded = await _decode(client, event.workflow_execution_completed_event_attributes.result.payloads)
            result = decoded[0] if decoded and isinstance(decoded[0], dict) else {}
            if result.get("status") != "failed":
                return None
            timeline = result.get("timeline") or []
            step: dict[str, Any] = next((s for s in reversed(timeline) if s.get("what") == "failed"), {})
            node = step.get("node") or result.get("node")
            if last is None:
                # the interpreter's stored reason (a filter past its bound); from a run before it, the step's words
                kept = result.get("reason")
                error = (stored_msg(kept) if isinstance(kept, str) else None) \
                    or verbatim(str(step.get("error") or "failed"))
                named, node_type = _named(error)
                last = {"node": node or named, "type": node_type, "kind": "action", "error": error,
                        "retryable": True, "attempts": 1, "at": _when(event), "reset": None}
            elif node:
                last["node"] = node
        elif kind in (EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED,
                      EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED,
                      EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
                      EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT):
            return None
    closed = events[-1].event_type in (EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
                                       EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED)
    if last is None or not closed:
        return None
    return Failure(workflow_id=workflow_id, run_id=run_id, node_id=last["node"], node_type=last["type"],
                   kind=last["kind"], error=last["error"], attempts=max(1, int(last["attempts"])),
                   retryable=bool(last["retryable"]), failed_at=last["at"], reset_event_id=last["reset"])


async def read_trouble(client: Client, workflow_id: str) -> Trouble | None:
    """A running journey's current trouble: an action on its second (or later) attempt, or a workflow task
    failing again and again. None when it runs normally (or not at all)."""
    handle = client.get_workflow_handle(workflow_id)
    try:
        description = await handle.describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    if description.status != WorkflowExecutionStatus.RUNNING:
        return None
    raw = description.raw_description
    for pending in raw.pending_activities:
        if pending.attempt <= 1 and not pending.HasField("last_failure"):
            continue
        error, _ = await _failure_text(client, pending.last_failure) if pending.HasField("last_failure") \
            else (verbatim(""), True)
        node = await _pending_node(client, workflow_id, pending.activity_id)
        next_at = pending.next_attempt_schedule_time.ToDatetime().replace(tzinfo=UTC) \
            if pending.HasField("next_attempt_schedule_time") else None
        # ``attempt`` is the try running or coming next: the ones before it failed (and, for the retries of a
        # short action, its first try inside the workflow task, which the node's attempts include)
        first = 1 if pending.activity_id.startswith(RETRIES_PREFIX) else 0
        return Trouble(state="retrying", node_id=node or _node_from(error), node_type=_node_type(
            pending.activity_type.name), error=error, failed_tries=max(1, pending.attempt - 1 + first),
            max_attempts=pending.maximum_attempts + first if pending.maximum_attempts else 0,
            next_attempt_at=next_at)
    task = raw.pending_workflow_task
    if raw.HasField("pending_workflow_task") and task.attempt > 1:
        history = await handle.fetch_history()
        failed = [e for e in history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED]
        error = (await _failure_text(client, failed[-1].workflow_task_failed_event_attributes.failure))[0] \
            if failed else Msg("the workflow task keeps failing")
        return Trouble(state="stuck", node_id=_node_from(error), node_type=None, error=error,
                       failed_tries=task.attempt - 1, max_attempts=0, next_attempt_at=None)
    return None


async def _pending_node(client: Client, workflow_id: str, activity_id: str) -> str | None:
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    for event in history.events:
        if event.event_type != EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            continue
        attrs = event.activity_task_scheduled_event_attributes
        if attrs.activity_id == activity_id:
            decoded = await _decode(client, attrs.input.payloads)
            if decoded and isinstance(decoded[0], dict):
                return str(decoded[0].get("node_id") or "") or None
    return None


# -- keeping the reason ------------------------------------------------------------------------------------


def store(database_url: str | None, failure: Failure, flow_id: str) -> None:
    """Keep the failure of a journey (replacing an older one of the same journey)."""
    with transaction(database_url) as db:
        row = db.get(JourneyFailure, failure.workflow_id) or JourneyFailure(workflow_id=failure.workflow_id)
        row.run_id, row.flow_id, row.node_id = failure.run_id, flow_id, failure.node_id
        row.node_type, row.kind, row.error = failure.node_type, failure.kind, stored(failure.error, MAX_REASON)
        row.attempts, row.failed_at = failure.attempts, failure.failed_at
        row.recorded_at = utcnow()
        db.add(row)


def _history_gone(workflow_id: str, run_id: str = "") -> Failure:
    gone = Msg("the reason is no longer known: the workflow engine no longer keeps this journey's history")
    return Failure(workflow_id=workflow_id, run_id=run_id, node_id=None, node_type=None, kind="engine", error=gone,
                   attempts=1, retryable=False, failed_at=utcnow(), reset_event_id=None)


async def record_new_failures(client: Client, database_url: str | None, limit: int = 50) -> int:
    """Read and keep the reason of failed journeys whose reason is not kept yet (the web app runs this
    every few seconds, so reasons are kept long before Temporal forgets the history). Returns how many."""
    with session_factory(database_url)() as db:
        rows = db.execute(select(models.Journey.workflow_id, models.Journey.flow_id, models.Journey.current_node)
                          .outerjoin(JourneyFailure, JourneyFailure.workflow_id == models.Journey.workflow_id)
                          .where(models.Journey.status == "failed", JourneyFailure.workflow_id.is_(None))
                          .order_by(models.Journey.updated_at).limit(limit)).all()
    done = 0
    for workflow_id, flow_id, current_node in rows:
        try:
            failure = await read_failure(client, workflow_id)
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                log.warning("journey %s: failure not read (%s)", workflow_id, exc.status.name)
                continue
            failure = _history_gone(workflow_id)
        if failure is None:  # the row says failed but the run did not (yet): look again next time
            continue
        if failure.node_id is None and current_node:
            failure = Failure(**{**asdict(failure), "node_id": current_node})
        store(database_url, failure, flow_id)
        done += 1
    return done


# -- retry and cancel --------------------------------------------------------------------------------------


def _journey(db: Any, workflow_id: str) -> models.Journey:
    journey = db.get(models.Journey, workflow_id)
    if journey is None:
        raise JourneyActionError(Msg("journey '%(workflow_id)s' does not exist", workflow_id=workflow_id),
                                 Msg("list the failed journeys first"), 404,
                                 "unknown")
    return journey


def _failure_view(row: JourneyFailure | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {"node": row.node_id, "error": stored_english(row.error), "attempts": row.attempts, "kind": row.kind}


async def retry(client: Client, database_url: str | None, workflow_id: str, user: User) -> str:
    """Run a failed journey's failing step again (see the module docstring); returns the new run's id."""
    with session_factory(database_url)() as db:
        journey = _journey(db, workflow_id)
        if journey.status != "failed":
            raise JourneyActionError(Msg("the journey is %(status)s, not failed", status=journey.status),
                                     Msg("only a failed journey can be retried; reload the page"), code="not_failed")
        before = _failure_view(db.get(JourneyFailure, workflow_id))
    try:
        failure = await read_failure(client, workflow_id)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise JourneyActionError(Msg("the workflow engine no longer keeps this journey's history, so it cannot be "
                                         "run again from the failed step"),
                                     Msg("start the customer again (enrol) or cancel the journey"), 409,
                                     "history_gone") from None
        raise
    if failure is None or failure.reset_event_id is None:
        raise JourneyActionError(Msg("the failed step of this journey cannot be found in its history"),
                                 Msg("cancel the journey, or start the customer again"), 409, "no_step")
    with transaction(database_url) as db:  # first: the new run's checkpoints must be accepted
        journey = _journey(db, workflow_id)
        journey.status, journey.ended_at, journey.updated_at = "running", None, utcnow()
    try:
        answer = await client.workflow_service.reset_workflow_execution(ResetWorkflowExecutionRequest(
            namespace=client.namespace, workflow_execution=WorkflowExecution(workflow_id=workflow_id,
                                                                             run_id=failure.run_id),
            reason=f"retry by {user.username}", workflow_task_finish_event_id=failure.reset_event_id,
            request_id=str(uuid.uuid4())))
    except Exception:
        with transaction(database_url) as db:
            journey = _journey(db, workflow_id)
            if journey.status == "running":
                journey.status, journey.ended_at = "failed", journey.updated_at
        raise
    with transaction(database_url) as db:
        row = db.get(JourneyFailure, workflow_id)
        if row is not None:
            db.delete(row)
        auth.audit(db, user, "journey.retried", workflow_id, {"run_id": answer.run_id},
                   before={"status": "failed", **(before or {"node": failure.node_id, "error": failure.error,
                                                            "attempts": failure.attempts})},
                   after={"status": "running", "node": failure.node_id})
    return str(answer.run_id)


async def give_up(client: Client | None, database_url: str | None, workflow_id: str, user: User) -> str:
    """Cancel a failed journey (it stays on record as ``cancelled``, with its reason) or terminate one that is
    in trouble (retrying or stuck). Returns the journey's new status."""
    with session_factory(database_url)() as db:
        journey = _journey(db, workflow_id)
        status = journey.status
        before = {"status": status, **(_failure_view(db.get(JourneyFailure, workflow_id)) or {})}
    if status in ("running", "waiting"):
        if client is None:
            raise JourneyActionError(Msg("the workflow engine is not reachable right now"),
                                     Msg("try again in a minute"), 503,
                                     "engine_down")
        trouble = await read_trouble(client, workflow_id)
        if trouble is None:
            raise JourneyActionError(Msg("the journey is running normally"),
                                     Msg("use Cancel on the journey list: it ends at its next step"), 409,
                                     "running_normally")
        await client.get_workflow_handle(workflow_id).terminate(f"cancelled by {user.username}: {trouble.error}"[:500])
        before.update({"node": trouble.node_id, "error": trouble.error, "attempts": trouble.failed_tries})
    elif status != "failed":
        raise JourneyActionError(Msg("the journey is %(status)s", status=status),
                                 Msg("only a failed journey, or one that keeps failing, is cancelled here; reload "
                                     "the page"), code="not_cancellable")
    now = utcnow()
    with transaction(database_url) as db:
        journey = _journey(db, workflow_id)
        journey.status, journey.updated_at = "cancelled", now
        journey.ended_at = journey.ended_at or now
        auth.audit(db, user, "journey.cancelled", workflow_id, {}, before=before, after={"status": "cancelled"})
    return "cancelled"


def failures_of(db: Any, workflow_ids: Iterable[str]) -> dict[str, JourneyFailure]:
    wanted = list(workflow_ids)
    if not wanted:
        return {}
    return {f.workflow_id: f for f in db.scalars(select(JourneyFailure).where(JourneyFailure.workflow_id.in_(wanted)))}


def as_json(failure: JourneyFailure | None) -> dict[str, Any] | None:
    if failure is None:
        return None
    return {"node": failure.node_id, "node_type": failure.node_type, "kind": failure.kind,
            "error": stored_english(failure.error),
            "attempts": failure.attempts, "failed_at": failure.failed_at.isoformat()}


__all__ = ["Failure", "JourneyActionError", "Trouble", "as_json", "failures_of", "give_up", "read_failure",
           "read_trouble", "record_new_failures", "retry", "store"]
