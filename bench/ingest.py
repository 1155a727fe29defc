"""Event in → message at the sink, Tideflow against n8n and a hand-written Temporal pipeline, in one run.

Every target receives the same events from the same load generator (:mod:`bench.sink`) on loopback and sends
one message per event to the same loopback sink:

- **Tideflow**: the real stack as processes (Temporal dev server, ``tideflow worker``, ``tideflow web``),
  SQLite (default) or PostgreSQL; ``POST /api/events`` with an API token; a published flow
  ``trigger.event → action.send_message`` through the ``webhook`` channel to the sink.
- **n8n** (:mod:`bench.n8n`): installed from npm into a cache outside the repository; a workflow
  ``Webhook (respond immediately) → HTTP Request`` to the sink, imported and activated through its CLI.
- **Temporal, hand-written** (:mod:`bench.rawtemporal`): a client starting one workflow per event whose only
  activity POSTs to the sink — what the dev server and a worker can do with no web process and no database;
  and the dev server's own ceiling (an empty workflow).

Measured per target: saturated throughput (events offered open-loop in rising steps while a step keeps up:
its messages arrive at the sink within a second of it and its latency does not grow, i.e. no backlog builds;
the rate the best such step delivered),
paced 10 events/s (p50 / p99 event → message), 80 % of its own saturated rate (p99), and
overload at 2× (p99 of what was accepted, and how many requests were told to come back later).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.common import cpu_seconds, percentile, quiet_down
from bench.sink import Load, Sent, Sink, drain, latencies, payload

EVENT_TYPE = "custom.bench_ingest"
SINK_SECRET = "whsec-bench-sink-0123456789"


@dataclass
class Sizes:
    #: the capacity ramp: offered rates from ramp_start, × ramp_factor per step of step_seconds, while a step
    #: keeps up (:class:`Step`: delivered within step_slack seconds after it, its latency growing by at most
    #: growth_limit seconds per second); when the first step does not, it is repeated once, then the ramp steps
    #: down at most ramp_down times
    ramp_start: float = 10
    ramp_factor: float = 1.3
    ramp_max: float = 400
    step_seconds: float = 6
    step_slack: float = 1.0
    growth_limit: float = 0.1
    ramp_down: int = 2
    workers: int = 64
    paced_events: int = 100
    partial_seconds: float = 10
    overload_seconds: float = 10
    warm_up: int = 30
    #: after an overload, Temporal takes this long to answer as fast as before even once its CPU is idle
    #: (a paced run right after the ramp measured 92-127 ms p50, 45 ms after a 20 s rest): the steady
    #: paced run waits this long
    rest_seconds: float = 20
    #: the 80 % and 2× runs: an event told to come back later is sent again until this long after the run's
    #: last event has left (past it, it was never acknowledged: not lost, only refused)
    give_up_seconds: float = 120
    #: a settle waits at most this long for acknowledged events that have not arrived (they count as lost)
    drain_seconds: float = math.inf
    #: the target is idle again after the ramp when its processes used less than 15 % of a core for
    #: calm_seconds, looked at every calm_interval s (at most calm_limit s)
    calm_seconds: float = 2
    calm_interval: float = 1.0
    calm_limit: float = 60
    #: the quick bench's ramp starts here for n8n and the hand-written pipelines (None: ramp_start): in every
    #: quick run so far they kept up at 37/s, and a step far below a target's capacity tells nothing
    others_ramp_start: float | None = None

    @classmethod
    def quick(cls) -> Sizes:
        """``make bench-quick`` (under 2 minutes for five targets): the full ramp's rates (10/s × 1.3 per step)
        from its fourth, 22/s, for Tideflow (it kept up at 22–37/s in the quick runs so far) and from its sixth,
        37/s, for the others, in steps of 1.5 s with 0.5 s slack, kept up by the same rule (a step's latency may
        grow as little in 1.5 s as in 6 s, so both ramps read the same rate: a 1.5 s step above capacity can
        still be delivered within its slack); 20 paced events (p99 is their slowest); 1.5 s at 80 %, 3 s at 2×
        (long enough for Tideflow's admission to see the backlog and refuse: in 1.5 s it admitted every event),
        refused events sent again for 2 s; a 10 s rest (the quick bench measures another target's capacity
        meanwhile); idle after 0.5 s, looked at every 0.25 s."""
        return cls(ramp_start=10 * 1.3**3, step_seconds=1.5, step_slack=0.5, paced_events=20,
                   partial_seconds=1.5, overload_seconds=3, warm_up=15, rest_seconds=10, give_up_seconds=2,
                   drain_seconds=15, calm_seconds=0.5, calm_interval=0.25, calm_limit=10,
                   others_ramp_start=10 * 1.3**5)


#: a ramp step keeps up only when this share of its events arrived within its slack
IN_TIME = 0.85


@dataclass(frozen=True)
class Step:
    """One step of the capacity ramp: ``rate`` events/s offered for ``seconds``; ``latencies[n]``: event n's
    message at the sink minus when the event was due to leave (the step's start + n / rate; an event told to
    come back later is late by its wait), None when it had not arrived by the step's deadline (its slack after
    the step)."""

    rate: float
    seconds: float
    latencies: tuple[float | None, ...]
    refused: int = 0
    #: p50 event → message (from the event's last attempt) of the events that arrived at all
    p50: float = float("nan")

    @property
    def delivered(self) -> float:
        """Messages of the step at the sink by its deadline, per second of the step."""
        return sum(1 for lat in self.latencies if lat is not None) / self.seconds

    @property
    def growth(self) -> float:
        """How fast the step built a backlog: the 75th percentile latency of its later half of events less its
        earlier half's, per second between the halves (seconds per second; ``inf`` when more than a quarter of
        the later half had not arrived). A target that keeps up stays near 0; one offered ``rate`` that can do
        c < rate falls behind by rate / c - 1. Unlike the share delivered within the slack, this does not
        depend on the step's length: a 1.5 s step 30 % above capacity still arrives within 0.5 s of slack."""
        half = len(self.latencies) // 2
        if half < 2:
            return 0.0
        early, late = (_p75(self.latencies[:half]), _p75(self.latencies[half:]))
        if late == math.inf:
            return math.inf
        return (late - early) / (self.seconds / 2)

    def kept_up(self, growth_limit: float) -> bool:
        """Delivered in time (:data:`IN_TIME` of the offered rate) without a growing backlog."""
        return self.delivered >= IN_TIME * self.rate and self.growth <= growth_limit


