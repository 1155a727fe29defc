"""How actions run: an activity per action node type, each side effect recorded under an
idempotency key in the same transaction as the effect itself.

A node type's :meth:`~engine.nodes.base.NodeType.run` receives an
:class:`ActionContext` whose ``db`` session is inside one transaction together
with the ledger row for ``<workflow id>/<node id>/<visit>``. If the activity is
retried — after a timeout, a worker crash, a lost completion — the ledger row is
found and its recorded result is returned: nothing is sent, issued or paid twice.
Two workers racing on the same key both run the effect in their transaction, but
only one commits (unique key); the other rolls back and returns the winner's
result.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from temporalio import activity
from temporalio.exceptions import ApplicationError

from engine.action_context import ActionContext, BulkActionContext, Services
from engine.customers import customer_views
from engine.db import models
from engine.db.models import utcnow
from engine.db.session import database_unavailable, session_factory, transaction
from engine.nodes.base import ActionResult, NodeType
from engine.runtime import ActionRequest
from engine.text import Msg, caught, message_of, verbatim
from wording.stored import MAX_REASON, PREFIX, stored

log = logging.getLogger(__name__)
#: what actions see (defined in engine.action_context) is imported from here by node types and plugins too
__all__ = ["ActionContext", "ActionFailed", "BulkActionContext", "Services", "customer_views", "failure_of",
           "make_activity", "perform", "perform_many", "recorded_result", "recorded_results"]


class ActionFailed(Exception):
    """A permanent failure: retrying cannot help (bad config, refused by the platform). Raised with a
    :class:`~wording.Msg` (``ActionFailed(Msg("…", node=…))``), the reason reaches the journey's pages in the
    reader's language (:func:`failure_of`); raised with a plain string, its words are shown as they are."""


def not_a_result(node_type: str, result: object) -> Msg:
    """Why an action's (or a plugin's) ``run`` that returned something else than an ``ActionResult`` failed."""
    return Msg("%(type)s returned %(returned)s, not an ActionResult", type=node_type,
               returned=type(result).__name__)


def _config_invalid(node_id: str, exc: ValidationError) -> Msg:
    """A node's saved config the node type no longer takes: pydantic's words (a library's) kept verbatim."""
    return Msg("node '%(node)s': config no longer valid: %(detail)s", node=node_id, detail=verbatim(str(exc)))


def failure_of(exc: BaseException) -> ApplicationError:
    """The Temporal failure an action's exception crosses to the workflow as: its English as the message (what
    Temporal's UI, logs and clients read, as before) and, when it was raised with a :class:`~wording.Msg` of ours
    (a ``MsgError``, ``ActionFailed(Msg(…))``), that Msg in the stored form (``wording.stored``) as the only detail,
    so the interpreter and ``engine.journey_failures`` say it in the reader's language. Words that are not ours (a
    library's, a platform's) carry no detail: they are shown as they are, and stay plain text where saved.
    :class:`ActionFailed` is not retried; anything else is, by the node's policy, its type the exception's class
    (``non_retryable_error_types``)."""
    said = message_of(exc) if str(exc) else verbatim("")
    ours = stored(said, MAX_REASON).startswith(PREFIX)
    if isinstance(exc, ActionFailed):
        reason, kind, final = said, "ActionFailed", True
    else:
        kind, final, reason = type(exc).__name__, False, caught(exc, said)
    details = (stored(reason, MAX_REASON),) if ours else ()
    return ApplicationError(str(reason), *details, type=kind, non_retryable=final)


def recorded_result(db: Session, key: str) -> dict[str, Any] | None:
    entry = db.scalar(select(models.LedgerEntry).where(models.LedgerEntry.key == key))
    return dict(entry.result) if entry is not None else None


