"""The customer's satisfaction-survey link (``/csat/<ticket id>/<token>``): signed, expiring, single-use.

The token is ``<expiry as unix seconds>.<HMAC-SHA256 of ticket id and expiry>`` under a key derived from
the instance key, so it cannot be forged, names its own expiry (``TIDEFLOW_CSAT_LINK_DAYS``, default 14
days after it was sent) and cannot be stretched. It is single-use: the first rating is stored once per
ticket (a ``csat`` ticket event keyed ``csat/<id>``), after which the link only says it was used.
Tokens in the old form (no expiry) are refused as expired.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta
from typing import Literal

from engine.secrets import instance_key

Verdict = Literal["ok", "expired", "invalid"]
DEFAULT_DAYS = 14


def _mac(ticket_id: int, expires: int, key: str | None) -> str:
    secret = hashlib.sha256(b"tideflow/csat/v2\x00" + (key or instance_key()).encode()).digest()
    return hmac.new(secret, f"ticket:{ticket_id}:{expires}".encode(), hashlib.sha256).hexdigest()[:40]


def _old_form(ticket_id: int, key: str | None) -> str:
    """The token links had before they expired (no expiry inside): recognised, to say "expired"."""
    secret = hashlib.sha256(b"tideflow/csat/v1\x00" + (key or instance_key()).encode()).digest()
    return hmac.new(secret, f"ticket:{ticket_id}".encode(), hashlib.sha256).hexdigest()[:40]


def link_token(ticket_id: int, now: datetime, days: int = DEFAULT_DAYS, key: str | None = None) -> str:
    """The token of a link sent at ``now``, valid for ``days``."""
    expires = int((now + timedelta(days=days)).timestamp())
    return f"{expires}.{_mac(ticket_id, expires, key)}"


def check(ticket_id: int, token: str, now: datetime, key: str | None = None) -> Verdict:
    """Whether ``token`` opens ticket ``ticket_id``'s survey at ``now``: the signature first, then the expiry."""
    expires_text, _, mac = token[:100].partition(".")
    if not expires_text.isdigit() or not mac:
        return "expired" if hmac.compare_digest(_old_form(ticket_id, key).encode(), token[:100].encode()) \
            else "invalid"
    expires = int(expires_text)
    if not hmac.compare_digest(_mac(ticket_id, expires, key).encode(), mac.encode()):
        return "invalid"
    return "ok" if now.timestamp() <= expires else "expired"
