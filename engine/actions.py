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

import asyncio
import logging
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from temporalio import activity
from temporalio.exceptions import ApplicationError

from engine.db import models
from engine.db.session import session_factory, transaction
from engine.nodes.base import ActionResult, NodeType
from engine.runtime import ActionRequest

log = logging.getLogger(__name__)


class ActionFailed(Exception):
    """A permanent failure: retrying cannot help (bad config, refused by the platform)."""


@dataclass
class Services:
    """What activities may reach besides the database, set up once per worker process."""

    database_url: str | None = None
    loop: asyncio.AbstractEventLoop | None = None
    enroll: Callable[[str, str, dict[str, Any], str], Coroutine[Any, Any, Any]] | None = None
    start_flow: Callable[[dict[str, Any], str, str], Coroutine[Any, Any, Any]] | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    def run_async(self, coro: Coroutine[Any, Any, Any], timeout: float = 30) -> Any:
        """Run a coroutine on the worker's event loop from an activity thread."""
        if self.loop is None:
            coro.close()
            raise RuntimeError("no event loop: Services.loop is set when the worker starts")
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout)


@dataclass
class ActionContext:
    """What an action sees: who, where in which journey, the transaction, and helpers."""

    request: ActionRequest
    db: Session
    services: Services = field(default_factory=Services)
    _customer: dict[str, Any] | None = None

    @property
    def key(self) -> str:
        return self.request.key

    @property
    def idempotency_key(self) -> str:
        return self.request.key

    @property
    def customer_id(self) -> str | None:
        return self.request.customer_id

    @property
    def workflow_id(self) -> str:
        return self.request.workflow_id

    @property
    def flow_id(self) -> str:
        return self.request.flow_id

    @property
    def node_id(self) -> str:
        return self.request.node_id

    @property
    def variables(self) -> dict[str, Any]:
        return self.request.variables

    @property
    def event(self) -> dict[str, Any]:
        return self.request.event or {}

    @property
    def simulate(self) -> bool:
        return self.request.simulate

    @property
    def now(self) -> datetime:
        """The journey's time (simulated in previews); the wall clock when none was given."""
        from engine.db.models import utcnow

        return datetime.fromisoformat(self.request.now) if self.request.now else utcnow()

    @property
    def customer(self) -> dict[str, Any]:
        """The customer as expressions see it (attributes, tags, name, timezone)."""
        if self._customer is None:
            from engine.customers import customer_view

            self._customer = customer_view(self.db, self.customer_id) if self.customer_id else {}
        return self._customer

    def expression_context(self) -> dict[str, Any]:
        return {"customer": self.customer, "event": self.event, "vars": self.variables,
                "journey": {"id": self.workflow_id, "flow": self.flow_id}, "now": None}

    def enroll(self, flow_id: str, customer_id: str, variables: dict[str, Any]) -> Any:
        """Enroll a customer into another flow (idempotent: the entry id is this action's key)."""
        if self.services.enroll is None:
            raise RuntimeError("enrolment is not available in this process")
        return self.services.run_async(self.services.enroll(flow_id, customer_id, variables, self.key))


def recorded_result(db: Session, key: str) -> dict[str, Any] | None:
    entry = db.scalar(select(models.LedgerEntry).where(models.LedgerEntry.key == key))
    return dict(entry.result) if entry is not None else None


def perform(node_type: type[NodeType], request: ActionRequest, services: Services) -> dict[str, Any]:
    """Run one action exactly once per key; return its result as a dict (port, variables, detail)."""
    database_url = services.database_url
    try:
        config = node_type.Config.model_validate(request.config)
    except ValidationError as exc:
        raise ActionFailed(f"node '{request.node_id}': config no longer valid: {exc}") from None
    with session_factory(database_url)() as check:
        done = recorded_result(check, request.key)
    if done is not None:
        return done
    try:
        if node_type.transactional:
            with transaction(database_url) as db:
                result = _run(node_type, ActionContext(request, db, services), config)
                payload = asdict(result)
                if result.defer_until is None:  # a deferral is not the node's outcome: it runs again later
                    db.add(models.LedgerEntry(key=request.key, kind=node_type.type, result=payload))
            return payload
        with session_factory(database_url)() as plain:
            result = _run(node_type, ActionContext(request, plain, services), config)
        payload = asdict(result)
        if result.defer_until is None:
            with transaction(database_url) as db:
                db.add(models.LedgerEntry(key=request.key, kind=node_type.type, result=payload))
        return payload
    except IntegrityError:
        # another attempt committed first; its effect stands, ours was rolled back
        with session_factory(database_url)() as db:
            done = recorded_result(db, request.key)
        if done is None:
            raise
        return done


def _run(node_type: type[NodeType], ctx: ActionContext, config: Any) -> ActionResult:
    result = node_type.run(ctx, config)
    if not isinstance(result, ActionResult):
        raise ActionFailed(f"{node_type.type} returned {type(result).__name__}, not an ActionResult")
    return result


def make_activity(node_type: type[NodeType], services: Services) -> Callable[[ActionRequest], dict[str, Any]]:
    """The Temporal activity for an action node type (sync: runs in the worker's thread pool)."""

    @activity.defn(name=node_type.activity_name())
    def run_action(request: ActionRequest) -> dict[str, Any]:
        try:
            return perform(node_type, request, services)
        except ActionFailed as exc:
            raise ApplicationError(str(exc), type="ActionFailed", non_retryable=True) from None
        except Exception as exc:
            # a crashing action (or plugin) fails its node and is retried by its policy;
            # it never takes the worker down
            log.warning("action %s at %s failed: %s: %s", node_type.type, request.key, type(exc).__name__, exc)
            raise ApplicationError(f"{type(exc).__name__}: {exc}", type=type(exc).__name__) from None

    return run_action
