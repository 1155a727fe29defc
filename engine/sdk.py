"""The plugin SDK: the public, stable surface for writing Tideflow node types in your own package.

A plugin is a Python package that declares node types under the entry point
group ``tideflow.activities``. The shortest way to write one is the
:func:`action` decorator::

    from engine.sdk import ActionContext, ActionResult, NodeConfig, Template, action

    class HelloConfig(NodeConfig):
        greeting: Template = "你好 {{ customer.name }}"

    @action("acme.hello", label={"zh-CN": "问候", "en": "Say hello"}, config=HelloConfig)
    def Hello(ctx: ActionContext, config: HelloConfig) -> ActionResult:
        return ActionResult(variables={"greeting": render(config.greeting, ctx)})

and in ``pyproject.toml``::

    [project.entry-points."tideflow.activities"]
    hello = "tideflow_acme:Hello"

Everything a plugin needs is importable from here (including :class:`LedgerEntry`, the
idempotency ledger: one row per completed action run, ``kind`` = the node type, ``result`` =
its ActionResult as a dict, to count what your node has already done); the rest of ``engine`` may change
between releases, this module changes only with a deprecation period (see docs/plugins.md).
"""

from __future__ import annotations

import builtins
import hashlib
import inspect
import re
import warnings
from collections.abc import Callable, Iterable, Mapping
from datetime import timedelta
from functools import wraps
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.orm import Session

from engine import expressions
from engine.actions import ActionContext, ActionFailed, Services, not_a_result
from engine.db.models import LedgerEntry
from engine.nodes.base import ActionResult, Duration, Expression, NodeConfig, NodeType, Template
from engine.outbound import OutboundRefused, guarded_client
from engine.runtime import ActionRequest
from engine.text import Msg, message_of

__all__ = [
    "RESERVED_PREFIXES",
    "TYPE_NAME",
    "ActionContext",
    "ActionDefinitionError",
    "ActionFailed",
    "ActionResult",
    "Duration",
    "Expression",
    "LedgerEntry",
    "NodeConfig",
    "NodeType",
    "OutboundRefused",
    "Template",
    "action",
    "evaluate",
    "hold_lock",
    "http_client",
    "make_context",
    "render",
]

#: a node type name: lower-case dotted, at least two parts (``acme.hello``, ``plugin.lottery``)
TYPE_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")
#: name spaces of the engine's own control nodes: their categories are run by the interpreter, not as activities
RESERVED_PREFIXES = ("trigger.", "wait.", "logic.")
#: categories that are not actions (the interpreter handles them itself)
CONTROL_CATEGORIES = ("trigger", "wait", "logic", "end")
KINDS = ("journey", "ticket", "settlement")
LANGUAGES = ("zh-CN", "en")
_PORT = re.compile(r"^[a-z][a-z0-9_]*$")

C = TypeVar("C", bound=BaseModel)


class ActionDefinitionError(ValueError):
    """A plugin's :func:`action` declaration is wrong; the message says what to change."""


def _fail(where: str, message: str) -> ActionDefinitionError:
    return ActionDefinitionError(f"{where}: {message}")


def _check_type_name(where: str, name: Any) -> str:
    if not isinstance(name, str) or not TYPE_NAME.fullmatch(name):
        raise _fail(where, f"type name {name!r} is not valid; use lower-case dotted words with a name space, "
                           "e.g. 'plugin.lottery' or 'acme.send_points'")
    for prefix in RESERVED_PREFIXES:
        if name.startswith(prefix):
            raise _fail(where, f"type name {name!r} is under the reserved built-in prefix '{prefix}'; "
                               f"use 'plugin.{name.split('.', 1)[1]}' or your own name space")
    return name


def _check_labels(where: str, what: str, value: Any, required: bool) -> dict[str, str]:
    if value is None and not required:
        return {}
    if isinstance(value, str) and not required:
        return dict.fromkeys(LANGUAGES, value)
    if not isinstance(value, Mapping):
        raise _fail(where, f"{what} must be a dict with 'zh-CN' and 'en' texts, "
                           f"e.g. {{'zh-CN': '抽奖', 'en': 'Lottery'}}")
    missing = [lang for lang in LANGUAGES if not isinstance(value.get(lang), str) or not value[lang].strip()]
    if missing:
        raise _fail(where, f"{what} needs a non-empty text for {' and '.join(repr(m) for m in missing)} "
                           "(the palette is shown in Chinese and English)")
    return {str(k): str(v) for k, v in value.items()}


