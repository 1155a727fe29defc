"""Shop connectors that are polled rather than pushed (Taobao/Tmall TOP, JD JOS): the shared protocol.

A polled connector reads one *stream* (``orders``, ``refunds``) one time window at a time:
``poll_window(stream, start, end, settings, secrets)`` yields pages of canonical events (see
:mod:`connectors.canonical`) for everything the platform says changed between ``start`` and ``end``.
The engine (``engine/shop_sync.py``) owns the cursor, the windows, storing and routing; the connector
owns the platform's API and its mapping to canonical events.

Paging inside a window runs **from the last page back to the first**. Both platforms sort a window
by modified time; an order modified while we page leaves the window (its new modified time is later),
and every record behind it moves up one place. Paging forward would then skip one record at the next
page boundary — the loss Taobao's documentation warns about ("通过从后往前翻页的方式可以避免漏单问题").
Paging backward, a record can only move onto a page not read yet, so it is read twice (a duplicate
the event store drops) and never missed.

Pure: no engine imports; errors carry ``retryable``, so the engine can tell "try the same window
again later" from "a person must fix the configuration".
"""

from __future__ import annotations

import math
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, ClassVar, TypeVar

from connectors.base import Connector
from wording import Msg

T = TypeVar("T")
CHINA_STANDARD_TIME = timezone(timedelta(hours=8), "GMT+8")
#: a full mainland mobile number (platforms usually mask it: 138****8000 is not an identity)
_MOBILE = re.compile(r"^(?:\+?86)?1[3-9]\d{9}$")


class ShopApiError(Exception):
    """An error answer (or no answer) from a shop platform's API."""

    retryable: ClassVar[bool] = False

    def __init__(self, message: str, *, api: str = "", code: str = "", sub_code: str = "",
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.api = api
        self.code = code
        self.sub_code = sub_code
        #: seconds to wait before trying again, when the platform says (rate limits), else None
        self.retry_after = retry_after


class ShopApiRetryable(ShopApiError):
    """Try the same request again later: rate-limited, the platform is busy, a network failure, a 5xx."""

    retryable = True


class ShopApiRejected(ShopApiError):
    """Trying again gives the same answer: wrong secret, expired session, missing permission, bad parameter."""


class WindowTooLarge(ShopApiError):
    """The window holds more records than the platform lets one page through: poll it in smaller windows."""

    retryable = True
    #: the sync halves the window and tries again
    split_window: ClassVar[bool] = True


@dataclass
class MessageBatch:
    """Messages taken from a platform's message queue (Taobao's TMC), mapped: canonical events and
    unmapped records (:func:`connectors.base.unmapped_record`) like a page of ``poll_window``.
    ``confirm()`` tells the platform they are handled; the engine calls it only after storing ``events``,
    so a crash in between gets the messages delivered again (duplicates the event store drops)."""

    events: list[dict[str, Any]]
    confirm: Callable[[], None]


class PollingConnector(Connector, ABC):
    """A connector the engine polls for order and refund changes (see the module docstring).

    A connector whose platform also keeps a message queue for the app (Taobao's message service) may
    consume it on every poll: :meth:`consume_interval` says how often (None: it has none, or it is off)
    and :meth:`consume` yields the batches. The windows are then read only every
    :meth:`poll_interval` seconds, as the safety net behind the queue.
    """

    #: streams this connector can poll, in the order they are polled
    streams: ClassVar[tuple[str, ...]] = ("orders", "refunds")
    #: the longest window the platform accepts in one query
    max_window: ClassVar[timedelta] = timedelta(days=1)

    def poll_interval(self, settings: Any) -> int:
        """Seconds between two polls of this configuration."""
        return int(getattr(settings, "poll_interval_seconds", 60))

    def backfill(self, settings: Any) -> timedelta:
        """How far back the very first poll of a new configuration starts."""
        return timedelta(hours=int(getattr(settings, "backfill_hours", 0)))

    def consume_interval(self, settings: Any) -> int | None:
        """Seconds between two reads of the platform's message queue, or None when it is not read."""
        return None

    def consume(self, settings: Any, secrets: Any) -> Iterator[MessageBatch]:
        """The messages waiting in the platform's queue, batch by batch (bounded per call)."""
        return iter(())

    @abstractmethod
    def poll_window(self, stream: str, start: datetime, end: datetime, settings: Any,
                    secrets: Any) -> Iterator[list[dict[str, Any]]]:
        """Pages of canonical events (``POST /api/events`` shape without ``source``) for the records of
        ``stream`` modified between ``start`` and ``end`` (aware datetimes); each platform's own."""


def http_url(value: str) -> str:
    """A ``gateway_url`` setting: stripped, absolute http(s), no spaces."""
    value = value.strip()
    if not value.startswith(("https://", "http://")) or any(c.isspace() for c in value):
        raise ValueError(Msg("must be an absolute http:// or https:// URL"))
    return value


def pages_backward(fetch: Callable[[int], tuple[list[T], int]], page_size: int,
                   max_pages: int | None = None) -> Iterator[list[T]]:
    """Every page of a window, the last page first (see the module docstring).

    ``fetch(page_no)`` returns ``(records, total in the window)``. Page 1 comes first (it tells the
    total) and, when there is more than one page, once more at the end: the pages in between are read
    last to second.
    """
    first, total = fetch(1)
    last = max(1, math.ceil(total / page_size))
    if max_pages is not None and last > max_pages:
        raise WindowTooLarge(Msg("%(total)s records in one window, more than %(max_pages)s pages of %(page_size)s",
                                 total=total, max_pages=max_pages, page_size=page_size))
    yield first
    if total <= page_size:
        return
    for page_no in range(last, 0, -1):
        records, _ = fetch(page_no)
        yield records


def yuan_to_fen(value: Any, field: str) -> int:
    """A platform's yuan amount (``"129.00"``, ``129``) as integer fen, exactly (Decimal, never float)."""
    if value is None or value == "":
        return 0
    if isinstance(value, float):
        value = repr(value)
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(Msg("%(field)s is not an amount in yuan: %(value)s", field=field,
                             value=repr(str(value)[:20]))) from None
    if not amount.is_finite() or amount < 0:
        raise ValueError(Msg("%(field)s must be a non-negative amount in yuan", field=field))
    return int((amount * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def unit_price_fen(total_fen: int, quantity: int) -> int:
    """The unit price of a line whose total is ``total_fen`` (rounded half up to the fen)."""
    if quantity <= 0:
        return total_fen
    return int((Decimal(total_fen) / quantity).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def china_time(value: Any) -> datetime | None:
    """``yyyy-MM-dd HH:mm:ss`` (optionally ``.SSS`` / ``+0800``) in GMT+8 as an aware datetime; None if empty."""
    if value in (None, ""):
        return None
    text = str(value).strip()
    match = re.match(r"^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})", text)
    if not match:
        raise ValueError(Msg("not a yyyy-MM-dd HH:mm:ss time: %(value)s", value=repr(text[:30])))
    naive = datetime.strptime(f"{match.group(1)} {match.group(2)}", "%Y-%m-%d %H:%M:%S")
    return naive.replace(tzinfo=CHINA_STANDARD_TIME)


def mobile(value: Any) -> str | None:
    """A buyer's mobile number when the platform gave a full one (masked or encrypted ones are None)."""
    if not isinstance(value, str | int) or isinstance(value, bool):
        return None
    text = re.sub(r"[\s\-]", "", str(value))
    return text if _MOBILE.match(text) else None
