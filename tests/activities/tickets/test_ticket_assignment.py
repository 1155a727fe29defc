"""Pure assignment strategies: availability, working hours, capacity, round-robin turns, least
loaded, skills in order of preference."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from activities.tickets.assignment import AgentSnapshot, pick_agent
from activities.tickets.calendar import BusinessCalendar

NOW = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)  # Tuesday 11:00 in Shanghai


def agent(uid: int, load: int = 0, capacity: int = 5, availability: str = "online", skills: tuple[str, ...] = (),
          hours: BusinessCalendar | None = None) -> AgentSnapshot:
    return AgentSnapshot(uid, availability, capacity, load, skills, hours)


def test_round_robin_takes_turns_after_the_last_one_and_wraps() -> None:
    team = [agent(3), agent(1), agent(2)]
    assert pick_agent("round_robin", team, [], NOW, rr_last=0).user_id == 1
    assert pick_agent("round_robin", team, [], NOW, rr_last=1).user_id == 2
    assert pick_agent("round_robin", team, [], NOW, rr_last=3).user_id == 1
    turns, last = [], 0
    for _ in range(9):
        last = pick_agent("round_robin", team, [], NOW, rr_last=last).user_id or 0
        turns.append(last)
    assert sorted(turns.count(u) for u in (1, 2, 3)) == [3, 3, 3]


def test_unavailable_full_and_off_hours_agents_are_skipped() -> None:
    night = BusinessCalendar.model_validate({"working_hours": [{"start": "20:00", "end": "23:00"}]})
    team = [agent(1, availability="away"), agent(2, load=5), agent(3, hours=night), agent(4, availability="offline")]
    pick = pick_agent("least_loaded", team, [], NOW)
    assert pick.user_id is None
    assert pick.skipped == {1: "away", 2: "at capacity", 3: "outside working hours", 4: "offline"}
    assert pick_agent("round_robin", [], [], NOW).reason == "the group has no agents"


def test_least_loaded_picks_fewest_open_then_lowest_id() -> None:
    team = [agent(1, load=3), agent(2, load=1), agent(3, load=1)]
    assert pick_agent("least_loaded", team, [], NOW).user_id == 2
    assert pick_agent("least_loaded", team, [], NOW, exclude=[2]).user_id == 3


def test_skill_based_prefers_the_first_need_then_load() -> None:
    team = [agent(1, load=0, skills=("冰箱",)), agent(2, load=4, skills=("空调",)),
            agent(3, load=2, skills=("空调", "冰箱")), agent(4, load=0)]
    assert pick_agent("skill_based", team, ["空调", "冰箱"], NOW).user_id == 3
    assert pick_agent("skill_based", team, ["空调"], NOW).user_id == 3  # both have it: less loaded
    assert pick_agent("skill_based", team, ["冰箱", "空调"], NOW).user_id == 3
    assert pick_agent("skill_based", team, ["冰箱"], NOW).user_id == 1
    nobody = pick_agent("skill_based", team, ["洗衣机"], NOW)
    assert nobody.user_id is None and "洗衣机" in nobody.reason
    assert pick_agent("skill_based", team, [], NOW).user_id == 1  # no needs: least loaded


def test_unknown_strategy_is_refused() -> None:
    with pytest.raises(ValueError, match="round_robin"):
        pick_agent("random", [agent(1)], [], NOW)