def _p75(latencies: tuple[float | None, ...]) -> float:
    """The 75th percentile by nearest rank, a missing message counting as infinitely late."""
    ordered = sorted(math.inf if lat is None else lat for lat in latencies)
    return ordered[min(len(ordered) - 1, math.ceil(0.75 * len(ordered)) - 1)]


def step_of(rate: float, seconds: float, slack: float, began: float, sent: Sent,
            seen: Callable[[str, int], float | None]) -> Step:
    """The :class:`Step` of a ramp step that began at ``began`` (perf_counter), its events ``sent``, from when
    ``seen`` says each arrived at the sink. An event given up on (not in ``sent.sent_at``) was not delivered."""
    deadline = began + seconds + slack
    latencies: list[float | None] = []
    for n in range(max(1, round(rate * seconds))):
        arrived = seen(sent.run, n) if n in sent.sent_at else None
        latencies.append(arrived - (began + n / rate) if arrived is not None and arrived <= deadline else None)
    acknowledged = [t - sent.sent_at[n] for n in sent.sent_at if (t := seen(sent.run, n)) is not None]
    return Step(rate, seconds, tuple(latencies), sent.refused, percentile(acknowledged, 50))


def next_rate(steps: list[Step], sizes: Sizes) -> float | None:
    """The ramp's next offered rate after ``steps`` (None: it is over). Up by ``ramp_factor`` while steps keep
    up; over at the first that does not once one has. If the first does not, it is repeated once (a target
    can still be warming up), then the ramp steps down at most ``ramp_down`` times; a step that kept up after
    stepping down ends it (the one above it did not)."""
    last = steps[-1]
    if last.kept_up(sizes.growth_limit):
        if last.rate < steps[0].rate:
            return None  # came down to it
        rate = last.rate * sizes.ramp_factor
        return rate if rate <= sizes.ramp_max else None
    if any(step.kept_up(sizes.growth_limit) for step in steps):
        return None
    if len(steps) == 1:
        return last.rate
    lowest = min(step.rate for step in steps)
    down = sum(1 for step in steps if step.rate < steps[0].rate)
    return lowest / sizes.ramp_factor if down < sizes.ramp_down else None


def capacity_of(steps: list[Step], growth_limit: float) -> tuple[Step | None, bool]:
    """The ramp's capacity step: of the steps that kept up, the one that delivered most (and True); when none
    did, the gentlest step (and False: the target kept up with none of them, its capacity is below it)."""
    kept = [step for step in steps if step.kept_up(growth_limit)]
    if kept:
        return max(kept, key=lambda step: step.delivered), True
    return (min(steps, key=lambda step: step.rate) if steps else None), False


