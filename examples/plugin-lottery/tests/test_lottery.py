"""Unit tests of the lottery's maths and its config model (no database, no Temporal).

Run from this directory after ``pip install -e .[test]``: ``pytest``. Tideflow's own test suite
(tests/plugins/ in the Tideflow repository) runs the node in real journeys.
"""

from __future__ import annotations

from collections import Counter

import pytest
from pydantic import ValidationError

from tideflow_lottery import Lottery, LotteryConfig, pick, ticket


def test_pick_walks_the_weights() -> None:
    prizes = [("一等奖", 1), ("二等奖", 3)]
    assert [pick(n, prizes, 6) for n in range(10)] == ["一等奖", "二等奖", "二等奖", "二等奖"] + [None] * 6


def test_ticket_is_stable_and_roughly_uniform() -> None:
    assert ticket("journey/f/c1/draw/1", 100) == ticket("journey/f/c1/draw/1", 100)
    counts = Counter(ticket(f"journey/f/c{i}/draw/1", 4) for i in range(4000))
    assert set(counts) == {0, 1, 2, 3} and min(counts.values()) > 850


def test_config_rejects_typos_and_zero_weights() -> None:
    with pytest.raises(ValidationError, match="weigth"):
        LotteryConfig.model_validate({"prizes": [{"name": "a", "weigth": 1, "budget": 1}]})
    with pytest.raises(ValidationError, match="all weights are 0"):
        LotteryConfig.model_validate({"prizes": [{"name": "a", "weight": 0, "budget": 1}]})
    with pytest.raises(ValidationError, match="unique"):
        LotteryConfig.model_validate({"prizes": [{"name": "a", "weight": 1, "budget": 1}] * 2})


def test_node_type_shape() -> None:
    assert Lottery.type == "plugin.lottery"
    assert Lottery.ports == ("won", "lost")
    assert Lottery.label == {"zh-CN": "抽奖", "en": "Lottery draw"}
    assert Lottery.Config is LotteryConfig