def _check_ports(where: str, ports: Any, failure_port: Any) -> tuple[str, ...]:
    if isinstance(ports, str) or not isinstance(ports, Iterable):
        raise _fail(where, f"ports must be a tuple of port names, e.g. ('won', 'lost'); got {ports!r}")
    out = tuple(ports)
    if not out:
        raise _fail(where, "ports must name at least one output port, e.g. ('out',)")
    for port in out:
        if not isinstance(port, str) or not _PORT.fullmatch(port):
            raise _fail(where, f"port {port!r} is not valid; use lower-case words, e.g. 'out' or 'out_of_stock'")
    if len(set(out)) != len(out):
        raise _fail(where, f"ports {out!r} name a port twice")
    if failure_port is not None and failure_port not in out:
        raise _fail(where, f"failure_port {failure_port!r} is not one of the ports {out!r}; add it to ports")
    return out


def _check_config(where: str, config: Any) -> type[BaseModel]:
    if not (isinstance(config, type) and issubclass(config, BaseModel)):
        raise _fail(where, f"config must be a pydantic model class (subclass engine.sdk.NodeConfig); got {config!r}")
    try:
        config.model_json_schema()
    except Exception as exc:  # the designer's form is built from this schema, so it must exist
        raise _fail(where, f"config {config.__name__} has no JSON Schema ({exc}); use JSON-friendly field types"
                    ) from None
    if config.model_config.get("extra") != "forbid":
        warnings.warn(f"{where}: config {config.__name__} ignores unknown fields; subclass engine.sdk.NodeConfig "
                      "so a typo in a flow is an error on the canvas", UserWarning, stacklevel=3)
    return config


def _check_function(where: str, fn: Any) -> None:
    if not callable(fn):
        raise _fail(where, f"@action must decorate a function (ctx, config) -> ActionResult; got {fn!r}")
    try:
        inspect.signature(fn).bind(object(), object())
    except TypeError:
        raise _fail(where, "the function must take exactly two arguments: (ctx: ActionContext, config: YourConfig)"
                    ) from None
    except ValueError:  # a builtin without a signature: let it be
        pass


def _class_name(fn_name: str) -> str:
    if fn_name[:1].isupper():
        return fn_name
    return "".join(part.capitalize() for part in fn_name.split("_") if part) or "Action"


def action(type: str, *, label: dict[str, str], config: type[C], ports: Iterable[str] = ("out",),
           description: dict[str, str] | str | None = None, category: str = "plugin",
           kinds: Iterable[str] = KINDS, timeout: timedelta = timedelta(seconds=30), max_attempts: int = 5,
           failure_port: str | None = None,
           ) -> Callable[[Callable[[ActionContext, C], ActionResult]], builtins.type[NodeType]]:
    """Turn ``def fn(ctx, config) -> ActionResult`` into a node type (a :class:`NodeType` subclass).

    - ``type``: the node's unique name, ``namespace.name`` (not ``trigger.``/``wait.``/``logic.``);
    - ``label``: the palette text, ``{"zh-CN": ..., "en": ...}``; ``description`` likewise (or the docstring);
    - ``config``: the pydantic model of the node's settings: the designer's form and the validator come from it;
    - ``ports``: the output ports your function may return in ``ActionResult.port``;
    - ``timeout`` / ``max_attempts``: the activity's start-to-close timeout and retry budget;
    - ``failure_port``: a port to take when every attempt failed (None: the journey fails).

    The returned class is what the entry point names; ``TheClass.run(ctx, config)`` calls ``fn``
    (checking that it returns an :class:`ActionResult` on one of ``ports``), for unit tests.
    """
    where = f"@action({type!r})"
    name = _check_type_name(where, type)
    labels = _check_labels(where, "label", label, required=True)
    out_ports = _check_ports(where, ports, failure_port)
    model = _check_config(where, config)
    if not isinstance(category, str) or not _PORT.fullmatch(category) or category in CONTROL_CATEGORIES:
        raise _fail(where, f"category {category!r} is not allowed for an action; use 'plugin' or e.g. 'marketing'")
    kind_list = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    unknown = [k for k in kind_list if k not in KINDS]
    if not kind_list or unknown:
        raise _fail(where, f"kinds must be taken from {KINDS!r}; got {kind_list!r}")
    if not isinstance(timeout, timedelta) or timeout <= timedelta(0):
        raise _fail(where, f"timeout must be a positive timedelta, e.g. timedelta(seconds=30); got {timeout!r}")
    if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
        raise _fail(where, f"max_attempts must be an integer ≥ 1 (1: never retry); got {max_attempts!r}")

    def decorate(fn: Callable[[ActionContext, C], ActionResult]) -> builtins.type[NodeType]:
        _check_function(where, fn)
        doc = inspect.getdoc(fn)
        descriptions = _check_labels(where, "description", description if description is not None else
                                     (doc.split("\n\n", 1)[0].replace("\n", " ") if doc else None), required=False)

        @wraps(fn)
        def run(ctx: ActionContext, cfg: C) -> ActionResult:
            result = fn(ctx, cfg)
            if not isinstance(result, ActionResult):
                raise ActionFailed(not_a_result(name, result))
            if getattr(result, "defer_until", None) is None and result.port not in out_ports:
                raise ActionFailed(Msg("%(type)s returned port %(port)s, which is not one of its ports %(ports)s",
                                       type=name, port=repr(result.port), ports=repr(out_ports)))
            return result

        attributes: dict[str, Any] = {
            "__module__": fn.__module__,
            "__qualname__": _class_name(fn.__qualname__.rsplit(".", 1)[-1]),
            "__doc__": doc or labels["en"],
            "__wrapped__": fn,
            "type": name,
            "category": category,
            "label": labels,
            "description": descriptions,
            "kinds": kind_list,
            "Config": model,
            "ports": out_ports,
            "timeout": timeout,
            "max_attempts": max_attempts,
            "failure_port": failure_port,
            "run": staticmethod(run),
        }
        return builtins.type(_class_name(fn.__name__), (NodeType,), attributes)

    return decorate


