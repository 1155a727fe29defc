"""The event-type catalogue as the pickers show it: the engine's built-in and plugin types
(:func:`engine.event_types.catalogue`), which connectors send each (the shop platforms' canonical order
and refund types, WeCom's and the Official Account's), and the types already seen in the events table —
cached for a few seconds so opening a form does not count the events table each time."""

from __future__ import annotations

import threading
import time
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from connectors.canonical import CHANNELS, ORDER_EVENT_STATUS, REFUND_EVENT_STATUS
from designer.display import label, number
from designer.events import labels as _labels  # noqa: F401  (the families' names)
from designer.i18n import _
from engine.db.session import session_factory
from engine.event_types import EVENT_TYPES, CatalogueEntry, SeenType, catalogue
from engine.events import seen_types

CACHE_SECONDS = 10.0
_cache: dict[str, tuple[float, dict[str, SeenType]]] = {}
_lock = threading.Lock()

#: connector kinds by the family of the types they send (the shops send the canonical order/refund shape)
_FAMILY_SENDERS = {"wecom": ("wecom",), "wechat": ("wechat_oa",)}
_SHOPS = tuple(c for c in CHANNELS if c != "api")


def producers() -> dict[str, tuple[str, ...]]:
    """Event type → the connectors that send it."""
    out: dict[str, tuple[str, ...]] = {t: _SHOPS for t in (*ORDER_EVENT_STATUS, *REFUND_EVENT_STATUS)}
    for name in EVENT_TYPES:
        senders = _FAMILY_SENDERS.get(name.split(".", 1)[0])
        if senders:
            out[name] = senders
    return out


def _seen(db_url: str) -> dict[str, SeenType]:
    now = time.monotonic()
    with _lock:
        hit = _cache.get(db_url)
        if hit is not None and now - hit[0] < CACHE_SECONDS:
            return hit[1]
    try:
        with session_factory(db_url)() as db:
            found = seen_types(db)
    except SQLAlchemyError:
        found = {}
    with _lock:
        _cache[db_url] = (now, found)
    return found


def forget(db_url: str) -> None:
    """Drop the cached counts (tests, or right after a burst of events)."""
    with _lock:
        _cache.pop(db_url, None)


def entries(db_url: str) -> list[CatalogueEntry]:
    return catalogue(_seen(db_url), producers())


def options(db_url: str, lang: str) -> list[dict[str, Any]]:
    """What a picker lists: value, label, group heading and a note (who sends it, how often it came), in the
    request's language."""
    out = []
    for entry in entries(db_url):
        if entry.origin == "plugin":
            group = _("Plugin: %(name)s") % {"name": entry.plugin or ""}
        else:
            group = label(entry.family, "event_family")
        notes = []
        if entry.producers:
            notes.append(" / ".join(label(p, "channel") for p in entry.producers))
        if entry.seen.count:
            notes.append(_("%(n)s received lately") % {"n": number(entry.seen.count)})
        elif entry.origin == "custom":
            notes.append(_("received before"))
        out.append({"value": entry.type, "label": entry.label(lang) if entry.labels else entry.type,
                    "group": group, "note": " · ".join(notes), "origin": entry.origin})
    return out
