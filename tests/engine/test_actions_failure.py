"""How an action's exception crosses Temporal (``engine.actions.failure_of``): the English as the message, as
before; a Msg of ours in the stored form as the only detail; words that are not ours with no detail."""

from __future__ import annotations

from engine.actions import ActionFailed, failure_of
from engine.expressions import ExpressionError
from wording import Msg
from wording.stored import read_stored


def test_a_refusal_with_a_msg_carries_it_and_is_not_retried() -> None:
    reason = Msg("node '%(node)s': the points table has no action '%(action)s'", node="n1", action="gift")
    failure = failure_of(ActionFailed(reason))
    assert (failure.message, failure.type, failure.non_retryable) == (str(reason), "ActionFailed", True)
    assert len(failure.details) == 1 and read_stored(failure.details[0]).template == reason.template


def test_any_other_msg_error_keeps_its_class_in_the_english_and_is_retried() -> None:
    error = ExpressionError(Msg("cannot evaluate '%(source)s'", source="1 // 0"))
    failure = failure_of(error)
    assert failure.message == "ExpressionError: cannot evaluate '1 // 0'"
    assert (failure.type, failure.non_retryable) == ("ExpressionError", False)
    kept = read_stored(failure.details[0])
    assert str(kept) == failure.message and kept.values["detail"].template == "cannot evaluate '%(source)s'"


def test_words_that_are_not_ours_cross_as_before_with_no_detail() -> None:
    for exc, english in [(ActionFailed("refused by the shop"), "refused by the shop"),
                         (RuntimeError("connection reset"), "RuntimeError: connection reset"),
                         (TimeoutError(), "TimeoutError: ")]:
        failure = failure_of(exc)
        assert (failure.message, failure.details) == (english, ()), exc