# -- helpers for action bodies -----------------------------------------------------------------------------
def render(template: str, ctx: ActionContext) -> str:
    """Render a :data:`Template` config field against the customer, event, journey variables.

    Raises :class:`ActionFailed` (no retry) when the template cannot be rendered.
    """
    try:
        return expressions.render(template, ctx.expression_context())
    except expressions.ExpressionError as exc:
        raise ActionFailed(Msg("node '%(node)s': %(detail)s", node=ctx.node_id, detail=message_of(exc))) from None


def evaluate(expression: str, ctx: ActionContext) -> Any:
    """Evaluate an :data:`Expression` config field; :class:`ActionFailed` when it cannot be evaluated."""
    try:
        return expressions.evaluate(expression, ctx.expression_context())
    except expressions.ExpressionError as exc:
        raise ActionFailed(Msg("node '%(node)s': %(detail)s", node=ctx.node_id, detail=message_of(exc))) from None


def http_client(**kwargs: Any) -> httpx.Client:
    """An ``httpx.Client`` for calls your node makes on behalf of a flow (use it as a context manager).

    Every connection, redirects included, goes only to public addresses: loopback, private networks,
    link-local (cloud metadata), carrier-grade NAT, multicast and reserved addresses are refused with
    :class:`OutboundRefused` — after DNS resolution, connecting to the address that was checked — unless
    the operator allowed them (``TIDEFLOW_OUTBOUND_ALLOW``). Proxy environment variables are ignored.
    Keyword arguments go to ``httpx.Client`` (``timeout``, ``headers``, ``follow_redirects`` …).
    Treat :class:`OutboundRefused` as a permanent failure (raise :class:`ActionFailed`)."""
    kwargs.setdefault("timeout", httpx.Timeout(10.0))
    return guarded_client(**kwargs)


def lock_id(name: str) -> int:
    """A signed 64-bit number for ``name``, as PostgreSQL advisory locks take."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def hold_lock(ctx: ActionContext | Session, name: str) -> None:
    """Serialise this action's transaction with every other one holding ``name``, until it commits.

    Call it first, before reading what you are about to change (a budget, a counter), so two
    journeys racing cannot both read the old value. PostgreSQL: ``pg_advisory_xact_lock``;
    SQLite: takes the database's write lock (SQLite has one writer at a time).
    """
    db = ctx.db if isinstance(ctx, ActionContext) else ctx
    if db.get_bind().dialect.name == "postgresql":
        db.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": lock_id(name)})
    else:  # a write that changes nothing: SQLite begins the transaction holding the write lock
        db.execute(text(f"UPDATE {LedgerEntry.__tablename__} SET kind = kind WHERE 1 = 0"))


def make_context(*, key: str = "journey/test/customer-1/node/1", db: Session | None = None,
                 customer: dict[str, Any] | None = None, customer_id: str | None = "customer-1",
                 variables: dict[str, Any] | None = None, event: dict[str, Any] | None = None,
                 flow_id: str = "test", node_id: str = "node", node_type: str = "test.node",
                 config: dict[str, Any] | None = None, simulate: bool = False) -> ActionContext:
    """An :class:`ActionContext` for unit tests of an action function (no worker, no Temporal).

    ``customer`` is what ``ctx.customer`` returns (no database look-up); pass a ``db`` session
    when the action reads or writes the database.
    """
    workflow_id = key.rsplit("/", 2)[0] if key.count("/") >= 2 else key
    request = ActionRequest(key=key, workflow_id=workflow_id, flow_id=flow_id, version=1, node_id=node_id,
                            node_type=node_type, config=dict(config or {}), customer_id=customer_id,
                            variables=dict(variables or {}), event=event, simulate=simulate)
    session: Any = db
    return ActionContext(request, session, Services(), _customer=dict(customer or {}))