@dataclass
class Figures:
    """What one target did."""

    name: str
    saturated: float = 0.0  # messages/s at the sink
    saturated_p50: float = float("nan")  # s
    paced_p50: float = float("nan")
    paced_p99: float = float("nan")
    #: paced 10/s right after the capacity ramp's overload (once the processes are idle again)
    recovering_p50: float = float("nan")
    recovering_p99: float = float("nan")
    partial_rate: float = 0.0
    partial_p99: float = float("nan")
    overload_rate: float = 0.0
    overload_p99: float = float("nan")
    overload_refused: int = 0
    overload_accepted: int = 0
    lost: int = 0
    #: requests that got no answer or an error answer (the first one's text)
    errors: int = 0
    first_error: str = ""
    #: CPU milliseconds per event (every process of the target: for Tideflow Temporal, web and worker) over
    #: the capacity ramp and over the paced run; by process for the ramp
    cpu_ramp: float = float("nan")
    cpu_paced: float = float("nan")
    cpu_by_process: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass
class Target:
    name: str
    base_url: str
    post: Callable[[httpx.AsyncClient, str, int], Awaitable[httpx.Response]]
    headers: dict[str, str] = field(default_factory=dict)
    #: process ids by role (for a profiler: ``py-spy record -p``)
    pids: dict[str, int] = field(default_factory=dict)


