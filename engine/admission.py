"""Admission maths: whether an ingestion request may come in now, as pure functions (no clock, no I/O).

The routing pipeline (:mod:`engine.pipeline`) feeds these with what it measures — its own backlog and
routing rate, Temporal's task queue backlog, and the workers' reports (the worst event → action latency they
saw lately, ``lag``, and the first actions they completed per second, ``done``) — and turns a refusal into
``429 + Retry-After`` (connectors: their platform's retry answer) before anything is stored.

Two checks, both needed:

- **Predicted wait** (:func:`predicted_wait`): the backlog in front of an event divided by the rate it drains — in
  the web process's own routing lanes, over the rate they route while they have work (:func:`drain_rate`: at low
  load, routings over wall time are the offered rate, and refused a quiet system's bursts) or, while that is
  unknown (after a quiet while, when an overload's onset fills the lanes before they have routed enough to measure
  it), over its share of the workers' remembered capacity (:func:`own_wait`). Refuse when it passes the ``target``
  (half the latency bound: the other half is for the work itself). It sees a backlog only once it is there, and
  the workers' reports only a second or more later (their latency is measured when an action runs, and they report
  the worst of the last three seconds): on its own it admits everything offered until the reports arrive, then
  refuses everything until they clear — at 2× capacity it opens and shuts every few seconds, and the events of
  each open phase wait seconds.
- **Rate limit** (:func:`limit_rate`, :func:`take`): once the workers were seen saturated (their reported
  latency reached the target), a token bucket admits events at the rate they were measured to complete
  them — their capacity, remembered for ``MEMORY_SECONDS``, raised whenever they complete more and probed
  upwards while they have room — scaled
  by set point / latency (the set point is half the target): the further their latency is past it the less
  comes in (a backlog that is there drains), and up to ``GROWTH`` × while it is under it (admission follows
  the workers when they speed up). It applies while their latency is past ``FREE`` × the target, so it
  comes back four times earlier than the predicted wait reacts, and the open phases of the predicted-wait
  check admit at this rate, not at whatever is offered (the predicted wait still refuses everything while
  the workers are past the target: a stalled worker completes nothing, so its reported latency is the
  first thing to show it). Before any saturation, and while the workers keep up, there is no limit: a
  quiet system takes any burst, and a rising load is never held at a rate measured while it was lower.
- **Modelled queue** (:func:`drained`, :func:`queue_wait`): the workers' reports are a second or more old, so
  at the onset of an overload both checks above see nothing for a second or two, and everything offered
  comes in. Once a capacity is known, each web process also counts the events it admitted as a queue in
  front of the workers, draining at its share of their capacity, and — once the workers show pressure
  (tasks waiting in Temporal's task queue, sampled four times a second, or their latency past ``FREE``) —
  takes the wait that queue predicts as the workers' latency whenever it is the longer: the limit applies as
  soon as admitted events pile up, not when the workers report it. While no task waits and their latency is
  low, the model is emptied and unused, so a capacity measured in a bad moment never holds back a load the
  workers take.

In one process (the worker in the web process, journeys started eagerly) no task waits in Temporal's queue:
the first workflow task comes back in the start's answer and waits in the worker's memory. There the web
process reads how long the oldest journey it started has waited for its first step, at once, and takes it as
the workers' latency whenever it is the longer (:func:`worker_latency`) — for the predicted wait, the
saturation, the limit and the pressure that makes the modelled queue count. With workers in other processes it
is 0, and nothing changes.

Refused callers are told when to come back (Retry-After) so that they do not come back together
(:func:`book_return`): each refusal books its events into the first second, from the one its wait says, that
has fewer than the capacity booked — a crowd refused while the door is shut returns spread over the seconds
after it opens, at the rate the workers can take, instead of all in the first.

Shared by the web processes: the workers' capacity is theirs together, so each web process admits its share
(:func:`share`) — the capacity divided by the web processes that admitted events lately (:func:`web_processes`,
from the heartbeats they write when they sample the workers' lag; docs/operations.md).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

#: refuse when the predicted wait passes this share of the bound: the rest is for the work itself (routing,
#: the workflow task, the action) and for the backlog growing between two samples
HEADROOM = 0.5
#: the workers are saturated when their reported latency reaches this share of the target (then their
#: completion rate is their capacity: there is a backlog in front of them) …
PRESSURE = 1.0
#: … and their capacity is remembered this long after the last time they were (peaks come in waves; a
#: deployment's capacity changes slowly, and each new saturation measures it again)
MEMORY_SECONDS = 600.0
#: the limit steers the workers' latency towards this share of the target: there it admits their capacity,
#: past it less (a backlog drains, the faster the further past), under it more (up to GROWTH) — half, so
#: that a worker stalling for a second or so still finds its events within the bound
SETPOINT = 0.5
#: admit at most this multiple of the capacity (room to follow workers that got faster)
GROWTH = 1.2
#: while the limit holds the workers back although they have room (latency between FREE and the set point)
#: the capacity estimate grows this share per second
PROBE = 0.2
#: while the workers' latency is under this share of the target the limit does not apply (the capacity stays
#: remembered): a load the workers keep up with is never held at a rate measured on a busier day, or during a
#: cold start's first slow seconds
FREE = 0.25
#: and at least this share of it (a latency spike past the target throttles, it does not shut the door)
FLOOR_SHARE = 0.1
#: the capacity is probed upwards only while the workers complete at least this share of it (they do all that
#: is let in, with room): a load that rose from 80 % of the capacity to twice it, while the reports still show
#: the 80 %, does not raise it
PROBE_BUSY = 0.9
#: never admit less than this many events per second while limiting (a stalled worker's rate reads 0)
MIN_RATE = 1.0
#: the bucket holds this many seconds of the admitted rate: short bursts pass, a backlog does not build
BURST_SECONDS = 0.25


def target(bound: float) -> float:
    """The wait an admitted event may see before its work starts: :data:`HEADROOM` of the bound."""
    return bound * HEADROOM


def worker_latency(reported: float, pickup_wait: float) -> float:
    """The workers' latency admission goes by: the worst they reported, or — in one process (the worker in the
    web process, journeys started eagerly) — how long the oldest journey started here has waited for its first
    step, whichever is longer. Eager start hands the first workflow task to the worker in the start's answer, so
    no task waits in Temporal's queue, where the web process would see it within a quarter second; the reports
    show a backlog only once its events' actions have run, a second or more later. The wait for a first step
    is there as it grows (0 with workers in other processes: nothing is started eagerly)."""
    return max(reported, pickup_wait)


#: the lanes' drain rate is known once at least this many events were routed within the window it is measured over
RATE_SAMPLES = 8


def busy_within(spans: Iterable[tuple[float, float]], open_since: float | None, since: float, until: float
                ) -> float:
    """Seconds between ``since`` and ``until`` during which the routing lanes had work: the overlap of the closed
    busy ``spans`` (start, end) with that interval, plus — while they have work now — the time since
    ``open_since``."""
    total = sum(max(0.0, min(end, until) - max(start, since)) for start, end in spans)
    if open_since is not None:
        total += max(0.0, until - max(open_since, since))
    return total


def drain_rate(routed: int, busy_seconds: float) -> float:
    """Events per second the routing lanes drain while they have work: ``routed`` over the ``busy_seconds`` they
    had work in (a service rate), 0 while unknown (fewer than :data:`RATE_SAMPLES`, or no busy time).

    Not ``routed`` over wall time: at low load that is the offered rate, not what the lanes can do — events at
    10/s into lanes that route 60/s read 10/s, and a batch of 20 into idle lanes was predicted to wait 2 s and
    refused, though routed in a third of one (issue 14). While the lanes are busy all the time (a backlog) the two
    are the same. Measured with one event in flight at a time (a trickle), it ignores that a burst spreads over
    several lanes that route concurrently: it errs towards the slower figure, so a burst is admitted up to about
    the target's worth of the lanes' one-at-a-time rate, not beyond."""
    if routed < RATE_SAMPLES or busy_seconds <= 0:
        return 0.0
    return routed / busy_seconds


def own_wait(backlog: int, more: int, routing_rate: float, capacity_share: float) -> float:
    """Seconds the last of ``more`` events admitted now would wait in this process's routing lanes, behind the
    ``backlog`` events already in them.

    While the routing rate is known (``routing_rate`` > 0: the lanes' drain rate while busy, :func:`drain_rate`),
    all of them over it. While it is not — fewer than a handful of routings in its window, as at the onset of an
    overload after a quiet while, when the lanes fill faster than they route — the events already in the lanes over
    ``capacity_share``, this process's share of the workers' capacity as remembered: in front of the workers the
    lanes drain no faster than they do, and before the fallback counted them as no wait at all (at a 2× onset in one
    process, 36–39 events sat in the lanes with the rate reading 0). Only the events already there count then, not
    the request's own: a request into empty lanes is never refused by this term however large it is (a remembered
    capacity can be low — a cold start, a worker killed — and the bucket and the modelled queue take a request too
    large for the target into an empty queue too).

    No capacity known either (0: before any saturation, or once it is forgotten): 0. Any figure then would be a
    guess, and a guess too low refuses a quiet system's bursts — a cold start's first requests, a replay after
    an outage — with nothing to correct it, because refused events are not routed and so the rate stays unknown.
    A cold start is covered by the other signals (Temporal's queue, the workers' latency and, in one process,
    the first steps' wait) and by the lanes' capacity; its first saturation measures the capacity this uses.

    The age of the oldest event in the lanes is not a floor on this wait: it grows only after the events that will
    wait were admitted (simulated, it refused more without lowering the worst wait), and one lane stuck on a slow
    routing would refuse every customer while the others are idle (docs/performance.md, "The lanes' routing rate is
    per second of work")."""
    if routing_rate > 0:
        return (backlog + more) / routing_rate
    if capacity_share > 0:
        return backlog / capacity_share
    return 0.0


def predicted_wait(own_backlog: int, own_rate: float, temporal_wait: float, worker_lag: float, *, more: int = 0,
                   capacity_share: float = 0.0) -> float:
    """Seconds the last of ``more`` events admitted now would wait before its first action: its wait in this
    process's routing lanes (:func:`own_wait`: the ``own_backlog`` and its own events over the routing rate, or
    while that is unknown the backlog over ``capacity_share``), plus the longer of Temporal's predicted queue wait
    and the latency the workers last reported."""
    return own_wait(own_backlog, more, own_rate, capacity_share) + max(temporal_wait, worker_lag)


def under_pressure(worker_lag: float, bound: float) -> bool:
    """Whether the workers' reported latency says they are saturated (see :data:`PRESSURE`)."""
    return worker_lag >= PRESSURE * target(bound)


def limiting(worker_lag: float, bound: float) -> bool:
    """Whether a remembered capacity limits admission at this latency (see :data:`FREE`)."""
    return worker_lag >= FREE * target(bound)


def capacity(remembered: float, done_per_second: float, worker_lag: float, bound: float, elapsed: float,
             held: bool) -> float:
    """The workers' capacity (events/s) as far as it is known, ``elapsed`` seconds after the last estimate: the
    most they were measured to complete; and while the limit holds them back (``held``: it applies), yet they
    have room — their reported latency under the set point while they complete at least :data:`PROBE_BUSY` of
    the capacity —, :data:`PROBE` per second more: a figure measured in a bad moment (a cold start, a stall, a
    busier machine) must not hold admission down for the ten minutes it is remembered."""
    known = max(remembered, done_per_second)
    if held and worker_lag < SETPOINT * target(bound) and done_per_second >= PROBE_BUSY * known:
        known *= 1 + PROBE * min(max(elapsed, 0.0), 1.0)
    return known


def limit_rate(capacity_per_second: float, worker_lag: float, bound: float) -> float:
    """Events per second to admit once the workers were saturated: their capacity × (set point / latency), the
    set point being :data:`SETPOINT` × the target, kept within [:data:`FLOOR_SHARE`, :data:`GROWTH`] and never
    below :data:`MIN_RATE`.

    At the set point the rate equals what the workers complete (a backlog holds still); past it less (it
    drains, the faster the further past); under it a little more."""
    goal = SETPOINT * target(bound)
    share = GROWTH if worker_lag <= 0 else min(GROWTH, max(FLOOR_SHARE, goal / worker_lag))
    return max(MIN_RATE, capacity_per_second * share)


def drained(queued: float, rate: float, elapsed: float) -> float:
    """The modelled queue ``elapsed`` seconds later: ``queued`` events drained at ``rate`` per second, never
    below empty (a clock going back drains nothing)."""
    return max(0.0, queued - rate * max(0.0, elapsed))


def queue_wait(queued: float, rate: float) -> float:
    """Seconds the last of ``queued`` events waits at ``rate`` per second (0 while no rate is known: nothing is
    modelled then)."""
    return queued / rate if rate > 0 else 0.0


def modelled_wait(queued: float, more: int, rate: float, bound: float) -> float:
    """The wait the last of ``more`` events admitted now would see behind ``queued`` in the modelled queue
    draining at ``rate``. A request too large to pass within the target at all is admitted into an empty
    queue (less than one event in it): its wait counts as the target then, not past it — else a batch larger
    than the target's worth of events could never come in (the bucket does the same, :func:`take`)."""
    wait = queue_wait(queued + more, rate)
    return min(wait, target(bound)) if queued < 1 else wait


def web_processes(heartbeats: Iterable[tuple[str, float]], me: str, fresh: float) -> int:
    """How many web processes share the workers' capacity: this one (``me``, always, whether or not its own
    heartbeat is among them yet) and every other whose heartbeat — (process, its age in seconds) — is at most
    ``fresh`` seconds old (one that stopped admitting, or died, drops out after that)."""
    return 1 + len({process for process, age in heartbeats if process != me and age <= fresh})


def share(rate: float, processes: int) -> float:
    """This web process's share of an admission ``rate`` that ``processes`` web processes admit together: an
    even split (a load balancer spreads requests evenly), never below :data:`MIN_RATE`."""
    return max(MIN_RATE, rate / max(1, processes))


def burst(rate: float) -> float:
    """How many events the bucket holds at ``rate``: :data:`BURST_SECONDS` of it, at least one."""
    return max(1.0, rate * BURST_SECONDS)


@dataclass(frozen=True)
class Bucket:
    """A token bucket: ``tokens`` available at time ``at`` (seconds on any monotonic clock). Tokens may go
    negative: a request larger than the bucket is admitted when the bucket is full, and the debt is paid
    before the next one."""

    tokens: float
    at: float


def refill(bucket: Bucket, rate: float, now: float) -> Bucket:
    """The bucket at ``now``: topped up at ``rate`` per second since ``bucket.at``, up to :func:`burst`."""
    elapsed = max(0.0, now - bucket.at)
    return Bucket(min(burst(rate), bucket.tokens + elapsed * rate), now)


def take(bucket: Bucket, rate: float, count: int, now: float) -> tuple[Bucket, float]:
    """Try to admit ``count`` events at ``now``: (the bucket after, 0.0) when admitted; otherwise (the bucket,
    seconds until they would be). A request larger than the bucket needs a full bucket, not ``count`` tokens
    (else a big batch could never come in)."""
    current = refill(bucket, rate, now)
    need = min(float(count), burst(rate))
    if current.tokens >= need:
        return Bucket(current.tokens - count, now), 0.0
    return current, (need - current.tokens) / rate


#: a refused caller is never told to wait more than this many seconds past what its own wait says
SPREAD_SECONDS = 30


def book_return(booked: Mapping[int, int], second: int, per_second: float, count: int) -> int:
    """The second (on the caller's clock, whole seconds) to tell ``count`` refused events to come back in: the
    first from ``second`` on whose booked events, with these, stay within ``per_second`` (an empty second always
    takes them: a request larger than a second's share is not pushed back for good), at most
    :data:`SPREAD_SECONDS` later. ``per_second`` 0 (no capacity known): ``second`` itself."""
    if per_second <= 0:
        return second
    for candidate in range(second, second + SPREAD_SECONDS):
        already = booked.get(candidate, 0)
        if already == 0 or already + count <= per_second:
            return candidate
    return second + SPREAD_SECONDS


def retry_after(wait: float) -> int:
    """Whole seconds for a Retry-After header: the wait rounded up, at least 1."""
    return max(1, math.ceil(wait))


def retry_after_for_wait(estimate: float, bound: float) -> int:
    """Retry-After when the predicted wait is past the target: until the excess has drained, plus half a
    second of margin."""
    return max(1, math.ceil(estimate - target(bound) + 0.5))
