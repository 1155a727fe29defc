"""The routing pipeline of a web process: stored events go through a bounded backlog to the router —
in order per customer, concurrently across customers — and their outcomes are written in group commits.

::

    request ─ admit? ─ store (one transaction per request) ─▶ lane[hash(customer)] ─ route ─▶ commit batch
                 │                                              (N lanes, each in order)      (one transaction
                 └─ 429 + Retry-After when the backlog would break the latency bound        for many events)

- **Ordered per customer**: a customer's events always go to the same lane, and a lane routes its next
  event only after the previous one's outcome (and the journeys it started) is committed, so re-entry
  checks see the journey an earlier event started.
- **Concurrent across customers**: ``lanes`` lanes route at the same time; a batch's customers spread
  over them.
- **Group commit**: each lane hands its outcome (routed mark, journeys rows) to one committer, which writes
  whatever has gathered in one transaction — on SQLite one write lock per group instead of two per event.
- **Isolation**: an event whose routing fails for a reason of its own is counted and, at the limit,
  quarantined (:mod:`engine.quarantine`); the lane goes on with the next event. Infrastructure failures
  (Temporal or the database unreachable) leave the event for the re-router without counting.
- **Admission** (:meth:`RoutingPipeline.admit`, the maths in :mod:`engine.admission`): before a request
  stores anything, the latency it would see is estimated — the web process's own backlog divided by the rate
  its lanes route while they have work (while that is unknown, by its share of the workers' remembered
  capacity), plus the age of the oldest task waiting in Temporal's workflow and activity task queues or their
  backlog divided by the rate tasks leave them (sampled at most every ``SAMPLE_SECONDS`` while requests come in)
  — and while the workers report that they fall behind, a token bucket admits events at
  the rate they complete them, shared evenly by the web processes that admit events (each writes a
  heartbeat when it samples, at most every ``HEARTBEAT_SECONDS``). Between those samples, the events the
  process admitted count as a queue draining at its share of the workers' capacity (once that is known and
  tasks wait in Temporal), so the limit applies at the onset of an overload, not a second later when the
  reports show it; refused callers are told to come back spread over the following seconds. A request whose
  predicted wait passes half the bound
  (``TIDEFLOW_LATENCY_BOUND_SECONDS``, 2 s: the other half is for the work itself), that finds the bucket
  empty, or that overflows the backlog's capacity is refused with :class:`Overloaded` (429 + Retry-After):
  nothing is stored half-way.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import math
import os
import socket
import time
import uuid
import zlib
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import anyio.to_thread
from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite

from engine import admission, claims, follow_ups, metrics, tracing
from engine import events as ingest
from engine.db import models
from engine.db.models import utcnow
from engine.db.session import transaction
from engine.router import Router, RouteResult, is_transient
from engine.text import Msg

log = logging.getLogger(__name__)
SAMPLE_SECONDS = 0.25
#: a web process that samples writes its heartbeat (engine.db.quarantine_models.WebHeartbeat) at most this often
HEARTBEAT_SECONDS = 1.0
#: heartbeats older than this are deleted (processes that were restarted get a new id)
HEARTBEAT_FORGET_SECONDS = 3600.0
#: the routing rate is averaged over about this many seconds (of which only those the lanes had work in count)
RATE_WINDOW = 2.0


class Overloaded(Exception):
    """Admission refused: the backlog would push event-to-action latency past the bound."""

    def __init__(self, retry_after: int, why: Msg) -> None:
        super().__init__(why)
        self.retry_after = retry_after
        self.why = why


@dataclass
class Routed:
    """The routing answer for one event: journeys started, journeys signalled, and whether it is done,
    ``pending`` (the re-router retries it) or ``quarantined``."""

    started: list[str] = field(default_factory=list)
    signalled: int = 0
    routing: str = "done"
    #: why it is not done (the event's own failure or the infrastructure's)
    error: str | None = None


@dataclass
class _Item:
    row_id: int
    payload: dict[str, Any]
    future: asyncio.Future[Routed]
    enqueued: float
    #: the request's tracing context (None when tracing is off): routing continues its trace
    trace: Any = None


@dataclass
class _Write:
    outcome: ingest.Outcome
    journeys: list[tuple[str, str, int, str]]
    done: asyncio.Future[list[int]]


class RoutingPipeline:
    """One per web process (or any process that routes). Start it with :meth:`start` on the event loop."""

    def __init__(self, database_url: str, router: Router | None = None, lanes: int = 16, capacity: int = 2000,
                 latency_bound: float = 2.0) -> None:
        self.database_url = database_url
        self.router = router
        self.lane_count = max(1, lanes)
        self.capacity = capacity
        self.latency_bound = latency_bound
        self._lanes: list[asyncio.Queue[_Item]] = []
        self._writes: asyncio.Queue[_Write] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self.inflight = 0
        #: when each event routed within the last RATE_WINDOW left the lanes (monotonic), and when the lanes had
        #: work: closed (start, end) spans, and since when they have had it now (None: idle) — the routing rate is
        #: what they route per second of work (admission.drain_rate), not per second of wall time
        self._done_times: deque[float] = deque()
        self._busy_spans: deque[tuple[float, float]] = deque()
        self._busy_since: float | None = None
        self.temporal_backlog_age = 0.0
        self.temporal_backlog_count = 0
        #: the worst event → action latency the workers reported lately (engine.metrics.LAG), and the first
        #: actions after an event they complete per second, summed over the workers
        self.worker_lag = 0.0
        self.worker_done = 0.0
        #: journeys this process started eagerly, waiting for their first step in its own worker (one process:
        #: what Temporal's task queue is to workers elsewhere; empty without an embedded worker)
        self.pickup: metrics.PickupTracker = metrics.PICKUP
        #: this pipeline's id in the web heartbeats, and how many web processes (itself included) admitted
        #: events lately: each admits its share of the workers' capacity (admission.share)
        self.process_id = f"{socket.gethostname()[:80]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        #: the claims this pipeline routes are held in this name (engine.claims.Holder): its heartbeat is kept
        #: fresh while it holds any, in a thread of its own (:meth:`_keep_claims_alive`)
        self.holder = claims.Holder(self.process_id)
        self._claims_beat: concurrent.futures.ThreadPoolExecutor | None = None
        self.web_processes = 1
        self._beat_at: float | None = None
        self._beating: asyncio.Task[None] | None = None
        #: the rate limit once the workers were saturated (engine.admission): until when it holds (monotonic
        #: seconds), their capacity as measured, and its token bucket
        self._limit_until = 0.0
        self._capacity = 0.0
        self._capacity_at = 0.0
        self._bucket = admission.Bucket(0.0, 0.0)
        #: the events this process admitted, modelled as a queue in front of the workers draining at its share
        #: of their capacity (admission.drained), as of ``_queued_at``; whether the limit applied at the last
        #: look (the capacity is probed upwards only then), and the latency it was steered by
        self._queued = 0.0
        self._queued_at = 0.0
        self._held = False
        self._latency = 0.0
        #: whether the workers showed pressure at the last sample (tasks waiting in Temporal, or their latency
        #: past admission.FREE of the target): only then does the modelled queue count
        self._pressed = False
        #: refused events booked to come back, by the (monotonic, whole) second they were told to
        self._returns: dict[int, int] = {}
        self._sampled_at = 0.0
        self._sampling: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        #: follow-up routings under way (held so they are not garbage-collected mid-flight)
        self._follow_ups: set[asyncio.Task[Any]] = set()
        self._uninstall: Callable[[], None] | None = None

    # -- life cycle ------------------------------------------------------------------------------------
    def start(self) -> None:
        if self._tasks:
            return
        self._loop = asyncio.get_running_loop()
        self._lanes = [asyncio.Queue() for _ in range(self.lane_count)]
        self._tasks = [asyncio.create_task(self._lane(q)) for q in self._lanes]
        self._tasks.append(asyncio.create_task(self._commit_loop()))
        self._claims_beat = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="claims-heartbeat")
        self._tasks.append(asyncio.create_task(self._keep_claims_alive(self._claims_beat)))

    async def stop(self) -> None:
        if self._uninstall is not None:
            self._uninstall()
            self._uninstall = None
        for task in [*self._tasks, *self._follow_ups]:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        if self._claims_beat is not None:
            self._claims_beat.shutdown(wait=False)
            self._claims_beat = None
        if self.holder.holding_until > -math.inf:  # the re-router takes what was not routed at its next pass
            try:
                released = await asyncio.to_thread(claims.release, self.database_url, self.holder)
                if released:
                    log.info("%d claimed events released for the re-router", released)
            except Exception as exc:  # the database is down: the heartbeat goes stale, the claims are taken over
                log.warning("claims not released: %s", type(exc).__name__)
        if self._beat_at is not None:  # the other web processes take over this one's share at once
            self._beat_at = None
            with contextlib.suppress(Exception):
                if self._beating is not None:  # a heartbeat being written lands first, then goes
                    await self._beating
                await asyncio.to_thread(forget_heartbeat, self.database_url, self.process_id)

    @property
    def running(self) -> bool:
        return bool(self._tasks)

    # -- follow-up events ------------------------------------------------------------------------------
    def routes_follow_ups(self) -> None:
        """Route the follow-up events this process commits on this pipeline's database as soon as their
        transaction commits, and start the workflows of the tickets it commits (:mod:`engine.follow_ups`),
        until :meth:`stop`. Call after :meth:`start`."""
        if self._uninstall is None:
            from engine.settings import get_settings

            url = self.database_url or get_settings().resolved_database_url()
            self._uninstall = follow_ups.install(url, follow_ups.FollowUpRouter(
                ready=self._routes_now, route=self.route_follow_ups, start_tickets=self.start_tickets,
                holder=self.holder))

    def _routes_now(self) -> bool:
        return self.router is not None and self.running and self._loop is not None and not self._loop.is_closed()

    def route_follow_ups(self, row_ids: list[int]) -> None:
        """Route these stored follow-up events (claimed by the transaction that stored them) through the lanes;
        callable from any thread, returns at once. Rows that did not commit are skipped."""
        self._from_any_thread(self._route_follow_ups, list(row_ids))

    def _from_any_thread(self, work: Callable[[list[int]], Coroutine[Any, Any, None]], ids: list[int]) -> None:
        """Run ``work(ids)`` as a task on the pipeline's loop (kept until done, cancelled by :meth:`stop`)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            raise RuntimeError("the routing pipeline is not running")

        def spawn() -> None:
            task = asyncio.get_running_loop().create_task(work(ids))
            self._follow_ups.add(task)
            task.add_done_callback(self._follow_ups.discard)

        loop.call_soon_threadsafe(spawn)

    async def _route_follow_ups(self, row_ids: list[int]) -> None:
        try:
            found = await asyncio.to_thread(ingest.stored_unrouted, self.database_url, row_ids)
            if found:
                await self.route_stored(found)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the database is down: the claims lapse and the re-router routes them
            log.warning("follow-up events left for the re-router: %s", type(exc).__name__)

    def start_tickets(self, ticket_ids: list[int]) -> None:
        """Start the workflows of these committed tickets on this pipeline's router; callable from any thread,
        returns at once. A ticket that already has one (or runs no flow) is left alone."""
        self._from_any_thread(self._start_tickets, list(ticket_ids))

    async def _start_tickets(self, ticket_ids: list[int]) -> None:
        from engine.tickets_workflow import start_pending

        router = self.router
        if router is None:  # Temporal went away: the re-router starts them
            return
        try:  # the re-router's own pass over just these tickets: failures counted, a poison one quarantined
            await start_pending(router.client, self.database_url, router.task_queue, only=ticket_ids)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # Temporal or the database unreachable: the re-router's pass starts them
            log.warning("ticket workflows left for the re-router: %s", type(exc).__name__)

    # -- admission -------------------------------------------------------------------------------------
    def rate(self) -> float:
        """Events the lanes route per second of work (:func:`admission.drain_rate`) over the last
        :data:`RATE_WINDOW` seconds: those routed after the first in the window, over the time since it during
        which the lanes had work (0 when unknown)."""
        now = time.monotonic()
        self._forget(now)
        times = self._done_times
        if not times:
            return 0.0
        busy = admission.busy_within(self._busy_spans, self._busy_since, times[0], now)
        return admission.drain_rate(len(times) - 1, busy)

    def _forget(self, now: float) -> None:
        """Drop the routings and busy spans older than :data:`RATE_WINDOW`."""
        cutoff = now - RATE_WINDOW
        while self._done_times and self._done_times[0] < cutoff:
            self._done_times.popleft()
        while self._busy_spans and self._busy_spans[0][1] < cutoff:
            self._busy_spans.popleft()

    def _entered(self, now: float) -> None:
        """An event entered the lanes at ``now`` (monotonic): empty lanes start a busy span."""
        if self.inflight == 0:
            self._busy_since = now
        self.inflight += 1
        metrics.BACKLOG.set(self.inflight)

    def _left(self, now: float) -> None:
        """An event left the lanes at ``now`` (routed, or its outcome not recorded): empty lanes end the busy span."""
        self.inflight -= 1
        metrics.BACKLOG.set(self.inflight)
        self._done_times.append(now)
        if self.inflight <= 0 and self._busy_since is not None:
            self._busy_spans.append((self._busy_since, now))
            self._busy_since = None
        self._forget(now)

    def estimate(self, more: int = 0, now: float | None = None) -> float:
        """Seconds an event admitted now would wait before its first action (:func:`admission.predicted_wait`),
        or the wait the modelled queue predicts with ``more`` events in it, whichever is longer."""
        outside = admission.predicted_wait(self.inflight, self.rate(), self.temporal_backlog_age, self.lag(now),
                                           more=more, capacity_share=self._queue_rate(now))
        if not self._pressed:
            return outside
        return max(outside, admission.modelled_wait(self._queued, more, self._queue_rate(now), self.latency_bound))

    def lag(self, now: float | None = None) -> float:
        """The workers' latency as admission goes by (:func:`admission.worker_latency`): the worst they reported,
        or the wait of the oldest journey this process started eagerly for its first step, whichever is longer
        (one waiting past the bound is forgotten: the reports show it by then)."""
        at = now if now is not None else time.monotonic()
        return admission.worker_latency(self.worker_lag, self.pickup.oldest(at, self.latency_bound))

    def _queue_rate(self, now: float | None) -> float:
        """The rate the modelled queue drains at: this process's share of the workers' capacity while it is
        remembered; 0 (nothing modelled) before any saturation and once it is forgotten."""
        if self._capacity <= 0 or (now if now is not None else time.monotonic()) >= self._limit_until:
            return 0.0
        return admission.share(self._capacity, self.web_processes)

    def _modelled(self, now: float) -> float:
        """The modelled queue drained up to ``now``; the wait it predicts — 0 while nothing is modelled, and
        while the workers show no pressure (see :meth:`observed_backlog`)."""
        rate = self._queue_rate(now)
        self._queued = admission.drained(self._queued, rate, now - self._queued_at) if rate > 0 else 0.0
        self._queued_at = now
        return admission.queue_wait(self._queued, rate) if self._pressed else 0.0

    def observed_backlog(self, tasks: int, now: float) -> None:
        """Temporal says ``tasks`` wait in its task queue (sampled every :data:`SAMPLE_SECONDS`).

        While none wait and the workers' latency is under :data:`admission.FREE` of the target, the workers
        keep up: the modelled queue is emptied and not used until the next sample — a capacity remembered
        from a bad moment (a worker killed, a cold start) must not hold back a load the workers take. Once
        tasks wait, the model goes by at least this process's share of them (it drains at the capacity
        remembered; when the workers do less, as under a storm of refusals on the same cores, the queue
        Temporal counts is the truer one)."""
        self._pressed = tasks > 0 or admission.limiting(self.lag(now), self.latency_bound)
        if self._queue_rate(now) > 0:
            self._modelled(now)
            self._queued = max(self._queued, tasks / max(1, self.web_processes)) if self._pressed else 0.0

    def limit(self, now: float) -> float | None:
        """The admitted rate (events/s) once the workers were seen saturated, for :data:`admission.MEMORY_SECONDS`
        after, while their latency — reported, or as the modelled queue predicts it, whichever is longer — is
        past :data:`admission.FREE` of the target; else None (no limit)."""
        lag = self.lag(now)
        # in one process the first steps' wait shows pressure between two samples (with workers elsewhere the
        # reported latency changes only at a sample, which saw it already)
        self._pressed = self._pressed or admission.limiting(lag, self.latency_bound)
        saturated = admission.under_pressure(lag, self.latency_bound)
        if not saturated and now >= self._limit_until:
            self._queued, self._held = 0.0, False
            metrics.ADMISSION_MODELLED_WAIT.set(0)
            return None
        new_episode = saturated and now >= self._limit_until
        elapsed = 0.0 if new_episode else now - self._capacity_at
        self._capacity = admission.capacity(self._capacity, self.worker_done, lag, self.latency_bound,
                                            elapsed, self._held)
        self._capacity_at = now
        if saturated:
            self._limit_until = now + admission.MEMORY_SECONDS
        modelled = self._modelled(now)
        self._latency = max(lag, modelled)
        metrics.ADMISSION_CAPACITY.set(self._capacity)
        metrics.ADMISSION_MODELLED_WAIT.set(modelled)
        rate = admission.share(admission.limit_rate(self._capacity, self._latency, self.latency_bound),
                               self.web_processes)
        if new_episode:  # a full bucket at the new rate
            self._bucket = admission.Bucket(admission.burst(rate), now)
        self._held = admission.limiting(self._latency, self.latency_bound)
        return rate if self._held else None

    def admit(self, count: int) -> None:
        """Refuse (:class:`Overloaded`) a request of ``count`` events that would overflow the backlog, push
        event-to-action latency past the bound, or exceed the rate the workers complete events at while they
        are under pressure; otherwise return (the caller then stores and submits)."""
        self._maybe_sample()
        now = time.monotonic()
        rate = self.limit(now)  # first: a saturation seen while the checks below refuse still counts
        if self.inflight + count > self.capacity:
            metrics.ADMISSION.labels("capacity").inc()
            raise self._refusal(self._retry_after(self.estimate(count)), count, now,
                                Msg("the routing backlog is full (%(waiting)s events waiting; capacity %(capacity)s)",
                                    waiting=self.inflight, capacity=self.capacity))
        estimate = self.estimate(count, now)
        if estimate > admission.target(self.latency_bound):
            metrics.ADMISSION.labels("latency").inc()
            raise self._refusal(self._retry_after(estimate), count, now, self._latency_why(estimate))
        if rate is not None:
            bucket, wait = admission.take(self._bucket, rate, count, now)
            self._bucket = bucket
            if wait > 0:
                metrics.ADMISSION.labels("rate").inc()
                raise self._refusal(admission.retry_after(wait), count, now, self._rate_why(rate))
        self._queued += count

    def precheck(self) -> None:
        """Refuse (:class:`Overloaded`) at once when even one event would be refused, taking nothing from the
        bucket: a caller that must parse and validate a request before it knows how many events it holds
        answers the 429 without that work (under overload most requests are refusals, and what they cost is
        taken from the workers' CPU)."""
        self._maybe_sample()  # a refusal here must not keep the signals it is based on from being refreshed
        now = time.monotonic()
        rate = self.limit(now)
        estimate = self.estimate(1, now)
        if estimate > admission.target(self.latency_bound):
            metrics.ADMISSION.labels("latency").inc()
            raise self._refusal(self._retry_after(estimate), 1, now, self._latency_why(estimate))
        if rate is not None:
            wait = admission.take(self._bucket, rate, 1, now)[1]
            if wait > 0:
                metrics.ADMISSION.labels("rate").inc()
                raise self._refusal(admission.retry_after(wait), 1, now, self._rate_why(rate))

    def _refusal(self, retry_after: int, count: int, now: float, why: Msg) -> Overloaded:
        """The refusal of ``count`` events told to come back in ``retry_after`` s or, when that second is booked
        full already, in the first later one that is not (:func:`admission.book_return`, at this process's share
        of the workers' capacity): callers refused together do not come back together."""
        second = math.floor(now)
        for past in [s for s in self._returns if s < second]:
            del self._returns[past]
        back = admission.book_return(self._returns, second + retry_after, self._queue_rate(now), count)
        self._returns[back] = self._returns.get(back, 0) + count
        return Overloaded(back - second, why)

    def _rate_why(self, rate: float) -> Msg:
        return Msg("the workers complete about %(capacity).0f events/s at most (now %(lag).1f s behind); admitting "
                   "%(rate).0f/s", capacity=self._capacity, lag=self._latency, rate=rate)

    def _latency_why(self, estimate: float) -> Msg:
        return Msg("events would wait about %(estimate).1f s for their first action; the bound is %(bound)g s",
                   estimate=estimate, bound=self.latency_bound)

    def _retry_after(self, estimate: float) -> int:
        return admission.retry_after_for_wait(estimate, self.latency_bound)

    # -- submitting ------------------------------------------------------------------------------------
    def lane_of(self, customer_id: str | None, row_id: int) -> int:
        key = customer_id or f"#{row_id}"
        return zlib.crc32(key.encode()) % self.lane_count

    def submit(self, items: Sequence[tuple[int, dict[str, Any]]]) -> list[asyncio.Future[Routed]]:
        """Queue stored events (row id, the event as journeys see it) for routing; one future each.
        A request's events keep their order within each customer."""
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[Routed]] = []
        now = time.perf_counter()
        trace = tracing.current()
        for row_id, payload in items:
            future: asyncio.Future[Routed] = loop.create_future()
            futures.append(future)
            if not self._lanes:  # not started (no event loop task yet): the re-router routes it later
                future.set_result(Routed(routing="pending"))
                continue
            self._entered(time.monotonic())
            self._lanes[self.lane_of(payload.get("customer_id"), row_id)].put_nowait(
                _Item(row_id, payload, future, now, trace))
        return futures

    async def route_stored(self, items: Sequence[tuple[int, dict[str, Any]]]) -> list[Routed]:
        return list(await asyncio.gather(*self.submit(items)))

    # -- the lanes -------------------------------------------------------------------------------------
    async def _lane(self, queue: asyncio.Queue[_Item]) -> None:
        while True:
            item = await queue.get()
            try:
                routed = await self._route_one(item)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database is down: the claim lapses and the re-router retries
                log.warning("routing outcome of %s not recorded: %s", item.payload.get("id"), type(exc).__name__)
                routed = Routed(routing="pending")
            finally:
                self._left(time.monotonic())
            if not item.future.done():
                item.future.set_result(routed)

    async def _route_one(self, item: _Item) -> Routed:
        began = time.perf_counter()
        metrics.STAGE.labels("queue").observe(began - item.enqueued)
        router = self.router
        result: RouteResult | None = None
        if router is None:
            outcome = ingest.Outcome(item.row_id, "deferred", "Temporal not reachable")
        else:
            try:
                if item.trace is not None:
                    with tracing.attached(item.trace), tracing.tracer().start_as_current_span(
                            "route event", attributes={"tideflow.event": str(item.payload.get("id"))}):
                        result = await router.route_event(item.payload, remember=False)
                else:
                    result = await router.route_event(item.payload, remember=False)
                outcome = ingest.Outcome(item.row_id, "routed")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                kind = "deferred" if is_transient(exc) else "failed"
                from engine.quarantine import reason

                log.warning("routing of %s %s: %s", item.payload.get("id"),
                            "deferred" if kind == "deferred" else "failed", type(exc).__name__)
                outcome = ingest.Outcome(item.row_id, kind, reason(exc))
        routed_at = time.perf_counter()
        metrics.STAGE.labels("route").observe(routed_at - began)
        done: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
        self._writes.put_nowait(_Write(outcome, result.journeys if result else [], done))
        quarantined = await done
        metrics.STAGE.labels("commit").observe(time.perf_counter() - routed_at)
        if outcome.kind == "routed" and result is not None:
            return Routed(result.started, result.signalled, "done")
        return Routed(routing="quarantined" if item.row_id in quarantined else "pending", error=outcome.error)

    # -- group commit ------------------------------------------------------------------------------------
    async def _commit_loop(self) -> None:
        while True:
            batch = [await self._writes.get()]
            while not self._writes.empty() and len(batch) < 500:
                batch.append(self._writes.get_nowait())
            try:
                quarantined = await asyncio.to_thread(self._write, batch)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                for w in batch:
                    if not w.done.done():
                        w.done.set_exception(exc)
                continue
            metrics.COMMIT_SIZE.observe(len(batch))
            for w in batch:
                if not w.done.done():
                    w.done.set_result(quarantined)

    def _write(self, batch: list[_Write]) -> list[int]:
        journeys = {wid: (flow_id, version, customer_id) for w in batch for wid, flow_id, version, customer_id
                    in w.journeys}
        with transaction(self.database_url) as db:
            if journeys:
                remember_journeys(db, journeys)
            if self.holder.holds():  # the outcomes carry the heartbeat when one is due
                claims.beat(db, self.holder)
            return ingest.record_outcomes(db, [w.outcome for w in batch])

    # -- the claims' heartbeat -------------------------------------------------------------------------------
    async def _keep_claims_alive(self, thread: concurrent.futures.Executor) -> None:
        """While this process holds claims, write its heartbeat every :data:`engine.claims.HOLDER_BEAT_SECONDS`
        when no claim or outcome written carried one — on a thread of its own, so that neither routing held up
        (Temporal unreachable) nor a thread pool busy with it delays the beat: a live holder's claims are never
        taken over. A process that dies stops beating, and the re-router takes its claims over
        (:func:`engine.claims.lapsed`)."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(claims.HOLDER_BEAT_SECONDS / 4)
            if not (self.holder.holds() and self.holder.due()):
                continue
            try:
                await loop.run_in_executor(thread, claims.write_beat, self.database_url, self.holder)
            except Exception as exc:  # the database is down: so are the re-routers' claims
                log.debug("claims heartbeat not written: %s", type(exc).__name__)

    # -- Temporal's own backlog ----------------------------------------------------------------------------
    def _maybe_sample(self) -> None:
        """Sample Temporal's task queue backlog at most every :data:`SAMPLE_SECONDS`, while requests come in
        (in the background: admission uses the last sample and never waits for Temporal)."""
        now = time.monotonic()
        if self.router is None or now - self._sampled_at < SAMPLE_SECONDS:
            return
        if self._sampling is not None and not self._sampling.done():
            return
        self._sampled_at = now
        self._sampling = asyncio.get_running_loop().create_task(self._sample(self.router))
        if (self._beat_at is None or now - self._beat_at >= HEARTBEAT_SECONDS) and (
                self._beating is None or self._beating.done()):
            # its own task: on SQLite the heartbeat waits for the write lock, which the samples must never do
            self._beat_at = now
            self._beating = asyncio.get_running_loop().create_task(self._beat())

    async def _beat(self) -> None:
        try:
            await asyncio.to_thread(write_heartbeat, self.database_url, self.process_id)
        except Exception as exc:  # the others count this process as gone until the next heartbeat
            log.debug("web heartbeat not written: %s", type(exc).__name__)

    async def _sample(self, router: Router) -> None:
        done = 0.0
        try:
            self.worker_lag, done, self.web_processes = await asyncio.to_thread(
                read_lag, self.database_url, self.process_id)
            self.worker_done = done
            metrics.WORKER_LAG.set(self.worker_lag)
        except Exception as exc:
            log.debug("worker lag not available: %s", type(exc).__name__)
        try:
            age, count = await task_queue_backlog(router.client, router.task_queue)
        except Exception as exc:  # an older server without task queue stats, or unreachable
            # unknown is not busy: a sample from before an outage must not refuse events for good (while
            # Temporal is down, events are stored and routed when it is back)
            log.debug("task queue backlog not available: %s", type(exc).__name__)
            self.temporal_backlog_age, self.temporal_backlog_count = 0.0, 0
            metrics.TEMPORAL_BACKLOG_AGE.set(0)
            metrics.TEMPORAL_BACKLOG.set(0)
            self.observed_backlog(0, time.monotonic())
            return
        if done > 0:  # the tasks waiting, at the rate the workers finish journeys' first steps
            age = max(age, count / done)
        self.temporal_backlog_age, self.temporal_backlog_count = age, count
        self.observed_backlog(count, time.monotonic())
        metrics.TEMPORAL_BACKLOG_AGE.set(age)
        metrics.TEMPORAL_BACKLOG.set(count)

    # -- the re-router ---------------------------------------------------------------------------------------
    async def reroute_once(self, older_than_seconds: float, limit: int = 500) -> list[Routed]:
        """Claim events stored but not routed (whose claim lapsed) and route them through the lanes."""
        if self.router is None or not self._lanes:
            return []
        found = await asyncio.to_thread(ingest.pending, self.database_url, older_than_seconds, limit, True,
                                        self.holder)
        if not found:
            return []
        return await self.route_stored(found)


async def store_and_route(pipeline: RoutingPipeline | None, events: list[ingest.EventIn], database_url: str
                          ) -> list[tuple[ingest.Stored, Routed | None]]:
    """Store events in one transaction (all or none), then route those that need it through ``pipeline`` —
    each customer's in order, customers concurrently — and answer each with its routing (None: nothing to
    route, or no running pipeline: the re-router routes it). The follow-up events their hooks stored
    (``loyalty.points_earned`` of an ``order.paid`` …) are routed right behind them, not waited for. The one
    home of "store, then route" for a web request and ``tideflow events send``."""
    live = pipeline is not None and pipeline.router is not None and pipeline.running
    started = time.perf_counter()
    with follow_ups.held() as caused:  # follow-ups the events' hooks stored (points earned, invites counted)
        # anyio's thread pool (the web's run_in_threadpool): requests' stores are not held to asyncio's few threads
        stored = await anyio.to_thread.run_sync(ingest.store_many, events, database_url, live,
                                                pipeline.holder if live and pipeline is not None else None)
    metrics.STAGE.labels("store").observe(time.perf_counter() - started)
    todo = [i for i, one in enumerate(stored) if one.needs_routing] if live else []
    follow: list[tuple[int, dict[str, Any]]] = []
    if caused and pipeline is not None and pipeline.running:
        follow = await anyio.to_thread.run_sync(ingest.stored_unrouted, database_url, caused)
    elif caused:
        follow_ups.dispatch(database_url, caused)
    answers: dict[int, Routed] = {}
    if pipeline is not None and (todo or follow):
        # the follow-ups right behind the events that caused them, in their customers' lanes (a journey the
        # order.paid starts exists when its loyalty.points_earned arrives)
        futures = pipeline.submit([*[(stored[i].row_id, stored[i].payload) for i in todo], *follow])
        answers = dict(zip(todo, await asyncio.gather(*futures[:len(todo)]), strict=True))
    return [(one, answers.get(i)) for i, one in enumerate(stored)]


@contextlib.asynccontextmanager
async def follow_ups_routed(router: Router, lanes: int = 4) -> AsyncIterator[RoutingPipeline]:
    """Route the follow-up events this process commits as soon as their transaction commits, while the block
    lasts: for a process without a web app's pipeline (a worker, whose actions award points and count
    invites), a small pipeline of its own on ``router``."""
    pipeline = RoutingPipeline(router.database_url or "", router, lanes=lanes)
    if not router.database_url:
        from engine.settings import get_settings

        pipeline.database_url = get_settings().resolved_database_url()
    pipeline.start()
    pipeline.routes_follow_ups()
    try:
        yield pipeline
    finally:
        await pipeline.stop()


#: a worker's lag report counts for this long (a worker that stopped reporting is not believed forever)
LAG_FRESH_SECONDS = 5.0


def read_lag(database_url: str | None, process: str) -> tuple[float, float, int]:
    """A web process's sample (read only: it never waits for a writer): the worst event → action latency any
    worker reported within :data:`LAG_FRESH_SECONDS`, their summed completions per second, and how many web
    processes share the workers' capacity — ``process`` and every other whose heartbeat is that fresh
    (:func:`admission.web_processes`)."""
    from sqlalchemy import func, select

    from engine.db.quarantine_models import WebHeartbeat, WorkerLag
    from engine.db.session import session_factory

    now = utcnow()
    since = now - timedelta(seconds=LAG_FRESH_SECONDS)
    with session_factory(database_url)() as db:
        worst, done = db.execute(select(func.max(WorkerLag.lag_seconds), func.sum(WorkerLag.done_per_second))
                                 .where(WorkerLag.updated_at >= since)).one()
        beats = [(other, (now - at).total_seconds()) for other, at in
                 db.execute(select(WebHeartbeat.process, WebHeartbeat.updated_at)
                            .where(WebHeartbeat.updated_at >= since))]
    return float(worst or 0.0), float(done or 0.0), admission.web_processes(beats, process, LAG_FRESH_SECONDS)


def write_heartbeat(database_url: str | None, process: str) -> None:
    """A web process that admits events says so (at most every :data:`HEARTBEAT_SECONDS`); heartbeats older
    than :data:`HEARTBEAT_FORGET_SECONDS` are deleted (a restarted process has a new id)."""
    from sqlalchemy import delete

    from engine.db.quarantine_models import WebHeartbeat

    now = utcnow()
    with transaction(database_url) as db:
        row = db.get(WebHeartbeat, process)
        if row is None:
            db.add(WebHeartbeat(process=process, updated_at=now))
        else:
            row.updated_at = now
        db.execute(delete(WebHeartbeat).where(
            WebHeartbeat.updated_at < now - timedelta(seconds=HEARTBEAT_FORGET_SECONDS)))


def forget_heartbeat(database_url: str | None, process: str) -> None:
    """Delete a web process's heartbeat (it stops): the others admit its share from their next sample."""
    from sqlalchemy import delete

    from engine.db.quarantine_models import WebHeartbeat

    with transaction(database_url) as db:
        db.execute(delete(WebHeartbeat).where(WebHeartbeat.process == process))


