"""action.update_profile: set, increment and unset customer attributes.

Config::

    {"set": {"vip_level": 2, "source": "{{ event.payload.channel }}",
             "last_order_fen": {"value": "{{ event.payload.amount_fen }}", "type": "int"}},
     "increment": {"coupons_received": 1},
     "unset": ["trial_ends"]}

* A literal JSON number, boolean or null is stored as is. Floats are refused: money is integer fen
  and other decimals are strings (``{"value": "4.5", "type": "decimal"}``).
* Every string is a template, rendered with the sandbox (``customer``, ``event``, ``vars``) — so a
  rendered value is a *string*. To store a number or a date, wrap it: ``{"value": ..., "type":
  "int" | "decimal" | "date" | "bool" | "string"}``. ``decimal`` is stored as a decimal string
  (``"12.50"``), ``date`` as ``YYYY-MM-DD``. A typed template that renders empty (a missing
  payload field) leaves the attribute unchanged and is reported under ``empty``; a value that
  does not convert fails the node (retrying cannot help).
* ``name`` and ``timezone`` update the customer's columns; ``id``, ``tags`` and the derived
  ``days_since_interaction`` cannot be written. Attribute names are identifiers: a letter, then
  letters, digits or ``_`` (at most 64).
* Templates see the customer as it was before this node ran.

The same rules serve the designer's manual profile edit (``POST /api/customers/{id}/profile``),
where strings are taken literally instead of rendered: :func:`apply_change`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, field_validator, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import expressions
from engine.actions import ActionContext, ActionFailed
from engine.customers import canonical
from engine.db import models
from engine.db.models import utcnow
from engine.nodes.base import ActionResult, NodeConfig, NodeType, Problem
from engine.text import Msg, MsgError, message_of
from engine.zones import known_zone, zone_problem

ATTRIBUTE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
#: names that are not attributes and cannot be written
RESERVED = frozenset({"id", "tags", "days_since_interaction"})
#: names that write the customer's own columns
COLUMNS = frozenset({"name", "timezone"})
MAX_STRING = 2000
ValueType = Literal["string", "int", "decimal", "date", "bool"]
_TRUE = {"true", "1", "yes", "y", "是"}
_FALSE = {"false", "0", "no", "n", "否"}


class ProfileError(MsgError):
    """A change that cannot be applied: a bad value, or an attribute that cannot hold it."""

    def __init__(self, message: Msg, attribute: str | None = None) -> None:
        super().__init__(message, field=attribute)
        self.attribute = attribute


class TypedValue(BaseModel):
    """A value with the type to store it as: ``{"value": "{{ event.payload.amount_fen }}", "type": "int"}``."""

    model_config = ConfigDict(extra="forbid")
    value: StrictStr | StrictInt | StrictBool | None = Field(description="a template or a literal")
    type: ValueType = Field(default="string", description="how to store the rendered value")


SetValue = StrictInt | StrictBool | StrictStr | TypedValue | None


def check_attribute(name: str, op: str = "set") -> None:
    """Raise :class:`ProfileError` unless ``name`` may be written by ``op`` (set, increment, unset)."""
    if not ATTRIBUTE.match(name):
        raise ProfileError(Msg("attribute '%(name)s' is not a valid name: start with a letter, then "
                               "letters, digits or '_' (at most 64)",
                               name=name), name)
    if name in RESERVED:
        raise ProfileError(Msg("attribute '%(name)s' is reserved and cannot be written",
                               name=name), name)
    if name in COLUMNS and op == "increment":
        raise ProfileError(Msg("'%(name)s' is text; it cannot be incremented", name=name), name)


def _no_floats(value: Any, where: str) -> None:
    if isinstance(value, float):
        raise ValueError(Msg("%(where)s: %(value)s is a float; store money as integer fen and "
                             'decimals as {"value": "%(example)s", "type": "decimal"}',
                             where=where, value=value, example=value))
    if isinstance(value, dict) and isinstance(value.get("value"), float):
        _no_floats(value["value"], where)


class ProfileChange(NodeConfig):
    set: dict[str, SetValue] = Field(default_factory=dict, description="attribute → template or literal value",
                                     examples=[{"vip_level": 2, "source": "{{ event.payload.channel }}"}])
    increment: dict[str, StrictInt] = Field(default_factory=dict, description="attribute → whole number to add",
                                            examples=[{"coupons_received": 1}])
    unset: list[str] = Field(default_factory=list, description="attributes to remove")

    @field_validator("set", mode="before")
    @classmethod
    def _refuse_floats(cls, value: Any) -> Any:
        if isinstance(value, dict):
            for name, item in value.items():
                _no_floats(item, f"attribute '{name}'")
        return value

    @model_validator(mode="after")
    def _valid_names(self) -> ProfileChange:
        if not (self.set or self.increment or self.unset):
            raise ValueError(Msg("set, increment or unset at least one attribute"))
        seen: dict[str, str] = {}
        for op, names in (("set", list(self.set)), ("increment", list(self.increment)), ("unset", self.unset)):
            for name in names:
                try:
                    check_attribute(name, op)
                except ProfileError as exc:
                    raise ValueError(exc.message) from None  # its Msg, so forms and the API translate it
                if name in seen:
                    raise ValueError(Msg("attribute '%(name)s' appears in both %(value)s and %(op)s; change it "
                                         "once",
                                         name=name, value=seen[name], op=op))
                seen[name] = op
        return self


UpdateProfileConfig = ProfileChange


# -- applying a change (pure conversions + one row) ----------------------------------------------------------
def convert(value: str | int | bool | None, kind: ValueType, name: str) -> Any:
    """``value`` as ``kind``; raises :class:`ProfileError` naming the attribute when it does not convert."""
    if value is None:
        return None
    text = ("true" if value else "false") if isinstance(value, bool) else str(value)
    if kind == "string":
        return text
    text = text.strip()
    try:
        if kind == "int":
            if isinstance(value, bool):
                raise ValueError
            return value if isinstance(value, int) else int(text)
        if kind == "decimal":
            number = Decimal(text)
            if not number.is_finite():
                raise ValueError
            return str(number)
        if kind == "date":
            try:
                return date.fromisoformat(text).isoformat()
            except ValueError:
                return datetime.fromisoformat(text).date().isoformat()
        if kind == "bool":
            if isinstance(value, bool):
                return value
            if text.lower() in _TRUE:
                return True
            if text.lower() in _FALSE:
                return False
            raise ValueError
    except (ValueError, InvalidOperation):
        pass
    shown = text if len(text) <= 40 else text[:40] + "…"
    hint = {"int": "a whole number such as 3", "decimal": "a decimal such as 12.50",
            "date": "a date such as 2024-05-01", "bool": "true or false"}[kind]
    raise ProfileError(Msg("attribute '%(name)s': '%(shown)s' is not %(hint)s",
                           name=name, shown=shown, hint=hint), name)


def resolve_values(change: ProfileChange, render: Callable[[str], str] | None) -> tuple[dict[str, Any], list[str]]:
    """The values to store for ``change.set`` (templates rendered when ``render`` is given) and the
    names whose typed template rendered empty (left unchanged)."""
    values: dict[str, Any] = {}
    empty: list[str] = []
    for name, item in change.set.items():
        raw, kind = (item.value, item.type) if isinstance(item, TypedValue) else (item, None)
        if isinstance(raw, str) and render is not None:
            raw = render(raw)
        if kind is None:
            values[name] = raw
        elif isinstance(raw, str) and not raw.strip() and kind != "string":
            empty.append(name)
        else:
            values[name] = convert(raw, kind, name)
        if isinstance(values.get(name), str) and len(values[name]) > MAX_STRING:
            raise ProfileError(Msg("attribute '%(name)s': the value is %(count)s characters; the limit is "
                                   "%(limit)s",
                                   name=name, count=len(values[name]), limit=MAX_STRING), name)
    return values, empty


def _incremented(current: Any, by: int, name: str) -> int:
    if current is None:
        return by
    if isinstance(current, int) and not isinstance(current, bool):
        return current + by
    if isinstance(current, str) and re.fullmatch(r"\s*-?\d+\s*", current):
        return int(current) + by
    shown = repr(current) if len(repr(current)) <= 40 else repr(current)[:40] + "…"
    raise ProfileError(Msg("attribute '%(name)s' holds %(shown)s, not a whole number; it cannot "
                           "be incremented",
                           name=name, shown=shown), name)


def locked_customer(db: Session, customer_id: str) -> models.Customer | None:
    """The surviving customer row, locked for update on PostgreSQL (SQLite serialises writers)."""
    query = select(models.Customer).where(models.Customer.id == canonical(db, customer_id))
    if db.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    return db.scalar(query)


def apply_change(db: Session, customer_id: str, change: ProfileChange,
                 render: Callable[[str], str] | None = None) -> dict[str, Any]:
    """Apply ``change`` to the customer in the caller's transaction.

    Returns what changed: ``{"customer_id", "set": {name: value}, "incremented": {name: new value},
    "unset": [names], "empty": [names]}``. Raises :class:`ProfileError` (nothing is written then) or
    LookupError when the customer does not exist.
    """
    customer = locked_customer(db, customer_id)
    if customer is None:
        raise LookupError(f"customer '{customer_id}' does not exist")
    values, empty = resolve_values(change, render)
    attributes = dict(customer.attributes or {})
    incremented = {name: _incremented(attributes.get(name), by, name) for name, by in change.increment.items()}
    for name, value in values.items():
        if name in COLUMNS and value is not None and not isinstance(value, str):
            raise ProfileError(Msg("'%(name)s' must be text, not '%(kind)s'",
                                   name=name, kind=value), name)
    if values.get("timezone") and not known_zone(values["timezone"]):
        raise ProfileError(zone_problem(values["timezone"]), "timezone")
    for name, value in values.items():
        if name == "name":
            customer.name = value[:200] if value else None
        elif name == "timezone":
            customer.timezone = value or None
        else:
            attributes[name] = value
    attributes.update(incremented)
    for name in change.unset:
        if name == "name":
            customer.name = None
        elif name == "timezone":
            customer.timezone = None
        else:
            attributes.pop(name, None)
    customer.attributes = attributes  # a new dict: JSON columns track assignment, not mutation
    customer.updated_at = utcnow()
    return {"customer_id": customer.id, "set": values, "incremented": incremented, "unset": list(change.unset),
            "empty": empty}


# -- the node --------------------------------------------------------------------------------------------------
class UpdateProfile(NodeType):
    type = "action.update_profile"
    category = "action"
    label = {"zh-CN": "更新客户资料", "en": "Update profile"}
    description = {"zh-CN": "设置、累加或清除客户属性（模板渲染为文本；用 type 指定 int/decimal/date/bool）",
                   "en": "Set, increment or unset customer attributes (templates render to text; "
                         "use type for int/decimal/date/bool)"}
    kinds = ("journey", "ticket")
    Config = ProfileChange

    @classmethod
    def check(cls, config: Any) -> list[Problem]:
        problems = []
        for name, item in config.set.items():
            source = item.value if isinstance(item, TypedValue) else item
            if isinstance(source, str):
                try:
                    expressions.compile_template(source)
                except expressions.ExpressionError as exc:
                    problems.append(Problem(None, f"set.{name}", Msg("template %(error)s", error=str(exc)),
                                            Msg("fix the template"), "bad_template"))
        return problems

    @classmethod
    def run(cls, ctx: ActionContext, config: Any) -> ActionResult:
        if ctx.customer_id is None:
            return ActionResult(detail={"skipped": "no customer"})
        context = ctx.expression_context()

        def render(source: str) -> str:
            try:
                return expressions.render(source, context)
            except expressions.ExpressionError as exc:
                raise ActionFailed(Msg("node '%(node)s': template of an attribute: %(detail)s", node=ctx.node_id,
                                       detail=message_of(exc))) from None

        try:
            changed = apply_change(ctx.db, ctx.customer_id, config, render)
        except ProfileError as exc:
            raise ActionFailed(Msg("node '%(node)s': %(detail)s", node=ctx.node_id, detail=message_of(exc))) from None
        except LookupError:
            return ActionResult(detail={"skipped": "no customer"})
        ctx._customer = None  # later reads in this activity see the new profile
        # workflow history keeps names only; values may be personal data (the preview shows them)
        detail: dict[str, Any] = {"set": sorted(changed["set"]), "incremented": sorted(changed["incremented"]),
                                  "unset": changed["unset"], "empty": changed["empty"]}
        if ctx.simulate:
            detail["values"] = {**changed["set"], **changed["incremented"]}
        return ActionResult(detail=detail)
