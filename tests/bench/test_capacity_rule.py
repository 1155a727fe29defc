"""The ingest bench's capacity rule (a ramp step keeps up when it is delivered in time and builds no backlog;
capacity is what the best such step delivered), the ramp's course, and the order measure() and the quick bench
run a target's phases in. Targets are simulated: a queue serving ``capacity`` events/s."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bench import ingest
from bench.ingest import Measurement, Sizes, Step, Target, capacity_of, measure, measure_quick, next_rate, step_of
from bench.sink import Sent

LIMIT = Sizes().growth_limit


def queued(rate: float, capacity: float, seconds: float, slack: float, transit: float = 0.05) -> Step:
    """A step offered to a target serving one event at a time at ``capacity``/s: latency stays flat below its
    capacity and grows by rate / capacity - 1 s per s above it; a message later than the slack is missing."""
    done, latencies = 0.0, []
    for n in range(round(rate * seconds)):
        due = n / rate
        done = max(due, done) + 1 / capacity
        arrived = done + transit
        latencies.append(arrived - due if arrived <= seconds + slack else None)
    return Step(rate, seconds, tuple(latencies))


@pytest.mark.parametrize(("seconds", "slack"), [(1.5, 0.5), (6, 1.0)])
def test_a_step_keeps_up_below_capacity_and_not_above_whatever_its_length(seconds: float, slack: float) -> None:
    assert queued(28, 30, seconds, slack).kept_up(LIMIT)
    assert queued(28, 30, seconds, slack).growth == pytest.approx(0, abs=0.01)
    over = queued(39, 30, seconds, slack)  # 30 % over: the backlog grows 0.3 s per s
    assert over.growth == pytest.approx(0.3, abs=0.05)
    assert not over.kept_up(LIMIT)


def test_a_short_step_above_capacity_is_delivered_within_its_slack_but_does_not_keep_up() -> None:
    """The quick ramp's old reading: every message of 1.5 s at 1.3× capacity arrives within 0.5 s, so the step
    counted as delivered at the offered rate."""
    step = queued(39, 30, 1.5, 0.5)
    assert step.delivered == pytest.approx(39, abs=0.7)
    assert step.delivered >= ingest.IN_TIME * step.rate
    assert not step.kept_up(LIMIT)


def test_messages_missing_from_the_later_half_mean_a_backlog() -> None:
    arrived = (0.05,) * 20
    assert Step(20, 2, arrived + (0.05,) * 14 + (None,) * 6).growth == math.inf
    assert not Step(20, 2, arrived + (0.05,) * 14 + (None,) * 6).kept_up(LIMIT)
    # a few missing (a quarter of the later half or less) leave the percentile to the rest, but count against
    # the share delivered in time
    few = Step(20, 2, arrived + (0.05,) * 16 + (None,) * 4)
    assert few.growth == pytest.approx(0)
    assert few.delivered == 18
    assert few.kept_up(LIMIT)
    assert not Step(20, 2, arrived + (0.05,) * 10 + (None,) * 10).kept_up(LIMIT)


def test_capacity_is_the_best_step_that_kept_up_not_the_best_burst() -> None:
    steps = [queued(rate, 30, 1.5, 0.5) for rate in (22, 28.6, 37.1)]
    assert [step.kept_up(LIMIT) for step in steps] == [True, True, False]
    assert steps[2].delivered > steps[1].delivered  # the raw best throughput: 37/s of a 30/s target
    best, kept = capacity_of(steps, LIMIT)
    assert kept
    assert best is steps[1]
    assert best.delivered == pytest.approx(28.6, abs=0.7)


def test_a_ramp_that_never_kept_up_reads_its_gentlest_step_and_says_so() -> None:
    steps = [queued(37, 20, 1.5, 0.5), queued(37, 20, 1.5, 0.5), queued(28.5, 20, 1.5, 0.5)]
    best, kept = capacity_of(steps, LIMIT)
    assert not kept
    assert best is steps[2]
    assert capacity_of([], LIMIT) == (None, False)


def test_the_quick_and_the_full_ramp_read_the_same_capacity_of_the_same_target() -> None:
    quick, full = Sizes.quick(), Sizes()
    for capacity in (25, 33, 45, 70):
        readings = []
        for sizes, start in ((full, full.ramp_start), (quick, quick.ramp_start), (quick, quick.others_ramp_start)):
            steps: list[Step] = []
            rate: float | None = start
            while rate is not None:
                steps.append(queued(rate, capacity, sizes.step_seconds, sizes.step_slack))
                rate = next_rate(steps, sizes)
            best, kept = capacity_of(steps, sizes.growth_limit)
            assert best is not None and kept
            readings.append(round(best.rate, 2))
        assert readings[0] == readings[1] == readings[2], (capacity, readings)
        assert capacity / full.ramp_factor < readings[0] <= capacity * (1 + full.growth_limit)


def test_the_quick_ramp_offers_rates_of_the_full_ramps_grid() -> None:
    quick, full = Sizes.quick(), Sizes()
    grid = [full.ramp_start * full.ramp_factor**i for i in range(15)]
    assert quick.ramp_factor == full.ramp_factor and quick.growth_limit == full.growth_limit
    assert quick.others_ramp_start is not None
    assert any(math.isclose(quick.ramp_start, rate) for rate in grid)
    assert any(math.isclose(quick.others_ramp_start, rate) for rate in grid)


def test_the_ramp_climbs_while_steps_keep_up_and_ends_at_the_first_that_does_not() -> None:
    sizes = Sizes()
    steps = [queued(10, 30, 6, 1), queued(13, 30, 6, 1)]
    assert next_rate(steps, sizes) == pytest.approx(16.9)
    steps.append(queued(39, 30, 6, 1))
    assert next_rate(steps, sizes) is None
    assert next_rate([queued(390, 1000, 6, 1)], sizes) is None  # past ramp_max


def test_a_first_step_that_falls_behind_is_repeated_then_the_ramp_steps_down() -> None:
    sizes = Sizes.quick()
    start = sizes.ramp_start
    steps = [queued(start, 10, 1.5, 0.5)]
    assert next_rate(steps, sizes) == start  # once more: the target may have been warming up
    steps.append(queued(start, 10, 1.5, 0.5))
    assert next_rate(steps, sizes) == pytest.approx(start / 1.3)
    steps.append(queued(start / 1.3, 10, 1.5, 0.5))
    assert next_rate(steps, sizes) == pytest.approx(start / 1.3**2)
    steps.append(queued(start / 1.3**2, 10, 1.5, 0.5))
    assert next_rate(steps, sizes) is None  # ramp_down steps down at most
    # a step down that keeps up ends the ramp: the step above it did not
    down = [queued(start, 20, 1.5, 0.5), queued(start, 20, 1.5, 0.5), queued(start / 1.3, 20, 1.5, 0.5)]
    assert down[2].kept_up(sizes.growth_limit)
    assert next_rate(down, sizes) is None
    # a repeat that keeps up climbs on
    warmed = [queued(start, 10, 1.5, 0.5), queued(start, 30, 1.5, 0.5)]
    assert next_rate(warmed, sizes) == pytest.approx(start * 1.3)


def test_a_step_is_read_from_when_its_events_were_due_and_when_their_messages_arrived() -> None:
    sent = Sent("r1", sent_at={0: 100.0, 1: 100.5, 3: 101.6})  # 2 was given up on; 3 was sent again at 101.6
    arrivals = {("r1", 0): 100.04, ("r1", 1): 100.56, ("r1", 2): 101.1, ("r1", 3): 101.65}
    step = step_of(2, 2, 0.5, 100.0, sent, lambda run, n: arrivals.get((run, n)))
    assert step.latencies == pytest.approx((0.04, 0.06, None, 0.15))  # event 3 was due at 101.5
    assert step.delivered == 1.5
    assert step.p50 == pytest.approx(0.05)  # from each event's last attempt
    late = step_of(2, 2, 0.5, 99.0, sent, lambda run, n: arrivals.get((run, n)))  # deadline 101.5
    assert late.latencies[3] is None


# -- the order of the phases --------------------------------------------------------------------------------------
def recording(monkeypatch: pytest.MonkeyPatch, calls: list[tuple[Any, ...]], failing: str = "") -> None:
    async def warm_up(self: Measurement) -> None:
        calls.append((self.target.name, "warm_up"))

    async def capacity(self: Measurement, follow_up: bool = True, start: float | None = None) -> None:
        calls.append((self.target.name, "capacity", follow_up, start))
        if self.target.name == failing:
            raise RuntimeError("the target fell over")

    async def steady(self: Measurement) -> None:
        calls.append((self.target.name, "steady"))

    for name, method in (("warm_up", warm_up), ("capacity", capacity), ("steady", steady)):
        monkeypatch.setattr(Measurement, name, method)


def fake(name: str) -> Callable[[], Any]:
    import contextlib

    @contextlib.asynccontextmanager
    async def started() -> Any:
        yield Target(name, "http://127.0.0.1:9", post=None)  # type: ignore[arg-type]

    return started


async def test_measure_warms_up_then_ramps_then_measures_the_steady_half(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Any, ...]] = []
    recording(monkeypatch, calls)
    figures = await measure(Target("t", "http://127.0.0.1:9", post=None), None, Sizes(), print)  # type: ignore[arg-type]
    assert calls == [("t", "warm_up"), ("t", "capacity", True, None), ("t", "steady")]
    assert figures.name == "t"


async def test_the_quick_bench_rests_each_target_during_the_next_ones_ramp(monkeypatch: pytest.MonkeyPatch,
                                                                           tmp_path: Path) -> None:
    calls: list[tuple[Any, ...]] = []
    recording(monkeypatch, calls, failing="raw")
    sizes = Sizes.quick()
    sizes.calm_seconds = 0  # no processes to wait for
    notes: list[str] = []
    plan = [(key, fake(key)) for key in ("n8n", "tideflow-sqlite", "raw", "tideflow-one", "raw-eager")]
    steady = {"tideflow-sqlite", "n8n", "tideflow-one"}
    found = await measure_quick(plan, None, sizes, lambda text: None, notes,  # type: ignore[arg-type]
                                recovering={"tideflow-sqlite", "n8n"}, steady=steady)
    others = sizes.others_ramp_start
    assert calls == [
        # the targets measured right after their ramp first; Tideflow's ramp from ramp_start, the others' higher
        ("n8n", "warm_up"), ("n8n", "capacity", True, others),
        ("tideflow-sqlite", "warm_up"), ("tideflow-sqlite", "capacity", True, None),
        ("n8n", "steady"),
        ("raw", "warm_up"), ("raw", "capacity", False, others),  # it fails: no steady half, the others go on
        ("tideflow-sqlite", "steady"),
        ("tideflow-one", "warm_up"), ("tideflow-one", "capacity", False, None),
        ("raw-eager", "warm_up"), ("raw-eager", "capacity", False, others),
        ("tideflow-one", "steady"),
    ]
    assert set(found) == {"n8n", "tideflow-sqlite", "tideflow-one", "raw-eager"}
    assert notes == ["ingest: raw could not run: RuntimeError: the target fell over"]
