"""Whether an incoming event is the one a wait (or an exit / goal rule) looks for.

A pure function shared by the journey interpreter and the ticket workflow: deterministic, no I/O,
so it is safe in workflow code.
"""

from __future__ import annotations

from typing import Any

from engine import expressions
from engine.nodes.base import Context, EventWait


def event_matches(match: dict[str, Any] | EventWait, event: dict[str, Any], ctx: Context, *,
                  raise_too_costly: bool = False) -> bool:
    """``event`` has the wanted type and passes the filter (evaluated with ``event`` in scope); a filter
    that fails to evaluate does not match. ``match`` is an :class:`EventWait` or a flow's ``{"event",
    "filter"}`` rule. With ``raise_too_costly``, a filter that goes past its bound raises
    :class:`~engine.expressions.ExpressionTooCostly` instead, so the caller can fail the journey with
    the reason rather than wait for an event that can never match."""
    kind = match.event if isinstance(match, EventWait) else match.get("event")
    flt = match.filter if isinstance(match, EventWait) else match.get("filter")
    if event.get("type") != kind:
        return False
    if not flt:
        return True
    scope = ctx.as_mapping()
    scope["event"] = event
    try:
        return expressions.test(flt, scope)
    except expressions.ExpressionTooCostly:
        if raise_too_costly:
            raise
        return False
    except expressions.ExpressionError:
        return False