class Measurement:
    """One target's measurement, in the halves a rest separates: :meth:`warm_up`; :meth:`capacity` (the ramp,
    and with ``follow_up`` the quiet-down and the paced run right after it); :meth:`steady` (after the rest:
    the paced run, 80 % and 2× of capacity). :func:`measure` runs them one after the other; the quick bench
    lets another target's capacity half run during the rest."""

    def __init__(self, target: Target, sink: Sink, sizes: Sizes, log: Callable[[str], None]) -> None:
        self.target, self.sink, self.sizes, self.log = target, sink, sizes, log
        self.figures = Figures(target.name)
        token = uuid.uuid4().hex[:6]  # runs of different targets never share a marker
        self._runs = iter(f"{token}x{i}" for i in range(100))
        #: when the rest began (the end of the capacity half)
        self.resting_since = 0.0

    def loader(self, run: str) -> Load:
        return Load(self.target.base_url, lambda client, n: self.target.post(client, run, n),
                    connections=max(64, self.sizes.workers * 2), headers=self.target.headers)

    async def settle(self, sent: Sent, timeout: float) -> None:
        """Wait for a run's acknowledged events at the sink; count what is missing and what went wrong."""
        self.figures.lost += await drain(self.sink, sent, min(timeout, self.sizes.drain_seconds))
        self.figures.errors += sent.errors
        self.figures.first_error = self.figures.first_error or sent.first_error

    def cpu_per_event(self, before: dict[str, float], events: int) -> tuple[float, dict[str, float]]:
        after = cpu_seconds(self.target.pids)
        each = {name: (after[name] - before[name]) * 1000 / max(1, events) for name in after}
        return (sum(each.values()) if each else float("nan")), each

    async def paced(self, rate: float, count: int, give_up_after: float = 120, settle: float = 60) -> Sent:
        """A paced run of its own, settled."""
        run = next(self._runs)
        load = self.loader(run)
        sent = await load.paced(run, rate, count, give_up_after=give_up_after)
        await self.settle(sent, settle)
        await load.close()
        return sent

    async def warm_up(self) -> None:
        """Caches, connections, the first workflow tasks."""
        await self.paced(20, self.sizes.warm_up)
        self.log(f"  {self.target.name}: warmed up ({self.sizes.warm_up} events)")

    async def capacity(self, follow_up: bool = True, start: float | None = None) -> None:
        """Offered open-loop in rising steps while each keeps up (:func:`next_rate`); the saturated throughput is
        what the best step that kept up delivered (:func:`capacity_of`); the first step offers ``start``
        (default: the sizes' ``ramp_start``). With ``follow_up``,
        then paced 10/s right after the ramp's overload, once the target's processes are idle again (the
        recovery)."""
        target, sink, sizes, figures, log = self.target, self.sink, self.sizes, self.figures, self.log
        loads: list[Load] = []
        sents: list[Sent] = []
        steps: list[Step] = []
        rate: float | None = start or sizes.ramp_start
        pending: list[asyncio.Task[Any]] = []
        cpu_before = cpu_seconds(target.pids)
        while rate is not None:
            if steps and not steps[-1].kept_up(sizes.growth_limit):
                # repeating or stepping down: the backlog of the step that did not keep up goes first
                await asyncio.gather(*pending)
                await drain(sink, sents[-1], min(30.0, sizes.drain_seconds))
            run = next(self._runs)
            load = self.loader(run)
            began = time.perf_counter()
            sent, tasks = await load.fire(run, rate, max(1, round(rate * sizes.step_seconds)),
                                          give_up_after=sizes.step_seconds)
            pending += tasks
            sents.append(sent)
            loads.append(load)
            await asyncio.sleep(max(0.0, began + sizes.step_seconds + sizes.step_slack - time.perf_counter()))
            step = step_of(rate, sizes.step_seconds, sizes.step_slack, began, sent, sink.seen)
            steps.append(step)
            kept = step.kept_up(sizes.growth_limit)
            log(f"  {target.name}: offered {rate:.0f}/s → {step.delivered:.1f}/s in time, p50 "
                f"{step.p50 * 1000:.0f} ms, latency growing {step.growth * 1000:.0f} ms/s (p75), {sent.refused} told "
                f"to retry: {'kept up' if kept else 'fell behind'}")
            behind = ("late or missing messages" if step.delivered < IN_TIME * rate or math.isinf(step.growth)
                      else f"latency growing {step.growth * 1000:.0f} ms/s")
            figures.notes.append(f"{rate:.0f}/s → {step.delivered:.1f}/s" + (
                "" if kept else f" (fell behind: {behind})"))
            rate = next_rate(steps, sizes)
        best, kept = capacity_of(steps, sizes.growth_limit)
        if best is not None:
            figures.saturated, figures.saturated_p50 = best.delivered, best.p50
            if not kept:
                figures.notes.append(f"no step kept up: capacity below {best.rate:.0f}/s")
        await asyncio.gather(*pending)
        for extra in loads:
            await extra.close()
        for sent in sents:  # every acknowledged event still arrives (the backlog drains before the next phase)
            await self.settle(sent, 120)
        figures.cpu_ramp, figures.cpu_by_process = self.cpu_per_event(cpu_before, sum(sent.acked for sent in sents))
        log(f"  {target.name}: saturated {figures.saturated:.1f} msg/s (p50 {figures.saturated_p50 * 1000:.0f} ms)")
        if follow_up:
            # paced 10/s right after the ramp's overload, once the target's processes are idle again (the
            # recovery); the steady figure, after a rest, is :meth:`steady`'s; the same rule for every target
            if target.pids:
                waited = await self.quiet()
                log(f"  {target.name}: quiet again {waited:.0f} s after the ramp")
            lat = latencies(sink, await self.paced(10, sizes.paced_events))
            figures.recovering_p50, figures.recovering_p99 = percentile(lat, 50), percentile(lat, 99)
            log(f"  {target.name}: paced right after the ramp p50 {figures.recovering_p50 * 1000:.1f} ms, p99 "
                f"{figures.recovering_p99 * 1000:.1f} ms; resting {sizes.rest_seconds:.0f} s")
        self.resting_since = time.perf_counter()

    async def quiet(self) -> float:
        """:func:`bench.common.quiet_down` for this target's processes, at the sizes' pace."""
        return await quiet_down(self.target.pids, calm_seconds=self.sizes.calm_seconds,
                                interval=self.sizes.calm_interval, limit=self.sizes.calm_limit)

    async def steady(self) -> None:
        """After the rest (what is left of it since :meth:`capacity`): paced 10/s, the steady figure the target
        is about; then 80 % of capacity, and overload at 2×."""
        target, sizes, figures, log = self.target, self.sizes, self.figures, self.log
        await asyncio.sleep(max(0.0, self.resting_since + sizes.rest_seconds - time.perf_counter()))
        log(f"  {target.name}: rested {time.perf_counter() - self.resting_since:.0f} s")
        cpu_before = cpu_seconds(target.pids)
        sent = await self.paced(10, sizes.paced_events)
        lat = latencies(self.sink, sent)
        figures.cpu_paced, _ = self.cpu_per_event(cpu_before, sent.acked)
        figures.paced_p50, figures.paced_p99 = percentile(lat, 50), percentile(lat, 99)
        after_ramp = (f" (right after the ramp {figures.recovering_p50 * 1000:.1f} / "
                      f"{figures.recovering_p99 * 1000:.1f} ms)" if not math.isnan(figures.recovering_p50) else "")
        log(f"  {target.name}: paced 10/s p50 {figures.paced_p50 * 1000:.1f} ms, p99 {figures.paced_p99 * 1000:.1f} "
            f"ms{after_ramp}; CPU per event {figures.cpu_ramp:.1f} ms over the ramp ("
            + ", ".join(f"{name} {ms:.1f}" for name, ms in figures.cpu_by_process.items())
            + f"), {figures.cpu_paced:.1f} ms paced")

        # 80 % of capacity, then overload at 2×
        for share, seconds in ((0.8, sizes.partial_seconds), (2.0, sizes.overload_seconds)):
            rate = max(1.0, share * figures.saturated)
            sent = await self.paced(rate, max(1, round(rate * seconds)), sizes.give_up_seconds, settle=120)
            lat = latencies(self.sink, sent)
            if share < 1:
                figures.partial_rate, figures.partial_p99 = rate, percentile(lat, 99)
            else:
                figures.overload_rate, figures.overload_p99 = rate, percentile(lat, 99)
                figures.overload_refused, figures.overload_accepted = sent.refused, sent.acked
            log(f"  {target.name}: {share:.0%} of capacity ({rate:.0f}/s): p99 {percentile(lat, 99) * 1000:.0f} ms, "
                f"{sent.refused} told to retry")


