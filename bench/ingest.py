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

Measured per target: saturated throughput (events offered open-loop in rising steps; the best rate of
messages arriving at the sink within a second of their step, until a step is no longer delivered in time),
paced 10 events/s (p50 / p99 event → message), 80 % of its own saturated rate (p99), and
overload at 2× (p99 of what was accepted, and how many requests were told to come back later).
"""

from __future__ import annotations

import asyncio
import contextlib
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
    #: the capacity ramp: offered rates from ramp_start, × ramp_factor per step of step_seconds, until a step's
    #: events are not delivered within step_slack seconds after it
    ramp_start: float = 10
    ramp_factor: float = 1.3
    ramp_max: float = 400
    step_seconds: float = 6
    step_slack: float = 1.0
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
    #: quick run so far they delivered 40/s, and a step far below a target's capacity tells nothing
    others_ramp_start: float | None = None

    @classmethod
    def quick(cls) -> Sizes:
        """``make bench-quick`` (under 2 minutes for five targets): the ramp starts at 27/s (Tideflow measured
        22–61/s in the quick runs so far; 40.5/s for the others) on the grid the earlier quick ramp climbed (12/s
        × 1.5), in steps of 1.5 s with 0.5 s slack (the same 3 : 1 ratio, so a step is "in time" by the same
        rule); 20 paced events (p99 is their slowest); 1.5 s at 80 %, 3 s at 2× (long enough for Tideflow's
        admission to see the backlog and refuse: in 1.5 s it admitted every event), refused events sent again
        for 2 s; a 10 s rest (the quick bench measures another target's capacity meanwhile); idle after 0.5 s,
        looked at every 0.25 s."""
        return cls(ramp_start=27, ramp_factor=1.5, step_seconds=1.5, step_slack=0.5, paced_events=20,
                   partial_seconds=1.5, overload_seconds=3, warm_up=15, rest_seconds=10, give_up_seconds=2,
                   drain_seconds=15, calm_seconds=0.5, calm_interval=0.25, calm_limit=10, others_ramp_start=40.5)


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
        """Offered open-loop in rising steps until a step is no longer delivered in time; the best rate delivered
        (messages arriving at the sink per second of the step) is the saturated throughput; the first step offers
        ``start`` (default: the sizes' ``ramp_start``). With ``follow_up``,
        then paced 10/s right after the ramp's overload, once the target's processes are idle again (the
        recovery)."""
        target, sink, sizes, figures, log = self.target, self.sink, self.sizes, self.figures, self.log
        loads: list[Load] = []
        steps: list[Sent] = []
        rate, best = start or sizes.ramp_start, 0.0
        pending: list[asyncio.Task[Any]] = []
        cpu_before = cpu_seconds(target.pids)
        while rate <= sizes.ramp_max:
            run = next(self._runs)
            load = self.loader(run)
            began = time.perf_counter()
            sent, tasks = await load.fire(run, rate, max(1, round(rate * sizes.step_seconds)),
                                          give_up_after=sizes.step_seconds)
            pending += tasks
            steps.append(sent)
            await asyncio.sleep(max(0.0, began + sizes.step_seconds + sizes.step_slack - time.perf_counter()))
            in_time = sum(1 for n in sent.sent_at if (t := sink.seen(run, n)) is not None
                          and t <= began + sizes.step_seconds + sizes.step_slack)
            delivered = in_time / sizes.step_seconds
            lat = latencies(sink, sent)
            log(f"  {target.name}: offered {rate:.0f}/s → {delivered:.1f}/s in time, p50 "
                f"{percentile(lat, 50) * 1000:.0f} ms, {sent.refused} told to retry")
            if delivered > best:
                best, figures.saturated_p50 = delivered, percentile(lat, 50)
            figures.notes.append(f"{rate:.0f}/s → {delivered:.1f}/s")
            loads.append(load)
            if delivered < 0.85 * rate:
                break
            rate *= sizes.ramp_factor
        figures.saturated = best
        await asyncio.gather(*pending)
        for extra in loads:
            await extra.close()
        for step in steps:  # every acknowledged event still arrives (the backlog drains before the next phase)
            await self.settle(step, 120)
        figures.cpu_ramp, figures.cpu_by_process = self.cpu_per_event(cpu_before, sum(step.acked for step in steps))
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
        log(f"  {target.name}: paced 10/s p50 {figures.paced_p50 * 1000:.1f} ms, p99 {figures.paced_p99 * 1000:.1f} "
            f"ms (right after the ramp {figures.recovering_p50 * 1000:.1f} / {figures.recovering_p99 * 1000:.1f} ms);"
            f" CPU per event {figures.cpu_ramp:.1f} ms over the ramp ("
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


async def run(_stack: Any) -> Any:
    """The ingest benchmark for ``python -m bench ingest`` (``BENCH_QUICK=1``: the reduced sizes)."""
    import tempfile

    from bench.common import Report, Row, at_least, at_most
    from bench.n8n import n8n

    sizes = Sizes.quick() if quick() else Sizes()
    databases = [d for d in os.environ.get("BENCH_INGEST_DATABASES", "sqlite" if quick() else "sqlite,postgres")
                 .split(",") if d]
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
            plan: list[tuple[str, Callable[[], Any]]] = [
                (f"tideflow-{d}", lambda d=d: tideflow(root / f"tf-{d}", sink, d)) for d in databases]
            if "sqlite" in databases:  # `tideflow up --one-process`: the worker in the web process, eager start
                plan.append(("tideflow-one", lambda: tideflow(root / "tf-one", sink, "sqlite", one_process=True)))
            plan += [("n8n", lambda: n8n(root / "n8n", sink)),
                     ("raw", lambda: raw_temporal(root / "raw", sink, False)),
                     ("raw-eager", lambda: raw_temporal(root / "raw-eager", sink, True))]
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
            report.failed = True
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
            one = found.get("tideflow-one")
            if one is not None:
                report.rows += [
                    Row("one process (tideflow up --one-process: eager start), capacity",
                        f"{one.saturated:.1f} msg/s ({one.saturated / tf.saturated:.2f}× two processes"
                        + (f", {one.saturated / peer.saturated:.2f}× n8n)" if peer and peer.saturated else ")"),
                        "≥ 2× n8n", one.saturated / peer.saturated / 2 if peer and peer.saturated else None),
                    Row("one process, paced 10/s p50 / p99", f"{_ms(one.paced_p50)} / {_ms(one.paced_p99)}",
                        f"≤ {_ms(TARGET_PACED_P50)} / {_ms(TARGET_PACED_P99)}",
                        min(at_most(one.paced_p50, TARGET_PACED_P50), at_most(one.paced_p99, TARGET_PACED_P99))),
                    Row("one process, 80 % / 2× capacity p99", f"{_ms(one.partial_p99)} at {one.partial_rate:.0f}/s; "
                        f"{_ms(one.overload_p99)} at {one.overload_rate:.0f}/s ({one.overload_refused} answers 429)",
                        f"≤ {_ms(TARGET_PARTIAL_P99)}; ≤ {BOUND:g} s", at_most(one.overload_p99, BOUND)),
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
    for f in found.values():
        if f.errors:
            report.notes.append(f"ingest, {f.name}: {f.errors} requests got no answer or an error (sent again "
                                f"with the same id); the first: {f.first_error[:200]}")
    for f in found.values():
        report.notes.append(f"ingest, {f.name}: saturated {f.saturated:.1f}/s, p50 {_ms(f.saturated_p50)}; paced 10/s "
                            f"p50 {_ms(f.paced_p50)} p99 {_ms(f.paced_p99)}; {'; '.join(f.notes)}")
    _ = at_least
    return report
