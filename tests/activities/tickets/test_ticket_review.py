"""The review chain state machine: approve, reject, send back, timeouts, who may decide."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from activities.tickets import review


def test_approvals_walk_the_chain_to_approved() -> None:
    move = review.start(3)
    assert move.statuses == ("waiting", "queued", "queued")
    move = review.decide(move.statuses, 0, "approve")
    move = review.decide(move.statuses, 1, "approve")
    assert move.waiting == 2 and move.outcome is None
    move = review.decide(move.statuses, 2, "approve")
    assert move.outcome == "approved" and move.waiting is None


def test_reject_needs_a_reason_and_ends_the_chain() -> None:
    move = review.start(2)
    with pytest.raises(review.ReviewError, match="reason"):
        review.decide(move.statuses, 0, "reject")
    done = review.decide(move.statuses, 0, "reject", "金额不符")
    assert done.outcome == "rejected"
    with pytest.raises(review.ReviewError, match="already decided"):
        review.decide(done.statuses, 1, "approve")


def test_send_back_returns_to_the_previous_step_or_to_the_agent() -> None:
    move = review.decide(review.start(3).statuses, 0, "approve")
    back = review.decide(move.statuses, 1, "send_back", "缺凭证")
    assert back.statuses == ("waiting", "sent_back", "queued") and back.waiting == 0
    with pytest.raises(review.ReviewError, match="step 1 is"):
        review.decide(back.statuses, 1, "approve")
    to_agent = review.decide(back.statuses, 0, "send_back", "请补充")
    assert to_agent.outcome == "sent_back"


def test_timeouts_act_by_the_step() -> None:
    start = review.start(2).statuses
    assert review.time_out(start, 0, "reject").outcome == "rejected"
    skipped = review.time_out(start, 0, "skip")
    assert skipped.statuses == ("skipped", "waiting")
    assert review.time_out(skipped.statuses, 1, "approve").outcome == "approved"


def test_who_may_decide() -> None:
    assert review.may_decide(5, "agent", "ann", "supervisor", 5, None)
    assert not review.may_decide(6, "agent", "bob", "supervisor", 5, None)
    assert review.may_decide(6, "finance", "fay", "role:finance", None, None)
    assert review.may_decide(7, "ops", "li", "user:li", None, None)
    assert not review.may_decide(5, "agent", "ann", "supervisor", 5, 9)  # delegated away
    assert review.may_decide(9, "agent", "x", "supervisor", 5, 9)
    assert review.may_decide(1, "admin", "root", "role:finance", None, None)
    with pytest.raises(ValidationError):
        review.ReviewStep(name="x", approver="boss")