async def measure(target: Target, sink: Sink, sizes: Sizes, log: Callable[[str], None]) -> Figures:
    """Every measurement of one target, one after the other (the rest a plain wait)."""
    measurement = Measurement(target, sink, sizes, log)
    await measurement.warm_up()
    await measurement.capacity()
    await measurement.steady()
    return measurement.figures


# -- Tideflow --------------------------------------------------------------------------------------------------
def flow_document() -> dict[str, Any]:
    return {"schema": "tideflow/flow@1", "id": "bench-ingest", "name": "bench: event → message", "kind": "journey",
            "nodes": [{"id": "start", "type": "trigger.event", "config": {"event": EVENT_TYPE}},
                      {"id": "notify", "type": "action.send_message",
                       "config": {"channel": "webhook", "template": "{{ event.payload.marker }}",
                                  "category": "transactional"}}],
            "edges": [{"from": "start", "port": "out", "to": "notify"}]}


@contextlib.asynccontextmanager
async def tideflow(root: Path, sink: Sink, database: str = "sqlite", env: dict[str, str] | None = None,
                   one_process: bool = False) -> AsyncIterator[Target]:
    """The Tideflow stack as processes; ``database`` sqlite or postgres; ``one_process``: the worker runs in
    the web process (``TIDEFLOW_WORKER_IN_WEB``, eager workflow start; SQLite only)."""
    from tests.e2e.stack import E2EStack

    stack_cm: Any
    if database == "postgres":
        from faults.scenarios import postgres_stack

        @contextlib.contextmanager
        def pg() -> Any:
            with postgres_stack(root) as (stack, _cluster):
                yield stack

        stack_cm = pg()
    else:
        stack_cm = E2EStack(root)
    stopping = contextlib.ExitStack()  # stopped in a thread: the quick bench stops every target at once
    try:
        stack = stopping.enter_context(stack_cm)
        stack.env.update(env or {})
        if database != "postgres":
            await asyncio.to_thread(stack.start_pieces, 120, not one_process)
        stack.api("PUT", "/api/connectors/bench-sink", expect=201, json={
            "kind": "webhook", "name": "bench sink", "settings": {"url": sink.url, "timeout_seconds": 10},
            "secrets": {"secret": SINK_SECRET}})
        stack.api("POST", "/api/flows", expect=201, json=flow_document())
        stack.api("POST", "/api/flows/bench-ingest/publish", expect=201)

        async def post(client: httpx.AsyncClient, run: str, n: int) -> httpx.Response:
            return await client.post("/api/events", json={
                "id": f"{run}-{n}", "type": EVENT_TYPE, "source": "bench", "customer": {"external_id": f"{run}-{n}"},
                "payload": payload(run, n)})

        name = f"Tideflow ({database}{', one process' if one_process else ''})"
        yield Target(name, stack.base_url, post, {"Authorization": f"Bearer {stack.token}"},
                     {name: proc.pid for name, proc in stack.procs.items()})
    finally:
        await asyncio.to_thread(stopping.close)


def quick() -> bool:
    return os.environ.get("BENCH_QUICK", "") not in ("", "0")


# -- the hand-written Temporal pipeline ---------------------------------------------------------------------------
@contextlib.asynccontextmanager
async def raw_temporal(root: Path, sink: Sink, eager: bool) -> AsyncIterator[Target]:
    """:mod:`bench.rawtemporal` as a process, on a Temporal dev server of its own."""
    import secrets
    import sys

    from bench.common import free_port
    from tests.e2e.stack import E2EStack

    stack = E2EStack(root)
    try:
        await asyncio.to_thread(stack.start_temporal, False, True, 120)
        stack.env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)  # the bench package itself
        port = free_port()
        stack.spawn("raw", [sys.executable, "-m", "bench.rawtemporal", "--port", str(port), "--temporal",
                            f"127.0.0.1:{stack.temporal_port}", "--sink", sink.url, "--queue",
                            f"raw-{secrets.token_hex(3)}", *(["--eager"] if eager else [])])
        await asyncio.to_thread(stack.wait_log, "raw", "raw pipeline ready", 120)

        async def post(client: httpx.AsyncClient, run: str, n: int) -> httpx.Response:
            return await client.post("/events", json={"id": f"{run}-{n}", "payload": payload(run, n)})

        yield Target("Temporal by hand" + (" (eager + local activity)" if eager else ""), f"http://127.0.0.1:{port}",
                     post, pids={name: proc.pid for name, proc in stack.procs.items()})
    finally:  # in a thread, as tideflow()'s
        await asyncio.to_thread(stack.close)


