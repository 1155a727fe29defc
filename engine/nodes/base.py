"""What a node type is: one class with a config model, ports, category, labels and behaviour.

Built-in node types and plugin node types are the same kind of class and are
discovered the same way (entry point group ``tideflow.activities``, see
:mod:`engine.registry`). The designer's property form and the validator both
come from :attr:`NodeType.Config` — its JSON Schema — never written twice.

A node type does one of four things, by category:

* ``trigger`` — how customers enter (the event router and scheduler read its config);
* ``wait`` — :meth:`NodeType.wait_plan` says how long and for which events;
* ``logic`` / ``end`` — :meth:`NodeType.decide` picks the output port, purely;
* anything else — an action: :meth:`NodeType.run` does the side effect inside an
  activity, under an idempotency key.
"""

from __future__ import annotations

import builtins
import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from engine.durations import parse_duration

if TYPE_CHECKING:
    from collections.abc import Sequence

    from engine.action_context import ActionContext, BulkActionContext


class _Format:
    """Annotated marker: the string is an expression, a template or a duration."""

    def __init__(self, fmt: str) -> None:
        self.format = fmt

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        out = handler(schema)
        out["format"] = self.format
        return out

    def __repr__(self) -> str:
        return f"<{self.format}>"


EXPRESSION = _Format("expression")
TEMPLATE = _Format("template")
DURATION = _Format("duration")


def _valid_duration(value: str) -> str:
    parse_duration(value)
    return value


Expression = Annotated[str, EXPRESSION]
Template = Annotated[str, TEMPLATE]
Duration = Annotated[str, AfterValidator(_valid_duration), DURATION]


class NodeConfig(BaseModel):
    """Base for node config models: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


class EmptyConfig(NodeConfig):
    pass


@dataclass(frozen=True)
class EventWait:
    """Wait for an event of this type (and filter) and leave by ``port`` when it comes."""

    event: str
    filter: str | None
    port: str


@dataclass(frozen=True)
class WaitPlan:
    """How a wait node blocks: until ``timeout`` passes (then ``timeout_port``) or an event comes."""

    timeout: timedelta | None
    timeout_port: str
    events: tuple[EventWait, ...] = ()


@dataclass
class Context:
    """What expressions see: the customer, the triggering/last event, journey variables."""

    customer: dict[str, Any] = field(default_factory=dict)
    event: dict[str, Any] = field(default_factory=dict)
    vars: dict[str, Any] = field(default_factory=dict)
    journey: dict[str, Any] = field(default_factory=dict)
    now: datetime | None = None

    def as_mapping(self) -> dict[str, Any]:
        return {"customer": self.customer, "event": self.event, "vars": self.vars,
                "journey": self.journey, "now": self.now}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a flow, said so that a person can fix it."""

    node: str | None
    field: str | None
    message: str
    fix: str
    code: str = "invalid"

    def as_dict(self) -> dict[str, Any]:
        return {"node": self.node, "field": self.field, "message": self.message, "fix": self.fix,
                "code": self.code}


@dataclass(frozen=True)
class ActionResult:
    """What an action did: the port to leave by, variables to set, and a detail for the log."""

    port: str = "out"
    variables: dict[str, Any] = field(default_factory=dict)
    detail: dict[str, Any] = field(default_factory=dict)
    #: ISO time: not now — the journey waits (a durable timer) and runs this node again then
    defer_until: str | None = None
    #: with ``defer_until``: the outcome is not known yet and comes from outside (a staff member confirming a
    #: WeCom mass send) — the key a ``wake`` signal names when it is in. A journey waits durably until
    #: ``defer_until`` or that signal, whichever is first, and runs the node again (same idempotency key);
    #: a broadcast parks the customer at the node and the domain resumes them
    #: (:func:`engine.broadcast.resume_page`) once the outcome is in
    awaiting: str | None = None


