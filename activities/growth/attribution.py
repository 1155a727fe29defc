"""Source attribution of a customer to channels: first touch and last touch. Pure: no I/O.

A customer who adds a staff member through a channel code (or follows the Official Account through a
parametric QR code) *touches* that channel. The profile keeps

* ``first_touch_channel`` / ``first_touch_at`` — the earliest touch ever seen (set once; an earlier
  touch that arrives late — a delayed callback — replaces a later one), and
* ``last_touch_channel`` / ``last_touch_at`` — the latest touch (a late, older touch does not
  overwrite a newer one).

Times are ISO 8601 strings in UTC, the way profile attributes store times.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from engine.customers import parse_time
from engine.text import Msg

FIRST_CHANNEL, FIRST_AT = "first_touch_channel", "first_touch_at"
LAST_CHANNEL, LAST_AT = "last_touch_channel", "last_touch_at"


def touch(attributes: Mapping[str, Any], channel: str, at: datetime) -> dict[str, Any]:
    """The attribute changes that record a touch of ``channel`` at ``at`` (empty when nothing changes)."""
    if at.tzinfo is None:
        raise ValueError(Msg("at must be timezone-aware"))
    stamp = at.astimezone(UTC).isoformat()
    changes: dict[str, Any] = {}
    first = parse_time(attributes.get(FIRST_AT))
    if first is None or at < first or not attributes.get(FIRST_CHANNEL):
        changes.update({FIRST_CHANNEL: channel, FIRST_AT: stamp})
    last = parse_time(attributes.get(LAST_AT))
    if last is None or at >= last or not attributes.get(LAST_CHANNEL):
        changes.update({LAST_CHANNEL: channel, LAST_AT: stamp})
    return changes
