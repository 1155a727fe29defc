"""Time zone names (IANA: ``Asia/Shanghai``): one check for every way a zone name comes in — a flow's
settings, a customer's profile on an event, a channel, a loyalty programme, a settlement plan, a ticket
calendar, the workspace's settings — and one fallback for reading a name stored before that check.

``ZoneInfo(name)`` alone is not a check: besides an unknown name (``ZoneInfoNotFoundError``) and a malformed
one (``ValueError``: empty, absolute, ``..``, a NUL byte), a name longer than the file system allows raises
``OSError`` (*File name too long*), which nothing expected; and a customer's zone is stored in a column of
:data:`MAX_ZONE_NAME` characters, which PostgreSQL enforces and SQLite does not. A customer whose stored zone
is not one (sent before events were checked, or written by hand) must not stop what reads it: a quiet-hours
gate, a broadcast page, a ``wait.until`` — those go by the flow's zone instead (:func:`zone_or`), as for a
customer without one.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from engine.text import Msg

#: the longest name accepted: the width of ``customers.timezone``; the longest IANA name has 32 characters
MAX_ZONE_NAME = 60


def known_zone(name: object) -> bool:
    """Whether ``name`` is the name of a time zone this machine knows. Never raises."""
    if not isinstance(name, str) or not name or len(name) > MAX_ZONE_NAME:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def zone_problem(name: object) -> Msg:
    """What is wrong with a name that is not a known zone, with the fix, for an error a user reads."""
    shown = str(name)
    if len(shown) > MAX_ZONE_NAME:
        shown = shown[:MAX_ZONE_NAME] + "…"
    return Msg("'%(name)s' is not an IANA time zone such as 'Asia/Shanghai'", name=shown)


def check_zone(name: str) -> str:
    """``name`` if it is a known zone; else ``ValueError`` with :func:`zone_problem` (for pydantic validators,
    which then name the field)."""
    if not known_zone(name):
        raise ValueError(zone_problem(name))
    return name


def zone_or(name: object, fallback: str) -> str:
    """``name`` if it is a known zone, else ``fallback`` (the flow's or the workspace's zone): for a zone read
    from stored data, which an older release may have kept unchecked."""
    return name if isinstance(name, str) and known_zone(name) else fallback
