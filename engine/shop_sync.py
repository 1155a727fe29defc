"""Order sync by polling: shop connectors that cannot push (Taobao/Tmall TOP, JD JOS) are asked every
minute what changed, and the answers become stored, routed events like any webhook delivery.

Per configured connector and stream (``orders``, ``refunds``) a cursor row (``connector_cursors``)
holds the platform's modified-time watermark (UTC). One poll reads windows from the cursor up to now:

* each window starts ``OVERLAP`` (2 minutes) before the cursor, because platforms' modified times
  lag (an order modified at 12:00:00 may only be searchable at 12:00:30); re-read records are
  duplicates the event store drops (dedupe on source + id);
* a window is at most the platform's maximum (1 day for TOP's increment API); a long gap (the worker
  was down) is read window after window, at most ``MAX_WINDOWS_PER_POLL`` per poll;
* a window the platform cannot page through (``WindowTooLarge``) is halved until it can;
* **events are stored first, the cursor moves after** (in its own transaction): a crash in between
  re-reads the window on the next poll and stores nothing twice; nothing is ever skipped.

Stored events are routed to journeys as soon as each is stored, by the worker's routing pipeline
(:func:`engine.events.store_and_hand_on`, :mod:`engine.follow_ups`), with the follow-ups their hooks stored
(points earned) right behind them; whatever routing misses — and what a process without a routing pipeline
stores (``tideflow connectors sync``) — stays ``received`` for the web app's re-router.

A connector that also reads its platform's message queue (Taobao's message service, ``tmc``) is polled
every ``consume_interval`` seconds instead: each poll first takes the waiting messages (stored, *then*
confirmed: a crash in between gets them delivered again, and the duplicates are dropped), and reads the
windows only when ``poll_interval`` has passed since the cursors last moved — the windows are the safety
net that catches whatever the queue missed, under the same event ids. A queue that fails (not enabled
for the app, the platform busy) does not stop the windows: its error is written down as the connector's
last error and the next poll falls back to ``poll_interval``.

Running it: one Temporal workflow per connector, ``shop-sync/<connector id>``, does one poll (an
activity) and sleeps ``poll_interval_seconds`` (a durable timer), continuing as new now and then.
:func:`ensure_running` starts the workflows of every enabled polled connector; the worker process
calls it every minute. ``tideflow connectors sync <id>`` polls once from the command line.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.common import RetryPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ActivityError, ApplicationError, WorkflowAlreadyStartedError

from engine.text import Msg, caught, message_of, verbatim

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError
    from sqlalchemy import select
    from sqlalchemy.exc import IntegrityError

    from engine import connectors as configured
    from engine import events as ingest
    from engine.connector_ops import is_polled, record_attempt, store_unmapped
    from engine.db import models
    from engine.db.models import utcnow
    from engine.db.session import session_factory, transaction

log = logging.getLogger(__name__)

OVERLAP = timedelta(minutes=2)
MAX_WINDOWS_PER_POLL = 24
MIN_WINDOW = timedelta(seconds=30)
SHOP_SYNC_WORKFLOW = "ShopSync"
POLL_ACTIVITY = "shop_sync_poll"
#: after a poll failed for good (expired session, wrong secret) the workflow waits this long
REJECTED_PAUSE = timedelta(minutes=10)
POLLS_PER_RUN = 200
#: a cursor whose position is this far behind the moment it was last written was put back (a resync)
PUT_BACK = timedelta(seconds=60)




def next_window(position: datetime, now: datetime, max_window: timedelta,
                overlap: timedelta = OVERLAP) -> tuple[datetime, datetime] | None:
    """The next window to read after the cursor ``position``: ``[position - overlap, at most max_window
    later, at most now]``; None when there is nothing to read."""
    if max_window <= overlap:
        raise ValueError(Msg("max_window (%(max_window)s) must be longer than the overlap "
                             "(%(overlap)s)",
                             max_window=max_window, overlap=overlap))
    start = position - overlap
    end = min(start + max_window, now)
    return (start, end) if end > start else None


@dataclass
class StreamReport:
    stream: str
    windows: int = 0
    accepted: int = 0
    duplicates: int = 0
    invalid: int = 0
    unmapped: int = 0
    position: str = ""


@dataclass
class PollResult:
    connector_id: str
    stopped: bool = False
    interval: int = 60
    streams: list[StreamReport] = field(default_factory=list)
    #: ids of the stored events that needed routing, each once, in the order stored. The events themselves
    #: were handed to this process's routing pipeline as they were stored (``store_and_hand_on``), or are left
    #: for the re-router; the poll only counts them, so it keeps no payloads (a large backfill window would
    #: otherwise hold every event of the poll in memory until it ends)
    to_route: list[str] = field(default_factory=list)
    #: what went wrong reading the message queue (the windows were read all the same)
    queue_error: Msg | str = ""
    _routing: set[str] = field(default_factory=set, repr=False)

    def route_later(self, event_id: str) -> None:
        if event_id not in self._routing:
            self._routing.add(event_id)
            self.to_route.append(event_id)

    def summary(self) -> dict[str, Any]:
        found = {"connector_id": self.connector_id, "stopped": self.stopped, "interval": self.interval,
                 "streams": [vars(s) for s in self.streams], "to_route": len(self.to_route)}
        if self.queue_error:
            found["queue_error"] = self.queue_error
        return found


def cursor_position(database_url: str | None, connector_id: str, stream: str) -> datetime | None:
    with session_factory(database_url)() as db:
        row = db.get(models.ConnectorCursor, (connector_id, stream))
        return row.position if row is not None else None


def windows_due(database_url: str | None, connector_id: str, stream: str, moment: datetime,
                interval: timedelta) -> bool:
    """Whether a stream read behind a message queue is due: ``interval`` has passed since its cursor's
    position (the end of the last window read), or the cursor was put back (a resync) since."""
    with session_factory(database_url)() as db:
        row = db.get(models.ConnectorCursor, (connector_id, stream))
        if row is None:
            return True
        return moment - row.position >= interval or row.updated_at - row.position > PUT_BACK


def advance(database_url: str | None, connector_id: str, stream: str, position: datetime) -> None:
    """Move the cursor to ``position`` (never backwards). Called only after the window is stored."""
    for attempt in range(2):
        try:
            with transaction(database_url) as db:
                row = db.get(models.ConnectorCursor, (connector_id, stream), with_for_update=True)
                if row is None:
                    db.add(models.ConnectorCursor(connector_id=connector_id, stream=stream, position=position,
                                                  updated_at=utcnow()))
                elif position > row.position:
                    row.position, row.updated_at = position, utcnow()
            return
        except IntegrityError:  # another poller (the CLI next to the workflow) created the row first
            if attempt:
                raise




def _store_page(database_url: str | None, connector_id: str, page: list[dict[str, Any]], report: StreamReport,
                result: PollResult) -> None:
    unmapped: list[Any] = []
    for raw in page:
        if "unmapped" in raw:  # a record the connector could not map (connectors.base.unmapped_record)
            unmapped.append(raw["unmapped"])
            continue
        try:
            event = ingest.EventIn.model_validate({**raw, "source": connector_id})
        except ValidationError as exc:
            report.invalid += 1
            where = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors()[:3])
            log.warning("%s: an event from the platform is not valid (%s); kept as unmapped", connector_id, where)
            unmapped.append(_Invalid(Msg("the mapped event is not valid (%(where)s)", where=where), raw))
            continue
        # routed as soon as it is stored when this process routes (a worker; engine/follow_ups.py), with the
        # follow-ups its hooks stored (points earned …) right behind it; else by the re-router
        [stored] = ingest.store_and_hand_on([event], database_url)
        if stored.status == "accepted":
            report.accepted += 1
        else:
            report.duplicates += 1
        if stored.needs_routing:
            result.route_later(str(stored.payload["id"]))
    if unmapped:
        report.unmapped += len(unmapped)
        store_unmapped(database_url, connector_id, unmapped)


@dataclass
class _Invalid:
    """An event the connector made that the event model refuses: kept raw like an unmapped message."""

    reason: str
    event: dict[str, Any]
    kind: str = "invalid-event"

    @property
    def raw(self) -> str:
        import json

        return json.dumps(self.event, ensure_ascii=False, default=str)

    @property
    def message_id(self) -> str:
        return str(self.event.get("id") or "")


def _read_window(database_url: str | None, loaded: configured.LoadedConnector, stream: str, start: datetime,
                 end: datetime, report: StreamReport, result: PollResult) -> None:
    try:
        for page in loaded.connector.poll_window(stream, start, end, loaded.settings, loaded.secrets):
            _store_page(database_url, loaded.id, page, report, result)
    except Exception as exc:
        # connectors.polling.WindowTooLarge says "poll this in smaller windows" (known by its flag: the
        # engine knows connectors only through the entry points)
        if not getattr(exc, "split_window", False) or end - start <= MIN_WINDOW:
            raise
        middle = start + (end - start) / 2
        log.info("%s %s: window %s–%s too large; halving it", loaded.id, stream, start, end)
        _read_window(database_url, loaded, stream, start, middle, report, result)
        _read_window(database_url, loaded, stream, middle, end, report, result)


def _said(exc: BaseException) -> Msg:
    """What a failed poll says about ``exc``: a connector's own refusal (a shop API error, a ``ValueError``, in
    our words when it was raised with a ``Msg``); of anything else only its type (its text may hold secrets)."""
    return message_of(exc) if hasattr(exc, "retryable") or isinstance(exc, ValueError) else verbatim(
        type(exc).__name__)


def poll_connector(database_url: str | None, connector_id: str, *, now: datetime | None = None,
                   max_windows: int = MAX_WINDOWS_PER_POLL) -> PollResult:
    """One poll (:func:`_poll`), its outcome written down for the connector's sync status."""
    try:
        result = _poll(database_url, connector_id, now=now, max_windows=max_windows)
    except Exception as exc:
        record_attempt(database_url, connector_id, error=caught(exc, _said(exc)))
        raise
    if not result.stopped:
        record_attempt(database_url, connector_id, summary=result.summary(), error=result.queue_error or None)
    return result


