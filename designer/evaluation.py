"""What the web app evaluates on a user's behalf — the template preview, the sample-data costs of a
flow's expressions during validation, the WeCom sidebar's scripts and suggestion rules (their costs when
saved, their rendering for a customer) — runs in the evaluation pool (engine/isolation.py), never in
the web process: a worker process past its deadline is killed, and the web process only waits.

Validation itself still runs here (it is cheap), but every expression cost it needs was measured by
the pool first (:func:`prime`) and is remembered, so validation evaluates nothing in this process.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from designer.errors import ApiError
from engine import expressions
from engine import validate as validation
from engine.isolation import EvaluationBusy, EvaluationTimeout, IsolationError, default_pool
from engine.text import Msg, message_of


def _refused(exc: IsolationError, what: Msg) -> ApiError:
    if isinstance(exc, EvaluationBusy):
        return ApiError(503, Msg("%(what)s: %(exc)s", what=what, exc=message_of(exc)), Msg("retry in a moment"),
                        None, retry_after=2)
    if isinstance(exc, EvaluationTimeout):
        return ApiError(422, Msg("%(what)s %(exc)s", what=what, exc=message_of(exc)),
                        Msg("make the expressions and templates do less (fewer or smaller loops, no long texts built "
                            "or searched in loops)"), None)
    return ApiError(422, Msg("%(what)s failed: %(exc)s", what=what, exc=message_of(exc)),
                    Msg("make the expressions and templates do less"), None)


def prime(document: Any) -> None:
    """Have the pool measure the sample-data costs of ``document``'s expressions (blocking: call it from
    a worker thread — sync routes run in one), and remember them for this process's validation."""
    if not isinstance(document, dict):
        return
    try:
        costs = default_pool().call(validation.sample_costs, document)
    except IsolationError as exc:
        raise _refused(exc, Msg("checking the flow's expressions on sample data")) from None
    expressions.remember_sample_costs(costs)


async def render(source: str, context: dict[str, Any]) -> str:
    """Render a template in the pool; :class:`~engine.expressions.ExpressionError` as ``render`` raises
    it, an :class:`ApiError` when the pool killed the evaluation or is busy."""
    try:
        result: str = await default_pool().run(expressions.render, source, context)
    except IsolationError as exc:
        raise _refused(exc, Msg("rendering the template")) from None
    return result


def prime_sources(sources: Iterable[tuple[str, str]]) -> None:
    """Have the pool measure the sample-data costs of ``(source, kind)`` pairs that are not in a flow (a sidebar
    script's templates, a suggestion rule's condition) and remember them, so the domain's own check at save
    (:func:`engine.validate.expression_problem`) evaluates nothing here (blocking: call it from a worker thread)."""
    wanted = [(source, kind) for source, kind in sources if source]
    if not wanted:
        return
    try:
        costs = default_pool().call(expressions.measure_sample_costs, wanted)
    except IsolationError as exc:
        raise _refused(exc, Msg("checking the templates and conditions on sample data")) from None
    expressions.remember_sample_costs(costs)


def isolated(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` in the pool (blocking: call it from a worker thread); the ``run`` the sidebar's
    domain functions take (activities/sidebar/context.py). Errors come back as raised; an
    :class:`~engine.isolation.IsolationError` when the pool stopped it or is busy."""
    return default_pool().call(fn, *args, **kwargs)
