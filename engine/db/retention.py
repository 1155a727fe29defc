"""Deleting what is older than a retention period, in batches (the message archive, archived WeCom chats)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from wording import Msg

#: rows deleted per statement: a large backlog never holds one huge lock
PURGE_BATCH = 1000


def purge_older(db: Session, model: type[Any], stamp: InstrumentedAttribute[datetime], older_than_days: int,
                now: datetime) -> int:
    """Delete the rows of ``model`` whose ``stamp`` is before ``now - older_than_days``, :data:`PURGE_BATCH` at a
    time in id order; how many. A retention under one day is refused (0 means "do not purge" to the settings)."""
    if older_than_days < 1:
        raise ValueError(Msg("older_than_days must be at least 1; a retention of 0 means: do not purge"))
    cutoff = now - timedelta(days=older_than_days)
    total = 0
    while True:
        ids = list(db.scalars(select(model.id).where(stamp < cutoff).order_by(model.id).limit(PURGE_BATCH)))
        if not ids:
            return total
        db.execute(delete(model).where(model.id.in_(ids)))
        total += len(ids)