def write_lag(database_url: str | None, worker: str, lag: float, done_per_second: float) -> None:
    from engine.db.quarantine_models import WorkerLag

    with transaction(database_url) as db:
        row = db.get(WorkerLag, worker)
        if row is None:
            db.add(WorkerLag(worker=worker, lag_seconds=lag, done_per_second=done_per_second, updated_at=utcnow()))
        else:
            row.lag_seconds, row.done_per_second, row.updated_at = lag, done_per_second, utcnow()


async def report_lag(database_url: str | None, worker: str, every: float = 1.0, window: int = 3) -> None:
    """A worker's loop: every second, write the worst event → action latency of the last ``window`` seconds
    (a second with nothing done keeps the last worst value, fading by a second per second — a stalled worker
    does not look idle) and the completions per second over that window."""
    recent: list[tuple[float, int]] = []
    carried = 0.0
    while True:
        await asyncio.sleep(every)
        worst, seen = metrics.LAG.take()
        carried = worst if seen else max(0.0, carried - every)
        recent = [*recent[-(window - 1):], (carried, seen)]
        lag = max(w for w, _ in recent)
        done = sum(n for _, n in recent) / (every * len(recent))
        try:
            await asyncio.to_thread(write_lag, database_url, worker, lag, done)
        except Exception as exc:  # the database is down: admission falls back on Temporal's backlog
            log.debug("lag report failed: %s", type(exc).__name__)


