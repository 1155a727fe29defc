"""What an action node sees when it runs (:meth:`~engine.nodes.base.NodeType.run` and ``run_many``):
its :class:`ActionContext` — the request (who, which journey, which node, the idempotency key), the
transaction, the customer — or, for a page of a broadcast, a :class:`BulkActionContext`; and the worker's
:class:`Services`.

Node types depend on this module and :mod:`engine.actions` (which runs them under the ledger) depends on
both, so neither imports the other: the one-by-one fallback a bulk context offers
(:attr:`BulkActionContext.perform_one`) is handed in by :func:`engine.actions.perform_many`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from engine.customers import customer_view, customer_views
from engine.db.models import utcnow
from engine.db.session import session_factory
from engine.runtime import ActionRequest


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
    #: writes to make in the transaction that records this action's result (see :meth:`record_with`)
    finishers: list[Callable[[Session], None]] = field(default_factory=list)
    #: whether ``db`` is that write transaction already (the run is inside it)
    in_ledger_transaction: bool = False

    def record_with(self, write: Callable[[Session], None]) -> None:
        """Make ``write(db)`` in the transaction that records this action's result in the ledger — for an
        action whose effect happened outside the database (a delivery), its bookkeeping (the message marked
        sent) then costs no transaction of its own. Inside that transaction already, it runs at once."""
        if self.in_ledger_transaction:
            write(self.db)
        else:
            self.finishers.append(write)

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
        return datetime.fromisoformat(self.request.now) if self.request.now else utcnow()

    @property
    def customer(self) -> dict[str, Any]:
        """The customer as expressions see it (attributes, tags, name, timezone)."""
        if self._customer is None:
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


@dataclass
class BulkActionContext:
    """What a bulk action sees (:meth:`~engine.nodes.base.NodeType.run_many`): the requests of one node
    for many customers (one key each, none recorded in the ledger yet), their customer views, and the
    worker's services. All requests share one node, config, flow settings and clock."""

    requests: list[ActionRequest]
    services: Services = field(default_factory=Services)
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: runs one request of this node the one-by-one way (:func:`engine.actions.perform`: its own ledger
    #: row), for node types that fall back to it; the engine hands it in
    perform_one: Callable[[ActionRequest], dict[str, Any]] = field(kw_only=True)

    @property
    def database_url(self) -> str | None:
        return self.services.database_url

    @property
    def now(self) -> datetime:
        first = self.requests[0].now if self.requests else None
        return datetime.fromisoformat(first) if first else utcnow()

    def customer(self, request: ActionRequest) -> dict[str, Any]:
        """The customer as expressions see it; views not given by the caller are loaded, all at once."""
        cid = request.customer_id
        if not cid:
            return {}
        if cid not in self.customers:
            wanted = [r.customer_id for r in self.requests if r.customer_id and r.customer_id not in self.customers]
            with session_factory(self.database_url)() as db:
                self.customers.update(customer_views(db, wanted))
        return self.customers.get(cid, {})

    def expression_context(self, request: ActionRequest) -> dict[str, Any]:
        return {"customer": self.customer(request), "event": request.event or {}, "vars": request.variables,
                "journey": {"id": request.workflow_id, "flow": request.flow_id}, "now": None}
