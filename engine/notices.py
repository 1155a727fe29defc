"""Notices: platform news that is not a customer event — a staff member left, a customer group changed,
new archived chats are ready — handed by the inbound webhook to the domain code that acts on them.

A connector returns them in ``InboundReply.notices`` (``{"kind": …, …}`` dicts). After the reply's
events are stored, the web app calls :func:`dispatch`; handlers are found through the entry point
group ``tideflow.notice_handlers`` (``async handler(context, notice) -> None``), so the engine knows
none of them. A handler must be quick (the platform waits for its answer): it records what it must
and starts or signals a workflow; a handler that fails is logged and never fails the delivery —
the periodic syncs (group sync, archive catch-up) pick up what a lost notice would have started.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

GROUP = "tideflow.notice_handlers"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NoticeContext:
    connector_id: str
    connector_kind: str
    database_url: str | None
    #: a Temporal client when the web app has one (None: handlers record and let the periodic syncs act)
    client: Any = None
    task_queue: str = "tideflow"


Handler = Callable[[NoticeContext, dict[str, Any]], Awaitable[None]]
_handlers: list[tuple[str, Handler]] | None = None


def handlers() -> list[tuple[str, Handler]]:
    global _handlers
    if _handlers is None:
        _handlers = [(ep.name, ep.load()) for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name)]
    return _handlers


async def dispatch(context: NoticeContext, notices: list[dict[str, Any]]) -> int:
    """Hand each notice to every handler; how many handler calls failed (logged, never raised)."""
    failed = 0
    for notice in notices:
        for name, handler in handlers():
            try:
                await handler(context, notice)
            except Exception as exc:  # a notice is a hint: the periodic syncs repair what a failure misses
                failed += 1
                log.warning("notice handler %s failed on a %s notice from %s: %s", name, notice.get("kind"),
                            context.connector_id, type(exc).__name__)
    return failed