# -- the quick bench ----------------------------------------------------------------------------------------------
def interleaved(keys: list[str], steady: set[str]) -> list[tuple[str, str]]:
    """The quick bench's order of halves (``capacity``, ``steady``): the steady half of a target in ``steady``
    comes after the next target's capacity half, which is its rest (it is idle meanwhile; no two targets are
    ever measured at once)."""
    order: list[tuple[str, str]] = []
    resting: str | None = None
    for key in keys:
        order.append((key, "capacity"))
        if resting is not None:
            order.append((resting, "steady"))
        resting = key if key in steady else None
    if resting is not None:
        order.append((resting, "steady"))
    return order


async def measure_quick(plan: list[tuple[str, Callable[[], Any]]], sink: Sink, sizes: Sizes,
                        say: Callable[[str], None], notes: list[str], recovering: set[str], steady: set[str]
                        ) -> dict[str, Figures]:
    """Every target started at once (start-up is not measured), then measured one at a time, in
    :func:`interleaved` order, each half once the target measured before it is idle again; stopped at once.
    Of each target only what the table shows: the capacity (and CPU per event over the ramp) of every one, the
    paced run right after the ramp of those in ``recovering``, the steady half of those in ``steady``.
    A target's warm-up begins its capacity half: warmed up all at once, the targets would share the cores,
    and Tideflow's admission would remember the slow completions it saw as its capacity."""
    began = time.perf_counter()

    async def enter(key: str, make: Callable[[], Any]) -> tuple[str, Any, Target | None]:
        manager = make()
        try:
            target = await manager.__aenter__()
            say(f"  {key} started in {time.perf_counter() - began:.1f} s")
            return key, manager, target
        except Exception as exc:
            say(f"  {key} could not start: {type(exc).__name__}: {exc}")
            notes.append(f"ingest: {key} could not run: {type(exc).__name__}: {str(exc)[:300]}")
            return key, manager, None

    ready = await asyncio.gather(*(enter(key, make) for key, make in plan))
    try:
        measurements = {key: Measurement(target, sink, sizes, say) for key, _, target in ready if target is not None}
        previous = {f"{key} {name}": pid for key, m in measurements.items() for name, pid in m.target.pids.items()}
        failed: set[str] = set()
        # the targets measured right after the ramp first: their capacity halves are the longest, so each is
        # the rest of the one before it without a wait
        keys = sorted(measurements, key=lambda key: key not in recovering)
        for key, half in interleaved(keys, steady):
            if key in failed:
                continue
            m = measurements[key]
            waited = await quiet_down(previous, calm_seconds=sizes.calm_seconds, interval=sizes.calm_interval,
                                      limit=sizes.calm_limit)
            say(f"… ingest: {key}, {half} (what ran before was idle after {waited:.1f} s)")
            try:
                if half == "capacity":
                    await m.warm_up()
                    await m.capacity(follow_up=key in recovering, start=None if key.startswith("tideflow")
                                     else sizes.others_ramp_start)
                else:
                    await m.steady()
            except Exception as exc:  # one target that cannot run does not hide the others
                say(f"  {key} could not run: {type(exc).__name__}: {exc}")
                notes.append(f"ingest: {key} could not run: {type(exc).__name__}: {str(exc)[:300]}")
                failed.add(key)
            previous = m.target.pids
        return {key: m.figures for key, m in measurements.items() if key not in failed}
    finally:  # each stops in a thread of its own (stopping is mostly waiting for processes to exit)
        stopping = time.perf_counter()
        await asyncio.gather(*(manager.__aexit__(None, None, None) for _key, manager, target in ready
                               if target is not None), return_exceptions=True)
        say(f"… ingest: every target stopped in {time.perf_counter() - stopping:.1f} s")


# -- the table ----------------------------------------------------------------------------------------------------
TARGET_PACED_P50 = 0.025
TARGET_PACED_P99 = 0.100
TARGET_PARTIAL_P99 = 0.500
BOUND = 2.0


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds == seconds else "n/a"


def chosen_databases() -> list[str]:
    """The databases Tideflow is measured on: ``BENCH_INGEST_DATABASES`` (default SQLite, PostgreSQL too in the
    full run)."""
    return [d for d in os.environ.get("BENCH_INGEST_DATABASES", "sqlite" if quick() else "sqlite,postgres")
            .split(",") if d]


def target_keys(databases: list[str]) -> list[str]:
    """The keys of the targets :func:`run` plans, in its order (``BENCH_INGEST_TARGETS`` picks among them)."""
    return [f"tideflow-{d}" for d in databases] + (["tideflow-one"] if "sqlite" in databases else []) \
        + ["n8n", "raw", "raw-eager"]