def _consume(database_url: str | None, loaded: configured.LoadedConnector, interval: int,
             result: PollResult) -> None:
    """Take what waits in the connector's message queue: each batch stored, then confirmed."""
    report = StreamReport("messages")
    result.streams.append(report)
    try:
        for batch in loaded.connector.consume(loaded.settings, loaded.secrets):
            _store_page(database_url, loaded.id, batch.events, report, result)
            batch.confirm()
            report.windows += 1
    except Exception as exc:
        # a sentence of its own, not "message queue: " + caught(): its template is the msgid the reasons saved
        # before read back by (wording.stored), and `make i18n` drops a msgid no code names
        result.queue_error = Msg("message queue: %(error)s: %(detail)s", error=type(exc).__name__, detail=_said(exc))
        log.warning("%s: reading the message queue failed: %s", loaded.id, type(exc).__name__)
        return
    result.interval = min(result.interval, interval)


def _poll(database_url: str | None, connector_id: str, *, now: datetime | None = None,
          max_windows: int = MAX_WINDOWS_PER_POLL) -> PollResult:
    """One poll of one connector: every stream from its cursor up to ``now``; events stored, cursors moved.

    A connector that is gone, disabled or not polled gives ``stopped``. Platform errors propagate
    (``ShopApiError`` with ``retryable``); what was stored before stays stored, the cursor stays
    where the last complete window left it.
    """
    with session_factory(database_url)() as db:
        loaded = configured.load(db, connector_id)
    if loaded is None or not is_polled(loaded.connector):
        return PollResult(connector_id, stopped=True)
    connector = loaded.connector
    moment = now or utcnow()
    poll_interval = connector.poll_interval(loaded.settings)
    result = PollResult(connector_id, interval=poll_interval)
    consume_every = getattr(connector, "consume_interval", lambda settings: None)(loaded.settings)
    if consume_every:
        _consume(database_url, loaded, int(consume_every), result)
    for stream in connector.streams:
        report = StreamReport(stream)
        result.streams.append(report)
        position = cursor_position(database_url, connector_id, stream)
        if position is None:
            position = moment - connector.backfill(loaded.settings)
            advance(database_url, connector_id, stream, position)
        elif consume_every and not windows_due(database_url, connector_id, stream, moment,
                                               timedelta(seconds=poll_interval)):
            report.position = position.isoformat()  # the queue is read; the windows are not due yet
            continue
        while report.windows < max_windows:
            window = next_window(position, moment, connector.max_window)
            if window is None:
                break
            start, end = window
            _read_window(database_url, loaded, stream, start, end, report, result)
            advance(database_url, connector_id, stream, end)
            position = end
            report.windows += 1
            if end >= moment:
                break
        report.position = position.isoformat()
    return result