def perform(node_type: type[NodeType], request: ActionRequest, services: Services) -> dict[str, Any]:
    """Run one action exactly once per key; return its result as a dict (port, variables, detail).

    The ledger row, the writes the action asked for with :meth:`ActionContext.record_with`, and — when the
    journey ends after this action (``request.checkpoint``) — the journey's last checkpoint are one
    transaction; a transactional action's own effect is in it too."""
    database_url = services.database_url
    try:
        config = node_type.Config.model_validate(request.config)
    except ValidationError as exc:
        raise ActionFailed(_config_invalid(request.node_id, exc)) from None
    if not node_type.finds_own_outcome:
        with session_factory(database_url)() as check:
            done = recorded_result(check, request.key)
        if done is not None:
            return done
    try:
        if node_type.in_one_transaction(config, request.simulate):
            with transaction(database_url) as db:
                ctx = ActionContext(request, db, services, in_ledger_transaction=True)
                result = _run(node_type, ctx, config)
                payload = asdict(result)
                if result.defer_until is None:  # a deferral is not the node's outcome: it runs again later
                    _record(db, ctx, node_type.type, payload)
        else:
            with session_factory(database_url)() as plain:
                ctx = ActionContext(request, plain, services)
                result = _run(node_type, ctx, config)
            payload = asdict(result)
            if result.defer_until is None:
                with transaction(database_url) as db:
                    _record(db, ctx, node_type.type, payload)
    except Exception as exc:
        # another attempt committed first (IntegrityError on the ledger's key): its effect stands, ours was rolled
        # back. A type that finds its own outcome ran without reading the ledger first: whatever it raised, an
        # outcome recorded under the key is the answer (a retry of a sent message whose template fails now)
        if not isinstance(exc, IntegrityError) and not node_type.finds_own_outcome:
            raise
        with session_factory(database_url)() as db:
            done = recorded_result(db, request.key)
        if done is None:
            raise
        return done
    # a first attempt's latency only: a retry's includes its back-off (a flaky platform, not a backlog)
    first = not activity.in_activity() or activity.info().attempt == 1
    if first and request.measure_from and payload.get("defer_until") is None:
        with contextlib.suppress(ValueError):
            from engine.metrics import LAG

            LAG.observe((utcnow() - datetime.fromisoformat(request.measure_from)).total_seconds())
    return payload


def _record(db: Session, ctx: ActionContext, kind: str, payload: dict[str, Any]) -> None:
    """The action's ledger row with the writes it asked for and, when the journey ends on its port, the
    journey's last checkpoint (then ``payload["checkpointed"]`` names the status, recorded with it)."""
    for write in ctx.finishers:
        write(db)
    request = ctx.request
    plan = request.checkpoint
    port = str(payload.get("port") or "out")
    if plan and port not in (plan.get("continues") or []):
        from engine.journeys import apply_checkpoint
        from engine.runtime import Checkpoint

        status = str(plan.get("status") or "completed")
        apply_checkpoint(db, Checkpoint(
            key=request.key, workflow_id=request.workflow_id, flow_id=request.flow_id, version=request.version,
            customer_id=request.customer_id, status=status, node=request.node_id,
            stats=[*(plan.get("stats") or []), [request.node_id, "left", port, 1]], simulate=request.simulate))
        payload["checkpointed"] = status
    db.add(models.LedgerEntry(key=request.key, kind=kind, result=payload))


def _run(node_type: type[NodeType], ctx: ActionContext, config: Any) -> ActionResult:
    result = node_type.run(ctx, config)
    if not isinstance(result, ActionResult):
        raise ActionFailed(not_a_result(node_type.type, result))
    return result


#: within one attempt an action waits for the database to come back for at most this share of the attempt's
#: start-to-close time (a restart, a fail-over), trying again every DB_RETRY_FIRST … DB_RETRY_MAX seconds,
#: before the attempt fails: our own database down is not the action's failure, and must not use up the
#: node's attempts in seconds (five attempts 1, 2, 4, 8 s apart are over in 15 s; a database restart under
#: load takes longer). Finishing before the timeout, a thread is never left running beside the next attempt.
DB_PATIENCE_SHARE = 0.8
DB_RETRY_FIRST, DB_RETRY_MAX = 0.25, 4.0


def _patience(timeout: timedelta | None) -> float:
    """Seconds an attempt may wait for the database (:data:`DB_PATIENCE_SHARE` of its start-to-close time)."""
    return (timeout.total_seconds() if timeout else 0.0) * DB_PATIENCE_SHARE


def make_activity(node_type: type[NodeType], services: Services) -> Callable[[ActionRequest], dict[str, Any]]:
    """The Temporal activity for an action node type (sync: runs in the worker's thread pool)."""

    @activity.defn(name=node_type.activity_name())
    def run_action(request: ActionRequest) -> dict[str, Any]:
        deadline = time.monotonic() + _patience(activity.info().start_to_close_timeout or node_type.timeout)
        pause = DB_RETRY_FIRST
        while True:
            try:
                return perform(node_type, request, services)
            except ActionFailed as exc:
                raise failure_of(exc) from None
            except Exception as exc:
                left = deadline - time.monotonic()
                if database_unavailable(exc) and left > 0:
                    # the same try again, as Temporal's retry would (perform is once per key), without an attempt
                    log.warning("action %s at %s: the database is unavailable (%s); trying again in %.2f s",
                                node_type.type, request.key, type(exc).__name__, min(pause, left))
                    time.sleep(min(pause, left))
                    pause = min(pause * 2, DB_RETRY_MAX)
                    continue
                # a crashing action (or plugin) fails its node and is retried by its policy;
                # it never takes the worker down
                log.warning("action %s at %s failed: %s: %s", node_type.type, request.key, type(exc).__name__, exc)
                raise failure_of(exc) from None

    return run_action