def check_targets() -> None:
    """Refuse a ``BENCH_INGEST_TARGETS`` key before anything starts (``python -m bench`` calls it)."""
    selected([(key, lambda: None) for key in target_keys(chosen_databases())],
             os.environ.get("BENCH_INGEST_TARGETS", ""))


def selected(plan: list[tuple[str, Callable[[], Any]]], wanted: str) -> list[tuple[str, Callable[[], Any]]]:
    """The targets of ``plan`` that ``wanted`` names (``BENCH_INGEST_TARGETS``, comma-separated keys such as
    ``tideflow-one,tideflow-sqlite``; empty: all), in the plan's order. A key the plan does not have is refused,
    naming the keys it has."""
    keys = [key.strip() for key in wanted.split(",") if key.strip()]
    if not keys:
        return plan
    known = [key for key, _ in plan]
    unknown = [key for key in keys if key not in known]
    if unknown:
        raise SystemExit(f"BENCH_INGEST_TARGETS: no target {', '.join(unknown)}; the targets are {', '.join(known)}")
    return [(key, make) for key, make in plan if key in keys]


async def run(_stack: Any) -> Any:
    """The ingest benchmark for ``python -m bench ingest`` (``BENCH_QUICK=1``: the reduced sizes)."""
    import tempfile

    from bench.common import Report, Row, at_least, at_most
    from bench.n8n import n8n

    sizes = Sizes.quick() if quick() else Sizes()
    databases = chosen_databases()
    report = Report("ingest")
    found: dict[str, Figures] = {}

    began = time.perf_counter()

    def say(text: str) -> None:
        """A log line on stderr, stamped with the wall clock and the seconds since the benchmark began."""
        import sys

        print(f"{time.strftime('%H:%M:%S')} +{time.perf_counter() - began:5.1f}s {text}", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="tideflow-ingest-") as tmp:
        root = Path(tmp)
        async with Sink() as sink:
            makers: dict[str, Callable[[], Any]] = {
                **{f"tideflow-{d}": functools.partial(tideflow, root / f"tf-{d}", sink, d) for d in databases},
                # `tideflow up --one-process`: the worker in the web process, eager start
                "tideflow-one": lambda: tideflow(root / "tf-one", sink, "sqlite", one_process=True),
                "n8n": lambda: n8n(root / "n8n", sink),
                "raw": lambda: raw_temporal(root / "raw", sink, False),
                "raw-eager": lambda: raw_temporal(root / "raw-eager", sink, True)}
            plan = selected([(key, makers[key]) for key in target_keys(databases)],
                            os.environ.get("BENCH_INGEST_TARGETS", ""))
            planned = {key for key, _ in plan}
            if quick():  # what the table shows: the first database's paced and overload rows, n8n's beside them
                first = f"tideflow-{databases[0]}"
                found.update(await measure_quick(plan, sink, sizes, say, report.notes, recovering={first, "n8n"},
                                                 steady={first, "n8n", "tideflow-one"}))
            else:
                for key, make in plan:
                    say(f"… ingest: {key}")
                    try:
                        async with make() as target:
                            found[key] = await measure(target, sink, sizes, say)
                    except Exception as exc:  # one target that cannot run does not hide the others
                        say(f"  {key} could not run: {type(exc).__name__}: {exc}")
                        report.notes.append(f"ingest: {key} could not run: {type(exc).__name__}: {str(exc)[:300]}")
            if sink.duplicates:
                report.notes.append(f"ingest: the sink received {sink.duplicates} message(s) twice")
    peer = found.get("n8n")
    raw, ceiling = found.get("raw"), found.get("raw-eager")
    for d in databases:
        tf = found.get(f"tideflow-{d}")
        if tf is None:
            report.failed = report.failed or f"tideflow-{d}" in planned
            continue
        versus = f"; {peer.name} {peer.saturated:.1f}/s" if peer else ""
        ratio = tf.saturated / peer.saturated if peer and peer.saturated else float("nan")
        report.rows.append(Row(f"ingest saturated, event → message, {d}",
                               f"{tf.saturated:.1f} msg/s ({ratio:.2f}× n8n{versus})", "≥ 2× n8n",
                               ratio / 2 if ratio == ratio else None))
        report.rows.append(Row(f"ingest saturated p50 latency, {d}", f"{_ms(tf.saturated_p50)}"
                               + (f" (n8n {_ms(peer.saturated_p50)})" if peer else ""), f"≤ {BOUND:g} s",
                               at_most(tf.saturated_p50, BOUND)))
        if d == databases[0]:
            report.rows += [
                Row("paced 10/s p50", f"{_ms(tf.paced_p50)}" + (f" (n8n {_ms(peer.paced_p50)})" if peer else ""),
                    f"≤ {_ms(TARGET_PACED_P50)}", at_most(tf.paced_p50, TARGET_PACED_P50)),
                Row("paced 10/s p99", f"{_ms(tf.paced_p99)}" + (f" (n8n {_ms(peer.paced_p99)})" if peer else ""),
                    f"≤ {_ms(TARGET_PACED_P99)}", at_most(tf.paced_p99, TARGET_PACED_P99)),
                Row("paced 10/s right after the overload ramp, p50 / p99",
                    f"{_ms(tf.recovering_p50)} / {_ms(tf.recovering_p99)}"
                    + (f" (n8n {_ms(peer.recovering_p50)} / {_ms(peer.recovering_p99)})" if peer else "")),
                Row("80 % of capacity, p99", f"{_ms(tf.partial_p99)} at {tf.partial_rate:.0f}/s"
                    + (f" (n8n {_ms(peer.partial_p99)} at {peer.partial_rate:.0f}/s)" if peer else ""),
                    f"≤ {_ms(TARGET_PARTIAL_P99)}", at_most(tf.partial_p99, TARGET_PARTIAL_P99)),
                Row("overload (2× capacity), p99 of accepted", f"{_ms(tf.overload_p99)}; {tf.overload_refused} "
                    f"answers 429 + Retry-After" + (f" (n8n {_ms(peer.overload_p99)}, {peer.overload_refused} refused)"
                                                    if peer else ""),
                    f"≤ {BOUND:g} s bound", at_most(tf.overload_p99, BOUND)),
            ]
            if peer is not None:
                others = "; ".join(f"{f.name} {f.cpu_ramp:.1f} ms" for f in (raw, ceiling) if f is not None)
                report.rows.append(Row(
                    "CPU per event over the capacity ramp, all processes",
                    f"{tf.cpu_ramp:.1f} ms (" + ", ".join(f"{name} {ms:.1f}" for name, ms in tf.cpu_by_process.items())
                    + f"); n8n {peer.cpu_ramp:.1f} ms" + (f"; {others}" if others else "")
                    + f"; paced 10/s {tf.cpu_paced:.1f} ms vs n8n {peer.cpu_paced:.1f} ms",
                    "≤ ½ n8n's (2× its throughput on the same cores)",
                    peer.cpu_ramp / tf.cpu_ramp / 2 if tf.cpu_ramp else None))
            for other, label in ((raw, "hand-written Temporal pipeline"), (ceiling, "dev-server ceiling "
                                                                                     "(eager start + local activity)")):
                if other is not None and other.saturated:
                    report.rows.append(Row(f"Tideflow ÷ {label}", f"{tf.saturated / other.saturated:.2f}× "
                                           f"({other.saturated:.1f} msg/s)"))
        if tf.lost:
            report.notes.append(f"ingest: {tf.lost} acknowledged events of {tf.name} never reached the sink")
    one, two = found.get("tideflow-one"), found.get(f"tideflow-{databases[0]}")
    if one is not None:
        ratios = ", ".join(f"{one.saturated / other.saturated:.2f}× {label}" for other, label in
                           ((two, "two processes"), (peer, "n8n")) if other is not None and other.saturated)
        report.rows += [
            Row("one process (tideflow up --one-process: eager start), capacity",
                f"{one.saturated:.1f} msg/s" + (f" ({ratios})" if ratios else ""),
                "≥ 2× n8n", one.saturated / peer.saturated / 2 if peer and peer.saturated else None),
            Row("one process, paced 10/s p50 / p99", f"{_ms(one.paced_p50)} / {_ms(one.paced_p99)}",
                f"≤ {_ms(TARGET_PACED_P50)} / {_ms(TARGET_PACED_P99)}",
                min(at_most(one.paced_p50, TARGET_PACED_P50), at_most(one.paced_p99, TARGET_PACED_P99))),
            Row("one process, 80 % / 2× capacity p99", f"{_ms(one.partial_p99)} at {one.partial_rate:.0f}/s; "
                f"{_ms(one.overload_p99)} at {one.overload_rate:.0f}/s ({one.overload_refused} answers 429)",
                f"≤ {_ms(TARGET_PARTIAL_P99)}; ≤ {BOUND:g} s", at_most(one.overload_p99, BOUND)),
        ]
    for f in found.values():
        if f.errors:
            report.notes.append(f"ingest, {f.name}: {f.errors} requests got no answer or an error (sent again "
                                f"with the same id); the first: {f.first_error[:200]}")
    for f in found.values():  # the quick bench runs no paced 10/s of some targets: said, not "n/a"
        paced = (f"paced 10/s p50 {_ms(f.paced_p50)} p99 {_ms(f.paced_p99)}" if not math.isnan(f.paced_p50)
                 else "paced 10/s not measured")
        report.notes.append(f"ingest, {f.name}: saturated {f.saturated:.1f}/s, p50 {_ms(f.saturated_p50)}; {paced}; "
                            f"ramp {'; '.join(f.notes)}")
    _ = at_least
    return report