def polled_connector_ids(database_url: str | None) -> list[str]:
    """Enabled connectors whose kind is polled."""
    kinds = [k for k, cls in configured.connector_classes().items() if is_polled(cls)]
    if not kinds:
        return []
    with session_factory(database_url)() as db:
        return list(db.scalars(select(models.ConnectorConfig.id).where(
            models.ConnectorConfig.kind.in_(kinds), models.ConnectorConfig.enabled.is_(True))
            .order_by(models.ConnectorConfig.id)))


# -- Temporal: one workflow per connector ---------------------------------------------------------------


@dataclass
class ShopSyncInput:
    connector_id: str


def workflow_id(connector_id: str) -> str:
    return f"shop-sync/{connector_id}"


@workflow.defn(name=SHOP_SYNC_WORKFLOW)
class ShopSyncWorkflow:
    """Poll one connector, sleep its interval, repeat; continue as new every ``POLLS_PER_RUN`` polls."""

    @workflow.run
    async def run(self, data: ShopSyncInput) -> str:
        for _ in range(POLLS_PER_RUN):
            try:
                summary: dict[str, Any] = await workflow.execute_activity(
                    POLL_ACTIVITY, data.connector_id, start_to_close_timeout=timedelta(minutes=10),
                    retry_policy=RetryPolicy(initial_interval=timedelta(seconds=30), backoff_coefficient=2.0,
                                             maximum_interval=timedelta(minutes=5), maximum_attempts=6,
                                             non_retryable_error_types=["ShopApiRejected"]))
            except ActivityError:
                # refused for good (expired session, wrong secret …) or retries exhausted: the error is in
                # the workflow's history; try again later, maybe someone fixed the settings
                await workflow.sleep(REJECTED_PAUSE)
                continue
            if summary.get("stopped"):
                return "stopped: the connector is gone, disabled or not polled"
            await workflow.sleep(timedelta(seconds=int(summary.get("interval") or 60)))
        workflow.continue_as_new(data)


