"""The web app's evaluation pool (engine/isolation.py): work past its deadline is killed — its process
is gone, not abandoned — a memory spike ends in the worker, errors come back as they were raised,
and the pool keeps answering afterwards."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine import expressions
from engine.isolation import EvaluationBusy, EvaluationTimeout, IsolatedPool, IsolationError
from tests.security.isolation_work import hog_memory, pid, spin
from tests.waiting import wait_until


@pytest.fixture(scope="module")
def pool() -> Iterator[IsolatedPool]:
    p = IsolatedPool(workers=1, timeout=1.0, memory_mb=512, queue_wait=30, warm=None)
    yield p
    p.close()


def _alive(process_id: int) -> bool:
    stat = Path(f"/proc/{process_id}/stat")
    if not stat.exists():
        return False
    return stat.read_text().split(") ", 1)[1][:1] not in ("Z", "X")  # a zombie does no work


def test_an_evaluation_runs_in_another_process(pool: IsolatedPool) -> None:
    assert pool.call(expressions.render, "你好 {{ customer.name }}", {"customer": {"name": "李雷"}}) == "你好 李雷"
    assert pool.call(pid) != os.getpid()


def test_errors_come_back_as_raised(pool: IsolatedPool) -> None:
    with pytest.raises(expressions.ExpressionTooCostly, match="operations"):
        pool.call(expressions.render, "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}"
                                      "{% endfor %}", {})


def test_work_past_its_deadline_is_killed_not_abandoned(pool: IsolatedPool) -> None:
    worker = pool.call(pid)
    killed = pool.killed
    with pytest.raises(EvaluationTimeout, match="was stopped"):
        pool.call(spin)
    assert pool.killed == killed + 1
    assert not _alive(worker)  # its CPU use ended with it
    assert pool.call(pid) not in (worker, os.getpid())  # a fresh worker answers


def test_a_killed_evaluation_is_refused_in_the_readers_language(pool: IsolatedPool) -> None:
    """The API's answer when the pool stopped an evaluation (designer.evaluation): the pool's words are a Msg of
    ours, so the whole answer reads in Chinese — the English as before."""
    from designer.evaluation import _refused
    from designer.i18n import translate
    from engine.text import Msg

    with pytest.raises(EvaluationTimeout) as raised:
        pool.call(spin)
    refused = _refused(raised.value, Msg("rendering the template"))
    assert translate(refused.body["message"], "en") == ("rendering the template took longer than 1 s and was stopped; "
                                                        "simplify it")
    assert translate(refused.body["message"], "zh-CN") == "渲染模板耗时超过 1 秒，已被停止；请简化"


def test_a_memory_spike_ends_in_the_worker(pool: IsolatedPool) -> None:
    with pytest.raises(IsolationError, match="memory"):
        pool.call(hog_memory)
    assert pool.call(expressions.evaluate, "1 + 1", {}) == 2


async def test_the_event_loop_is_free_while_it_waits(pool: IsolatedPool) -> None:
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    with pytest.raises(EvaluationTimeout):
        await pool.run(spin)
    ticker.cancel()
    assert ticks > 10  # the loop kept turning during the (killed) second-long evaluation


def test_a_full_pool_answers_busy_instead_of_queueing_for_ever() -> None:
    small = IsolatedPool(workers=1, timeout=1.0, memory_mb=0, queue_wait=0.2, warm=None)
    try:
        import threading

        def occupy() -> None:
            with pytest.raises(EvaluationTimeout):
                small.call(spin)

        started = threading.Thread(target=occupy)
        started.start()
        wait_until(small.pids, 20, "the pool's worker process to start for the spinning evaluation", every=0.01)
        with pytest.raises(EvaluationBusy, match="busy"):
            small.call(pid)
        started.join()
    finally:
        small.close()
