"""Event hooks: domain code that must see every accepted event exactly once (coupon redemption,
profile maintenance, auto-tagging), discovered through the entry point group ``tideflow.event_hooks``.

A hook is ``hook(db, event) -> None``; it runs inside the transaction that stores the event,
after the customer is resolved, so it happens once per event (a redelivery is a duplicate and
runs nothing) and atomically with the event's acceptance. A hook must do no outside I/O.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from sqlalchemy.orm import Session

from engine.db import models

GROUP = "tideflow.event_hooks"
EventHook = Callable[[Session, models.EventRecord], Any]
log = logging.getLogger(__name__)
_hooks: list[tuple[str, EventHook]] | None = None


def hooks() -> list[tuple[str, EventHook]]:
    """Every installed hook, in entry point name order (so ordering is stable and documented)."""
    global _hooks
    if _hooks is None:
        found = []
        for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name):
            found.append((ep.name, ep.load()))
        _hooks = found
    return _hooks


def run_hooks(db: Session, event: models.EventRecord) -> None:
    for _name, hook in hooks():
        hook(db, event)