class ShopSyncActivities:
    """The poll activity: store (in a thread); the worker's routing pipeline routes what was stored."""

    def __init__(self, database_url: str | None) -> None:
        self.database_url = database_url

    @activity.defn(name=POLL_ACTIVITY)
    async def poll(self, connector_id: str) -> dict[str, Any]:
        try:
            result = await asyncio.to_thread(poll_connector, self.database_url, connector_id)
        except ValueError as exc:  # configuration: a missing secret, an unknown stream
            raise ApplicationError(f"{connector_id}: {exc}", type="ShopApiRejected", non_retryable=True) from None
        except Exception as exc:
            if not hasattr(exc, "retryable"):  # not the platform: a database error may quote values (PII)
                log.warning("%s: poll failed: %s", connector_id, type(exc).__name__)
                raise ApplicationError(f"{connector_id}: poll failed ({type(exc).__name__}); retrying",
                                       type=type(exc).__name__) from None
            if exc.retryable is False:
                raise ApplicationError(f"{connector_id}: {exc}", type="ShopApiRejected", non_retryable=True) from None
            after = getattr(exc, "retry_after", None)  # a rate limit says how long it lasts
            raise ApplicationError(f"{connector_id}: {exc}", type=type(exc).__name__,
                                   next_retry_delay=timedelta(seconds=after) if after else None) from None
        return result.summary()


async def ensure_running(client: Any, database_url: str | None, task_queue: str) -> list[str]:
    """Start the sync workflow of every enabled polled connector that has none running; the ids started."""
    started: list[str] = []
    for connector_id in await asyncio.to_thread(polled_connector_ids, database_url):
        try:
            await client.start_workflow(SHOP_SYNC_WORKFLOW, ShopSyncInput(connector_id),
                                        id=workflow_id(connector_id), task_queue=task_queue,
                                        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE)
            started.append(connector_id)
        except WorkflowAlreadyStartedError:
            continue
    return started