def remember_journeys(db: Any, journeys: dict[str, tuple[str, int, str]]) -> None:
    """Insert journeys rows for started journeys (a row the journey's own first checkpoint wrote stays)."""
    table = models.Journey.__table__
    assert isinstance(table, Table)
    now = utcnow()
    insert = postgresql.insert if db.get_bind().dialect.name == "postgresql" else sqlite.insert
    rows = [{"workflow_id": wid, "flow_id": flow_id, "version": version, "customer_id": customer_id,
             "status": "running", "current_node": None, "started_at": now, "updated_at": now, "ended_at": None,
             "checkpoint": 0} for wid, (flow_id, version, customer_id) in sorted(journeys.items())]
    db.execute(insert(table).on_conflict_do_nothing(index_elements=["workflow_id"]), rows)


async def task_queue_backlog(client: Any, task_queue: str) -> tuple[float, int]:
    """(seconds a task queued now would wait — the oldest waiting task's age, or the backlog divided by the rate
    tasks are handed out, whichever is longer —, tasks waiting) over the workflow and activity task queues."""
    from temporalio.api.enums.v1 import TaskQueueType
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

    wait, count = 0.0, 0
    for kind in (TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY):
        answer = await client.workflow_service.describe_task_queue(DescribeTaskQueueRequest(
            namespace=client.namespace, task_queue=TaskQueue(name=task_queue), task_queue_type=kind,
            report_stats=True), timeout=timedelta(seconds=2))
        stats = answer.stats
        waiting = int(stats.approximate_backlog_count)
        age = stats.approximate_backlog_age.ToTimedelta().total_seconds()
        # a growing backlog: a task queued now waits for everything before it at the rate tasks leave
        drain = waiting / stats.tasks_dispatch_rate if stats.tasks_dispatch_rate > 0 else (age if waiting else 0.0)
        wait = max(wait, age, drain)
        count += waiting
    return wait, count


Reconnect = Callable[[], Awaitable[Router | None]]


async def reroute_forever(pipeline: RoutingPipeline, every: float, older_than: float, reconnect: Reconnect,
                          extra: Sequence[Callable[[Router], Awaitable[Any]]] = ()) -> None:
    """The re-router: every ``every`` s, route events whose routing failed or whose router died, then run the
    ``extra`` passes (starting pending ticket workflows). A failing pass never stops the loop."""
    while True:
        await asyncio.sleep(every)
        try:
            if pipeline.router is None:
                pipeline.router = await reconnect()
                if pipeline.router is None:
                    continue
            await pipeline.reroute_once(older_than)
            for run in extra:
                await run(pipeline.router)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("re-routing paused: %s", type(exc).__name__)