def recorded_results(db: Session, keys: list[str]) -> dict[str, dict[str, Any]]:
    """The ledger's results for many keys (one query per 500)."""
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(keys), 500):
        chunk = keys[start:start + 500]
        for key, result in db.execute(select(models.LedgerEntry.key, models.LedgerEntry.result)
                                      .where(models.LedgerEntry.key.in_(chunk))):
            found[key] = dict(result)
    return found


def perform_many(node_type: type[NodeType], requests: list[ActionRequest], services: Services,
                 customers: dict[str, dict[str, Any]] | None = None) -> list[dict[str, Any] | Exception]:
    """:func:`perform` for many requests of one node: each runs exactly once per key. Returns, in order,
    each one's result (a dict, as :func:`perform`) or the exception that failed it.

    Keys already in the ledger are read in one query and not run again. A node type that offers
    :meth:`~engine.nodes.base.NodeType.run_many` runs the rest in bulk, and their results are recorded
    in the ledger in one transaction right after (a deferral is not recorded: it runs again later);
    anything else, or a bulk call that fails as a whole, runs one :func:`perform` per request.
    """
    if not requests:
        return []
    try:
        config = node_type.Config.model_validate(requests[0].config)
    except ValidationError as exc:
        failed = ActionFailed(_config_invalid(requests[0].node_id, exc))
        return [failed for _ in requests]
    database_url = services.database_url
    with session_factory(database_url)() as check:
        done = recorded_results(check, [r.key for r in requests])
    out: dict[str, dict[str, Any] | Exception] = {key: result for key, result in done.items()}
    pending = [r for r in requests if r.key not in done]
    # previews (simulate) run one by one: they record nothing outside the preview
    if pending and node_type.offers_bulk() and not any(r.simulate for r in pending):
        try:
            results = list(node_type.run_many(
                BulkActionContext(pending, services, {**(customers or {})},
                                  perform_one=functools.partial(perform, node_type, services=services)), config))
            if len(results) != len(pending):
                raise ActionFailed(Msg("%(type)s.run_many returned %(count)s results for %(requests)s requests",
                                       type=node_type.type, count=len(results), requests=len(pending)))
        except Exception as exc:
            log.warning("bulk %s at node %s failed as a whole, running one by one: %s: %s", node_type.type,
                        pending[0].node_id, type(exc).__name__, exc)
        else:
            out.update(_record_many(node_type, pending, results, database_url))
            pending = []
    for request in pending:
        try:
            out[request.key] = perform(node_type, request, services)
        except Exception as exc:
            out[request.key] = exc
    return [out[r.key] for r in requests]


def _record_many(node_type: type[NodeType], requests: list[ActionRequest],
                 results: list[ActionResult | Exception], database_url: str | None) -> dict[str, Any]:
    """Ledger rows for a bulk call's results, in one transaction; a key another attempt recorded
    first keeps that attempt's result."""
    out: dict[str, dict[str, Any] | Exception] = {}
    rows: list[dict[str, Any]] = []
    for request, result in zip(requests, results, strict=True):
        if isinstance(result, Exception):
            out[request.key] = result
            continue
        if not isinstance(result, ActionResult):
            out[request.key] = ActionFailed(not_a_result(node_type.type, result))
            continue
        # what asdict() gives, without its deep copy (a broadcast page records a thousand of these)
        payload = {"port": result.port, "variables": dict(result.variables), "detail": dict(result.detail),
                   "defer_until": result.defer_until, "awaiting": result.awaiting}
        out[request.key] = payload
        if result.defer_until is None:
            rows.append({"key": request.key, "kind": node_type.type, "result": payload, "created_at": utcnow()})
    if rows:
        with transaction(database_url) as db:
            table = models.LedgerEntry.__table__
            assert isinstance(table, Table)
            dialect = db.get_bind().dialect.name
            stmt = (postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table))
            # a key a racing attempt of the same page recorded first keeps its row: both results come from
            # the same idempotent effect (for messages, the one message row under that key)
            db.execute(stmt.on_conflict_do_nothing(index_elements=["key"]), rows)
    return out