class NodeType:
    """One node type. Subclass it, set the class attributes, override what your category needs."""

    type: ClassVar[str]
    category: ClassVar[str] = "action"
    label: ClassVar[dict[str, str]] = {}
    description: ClassVar[dict[str, str]] = {}
    kinds: ClassVar[tuple[str, ...]] = ("journey", "ticket", "settlement")
    Config: ClassVar[builtins.type[BaseModel]] = EmptyConfig
    ports: ClassVar[tuple[str, ...]] = ("out",)
    #: ports that must have an outgoing edge for the flow to be valid
    required_ports: ClassVar[tuple[str, ...]] = ()
    #: actions: Temporal activity options
    timeout: ClassVar[timedelta] = timedelta(seconds=30)
    max_attempts: ClassVar[int] = 5
    #: actions: a port to take once retries are exhausted (e.g. ``failed``); None fails the journey
    failure_port: ClassVar[str | None] = None
    #: actions: True runs ``run`` inside the write transaction that records the idempotency ledger
    #: (database effects: tags, coupons, message log). False is for effects outside the database
    #: (HTTP calls, starting workflows) that are idempotent by the key themselves: ``run`` gets a
    #: plain session and holds no write lock while it waits on the outside world; the ledger row is
    #: written right after it returns.
    transactional: ClassVar[bool] = True
    #: actions: run as a Temporal *local* activity (inside the journey's workflow task: no activity task
    #: round trip through the server) — for short steps idempotent by their key. None: when
    #: :attr:`transactional` (database effects are short); a send sets it True, long calls False.
    local: ClassVar[bool | None] = None
    #: actions: ``run`` finds an earlier attempt's outcome under the request's key by itself (a send finds its
    #: message row in the transaction that reserves it) and then ends without a second effect; the engine reads
    #: no ledger before ``run`` (a read less on every first attempt) and answers with the ledger's recorded
    #: result when recording collides with it or when ``run`` fails
    finds_own_outcome: ClassVar[bool] = False
    #: where the node type came from (set by the registry: ``builtin`` or the distribution name)
    origin: ClassVar[str] = "builtin"

    # -- shape ---------------------------------------------------------------------------------
    @classmethod
    def output_ports(cls, config: BaseModel) -> list[str]:
        """Ports of a node with this config (switch and split override: one port per case)."""
        return list(cls.ports)

    @classmethod
    def check(cls, config: BaseModel) -> list[Problem]:
        """Checks beyond the config model (node id and field are filled in by the validator)."""
        return []

    @classmethod
    def entry_event(cls, config: Any) -> tuple[str, str | None] | None:
        """Event-driven triggers: the event type that starts the flow and a filter expression over
        ``event`` / ``customer`` (or None). The router and the publisher ask this, so a trigger type
        of a domain (``trigger.referral``) starts flows like ``trigger.event`` does."""
        return None

    @classmethod
    def is_trigger(cls) -> bool:
        return cls.category == "trigger"

    @classmethod
    def is_wait(cls) -> bool:
        return cls.category == "wait"

    @classmethod
    def is_action(cls) -> bool:
        return cls.category not in ("trigger", "wait", "logic", "end")

    @classmethod
    def activity_name(cls) -> str:
        return f"node:{cls.type}"

    @classmethod
    def runs_locally(cls) -> bool:
        return cls.transactional if cls.local is None else cls.local

    @classmethod
    def in_one_transaction(cls, config: Any, simulate: bool) -> bool:
        """Whether this run goes inside the ledger's write transaction (default: :attr:`transactional`). A
        ``transactional = False`` type may say yes for a config that touches nothing outside the database
        (``action.send_message`` to the dry-run channel)."""
        return cls.transactional

    # -- behaviour -----------------------------------------------------------------------------
    @classmethod
    def decide(cls, config: Any, ctx: Context, instance_id: str, node_id: str) -> str:
        """Logic and end nodes: the output port. Must be pure and deterministic.

        A logic node may also record results for later nodes by replacing ``ctx.vars`` with a new
        dict (``ctx.vars = {**ctx.vars, ...}``, as ``logic.decision_table`` does): the interpreters
        keep that context, and since no Temporal command is involved, replay is unaffected."""
        return cls.ports[0] if cls.ports else ""

    @classmethod
    def wait_plan(cls, config: Any, ctx: Context, now: datetime, timezone: str) -> WaitPlan:
        """Wait nodes: how long and for which events to block."""
        raise TypeError(f"{cls.type} is not a wait node")

    @classmethod
    def run(cls, ctx: ActionContext, config: Any) -> ActionResult:
        """Actions: do the side effect. Runs inside an activity with ``ctx.db`` in one transaction
        together with the idempotency ledger, so a retry never does it twice."""
        raise TypeError(f"{cls.type} is not an action")

    @classmethod
    def run_many(cls, ctx: BulkActionContext, config: Any) -> Sequence[ActionResult | Exception]:
        """Actions, optional: do the side effect for many customers at once (a page of a broadcast),
        one :class:`ActionResult` — or the exception that failed it — per ``ctx.requests``, in order.

        Override it when a node can batch its work (one query for many customers, bulk inserts).
        The engine (:func:`engine.actions.perform_many`) passes only requests whose key is not in the
        ledger yet and records the results in the ledger right after ``run_many`` returns, so it must
        be idempotent by each request's key itself, like a ``transactional = False`` action (a crash
        before the ledger is written runs it again for those keys). If it raises, the engine runs
        the requests one by one through :meth:`run`.

        This default does exactly that, one :func:`engine.actions.perform` per request (which
        records its own ledger row), through ``ctx.perform_one``; the engine calls ``perform`` directly
        when a node type does not override ``run_many`` (see :meth:`offers_bulk`)."""
        results: list[ActionResult | Exception] = []
        for request in ctx.requests:
            try:
                results.append(ActionResult(**ctx.perform_one(request)))
            except Exception as exc:
                results.append(exc)
        return results

    @classmethod
    def offers_bulk(cls) -> bool:
        """True when this node type overrides :meth:`run_many` with a bulk implementation."""
        return getattr(cls.run_many, "__func__", None) is not getattr(NodeType.run_many, "__func__", None)

    @classmethod
    def schema(cls) -> dict[str, Any]:
        return cls.Config.model_json_schema()

    @classmethod
    def describe(cls) -> dict[str, Any]:
        return {
            "type": cls.type,
            "category": cls.category,
            "label": cls.label,
            "description": cls.description,
            "kinds": list(cls.kinds),
            "ports": list(cls.ports),
            "required_ports": list(cls.required_ports),
            "failure_port": cls.failure_port,
            "origin": cls.origin,
            "config_schema": cls.schema(),
        }


def stable_fraction(*parts: str) -> float:
    """A number in [0, 1) from the parts, the same on every run and every machine."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64
