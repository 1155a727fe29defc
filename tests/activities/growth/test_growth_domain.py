"""The growth domain's pure functions: state codes, attribution, staff rotation, invite validity, risk."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from activities.growth import attribution, invites, risk, rotation, states

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
SH = ZoneInfo("Asia/Shanghai")


# -- states ------------------------------------------------------------------------------------------
@given(st.integers(0, 36**12 - 1), st.integers(0, 36**12 - 1))
def test_referral_states_round_trip_and_fit_wecoms_30_characters(campaign: int, participant: int) -> None:
    state = states.referral_state(campaign, participant)
    assert len(state) <= states.MAX_STATE
    assert states.parse_state(state) == states.State("referral", campaign, participant)


def test_state_codes_worked_examples() -> None:
    assert states.channel_state(47) == "tfc1b"  # 47 = 1×36 + 11
    assert states.referral_state(3, 109_986) == "tfr3.2cv6"  # 109986 = 2×36³ + 12×36² + 31×36 + 6
    assert states.parse_state("tfc1b") == states.State("channel", 47)
    for foreign in ("", "teststate", "tfc", "tfr3", "tfr3.", "TFC1B", "tfc1b ", "tfx1", "tfr1.2.3"):
        assert states.parse_state(foreign) is None or foreign.strip() == "tfc1b"
    with pytest.raises(ValueError, match="30"):
        states.check_length("门店" * 16)
    with pytest.raises(ValueError):
        states.base36(36**12)


# -- attribution -------------------------------------------------------------------------------------
def test_first_touch_is_kept_and_last_touch_moves() -> None:
    first = attribution.touch({}, "store-a", T0)
    assert first == {"first_touch_channel": "store-a", "first_touch_at": T0.isoformat(),
                     "last_touch_channel": "store-a", "last_touch_at": T0.isoformat()}
    later = attribution.touch(first, "live-room", T0 + timedelta(days=3))
    assert later == {"last_touch_channel": "live-room", "last_touch_at": (T0 + timedelta(days=3)).isoformat()}
    profile = {**first, **later}
    # a delayed callback of an older touch: becomes the first touch, leaves the last touch alone
    late = attribution.touch(profile, "poster", T0 - timedelta(hours=1))
    assert late == {"first_touch_channel": "poster", "first_touch_at": (T0 - timedelta(hours=1)).isoformat()}


# -- rotation ----------------------------------------------------------------------------------------
SCHEDULE = [{"days": [1, 2, 3, 4, 5], "start": "09:00", "end": "18:00", "users": ["zhangsan", "lisi"]},
            {"days": [5], "start": "22:00", "end": "02:00", "users": ["night"]}]


def test_schedule_picks_who_answers_at_which_hours() -> None:
    monday_10 = datetime(2026, 11, 23, 10, 0, tzinfo=SH)  # a Monday
    assert rotation.pick_staff(["wangwu"], monday_10, schedule=SCHEDULE).users == ["zhangsan", "lisi"]
    monday_20 = monday_10.replace(hour=20)
    assert rotation.pick_staff(["wangwu"], monday_20, schedule=SCHEDULE).users == ["wangwu"]
    friday_23 = datetime(2026, 11, 27, 23, 0, tzinfo=SH)
    saturday_1 = datetime(2026, 11, 28, 1, 0, tzinfo=SH)  # the Friday night shift runs over midnight
    assert rotation.pick_staff(["wangwu"], friday_23, schedule=SCHEDULE).users == ["night"]
    assert rotation.pick_staff(["wangwu"], saturday_1, schedule=SCHEDULE).users == ["night"]
    assert rotation.pick_staff(["wangwu"], saturday_1.replace(hour=3), schedule=SCHEDULE).users == ["wangwu"]


def test_daily_cap_hands_over_to_the_next_member_then_backup() -> None:
    now = datetime(2026, 11, 23, 10, 0, tzinfo=SH)
    pick = rotation.pick_staff(["a", "b", "c"], now, daily_cap=2, adds_today={"a": 2, "b": 1})
    assert pick.users == ["b", "c"] and pick.capped == ["a"]
    everyone = rotation.pick_staff(["a", "b"], now, daily_cap=2, adds_today={"a": 2, "b": 5}, backup=["boss"])
    assert everyone.users == ["boss"] and everyone.reason == "capped: backup"
    nobody = rotation.pick_staff(["a", "b"], now, daily_cap=2, adds_today={"a": 2, "b": 2})
    assert nobody.users == ["a", "b"] and nobody.reason == "capped: everyone"


def test_rotation_offers_one_member_in_turn_skipping_capped_ones() -> None:
    now = datetime(2026, 11, 23, 10, 0, tzinfo=SH)
    turns = []
    last = None
    for _ in range(4):
        last = rotation.pick_staff(["a", "b", "c"], now, mode="rotate", last_assigned=last).users[0]
        turns.append(last)
    assert turns == ["a", "b", "c", "a"]
    assert rotation.pick_staff(["a", "b", "c"], now, mode="rotate", last_assigned="a", daily_cap=1,
                               adds_today={"b": 1}).users == ["c"]


# -- invites ----------------------------------------------------------------------------------------
RULES = invites.InviteRules(starts_at=T0, ends_at=T0 + timedelta(days=7), min_friend_duration=timedelta(days=1))


def facts(**over: object) -> invites.InviteFacts:
    base: dict[str, object] = {"added_at": T0 + timedelta(hours=1), "same_person": False, "known_since": None,
                               "already_invited": False}
    base.update(over)
    return invites.InviteFacts(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(("over", "expected"), [
    ({}, invites.Verdict("pending")),
    ({"same_person": True}, invites.Verdict("rejected", "self_invite")),
    ({"already_invited": True}, invites.Verdict("rejected", "duplicate")),
    ({"known_since": T0 - timedelta(days=30)}, invites.Verdict("rejected", "not_new_customer")),
    ({"added_at": T0 + timedelta(days=7)}, invites.Verdict("rejected", "after_end")),
    ({"added_at": T0 - timedelta(seconds=1)}, invites.Verdict("rejected", "before_start")),
    ({"campaign_active": False}, invites.Verdict("rejected", "campaign_not_active")),
])
def test_invite_rules(over: dict[str, object], expected: invites.Verdict) -> None:
    assert invites.judge(RULES, facts(**over)) == expected


def test_rules_can_be_switched_off_and_zero_duration_counts_at_once() -> None:
    loose = invites.InviteRules(new_customers_only=False, no_self_invites=False)
    assert invites.judge(loose, facts(known_since=T0 - timedelta(days=9), same_person=True)).status == "valid"


def test_deletion_before_counting_leaves_and_after_counting_revokes_until_the_end() -> None:
    assert invites.after_deletion(RULES, "pending", T0) == invites.Verdict("left", "deleted_before_min_duration")
    assert invites.after_deletion(RULES, "valid", T0 + timedelta(days=2)) == invites.Verdict("revoked",
                                                                                             "friend_deleted")
    assert invites.after_deletion(RULES, "valid", T0 + timedelta(days=8)) is None  # the campaign is over
    assert invites.after_deletion(RULES, "valid", T0 + timedelta(days=2), rewarded=True) is None
    assert invites.remaining(2, 3) == 1 and invites.remaining(5, 3) == 0


# -- risk ---------------------------------------------------------------------------------------------
def test_a_clean_invite_passes_and_a_farm_goes_to_review() -> None:
    rules = risk.RiskRules()
    clean = risk.score(rules, risk.RiskFacts(added_at=T0, invitee_name="小王", invitee_has_avatar=True))
    assert clean.score == 0 and clean.decision == "pass"
    farm = risk.score(rules, risk.RiskFacts(
        added_at=T0, inviter_recent=[T0 - timedelta(minutes=m) for m in (1, 2, 3, 4)], invitee_name="",
        invitee_has_avatar=False, shared_markers={"device": 3, "ip": 1}))
    assert [h.rule for h in farm.hits] == ["fast_invites", "no_nickname", "no_avatar", "shared_device"]
    assert farm.score == 100 and farm.decision == "review"  # 30+15+15+40 = 100
    blocked = risk.score(risk.RiskRules(reject_at=100), risk.RiskFacts(added_at=T0, blocklisted=["phone"]))
    assert blocked.decision == "reject" and blocked.score == 100


def test_old_invites_do_not_count_as_fast_and_unknown_facts_never_fire() -> None:
    rules = risk.RiskRules()
    slow = risk.score(rules, risk.RiskFacts(added_at=T0, inviter_recent=[T0 - timedelta(hours=h) for h in range(1, 9)]))
    assert slow.hits == []
    leavers = risk.score(rules, risk.RiskFacts(added_at=T0, inviter_leavers=2,
                                               invitee_registered_at=T0 - timedelta(days=1)))
    assert leavers.score == 50 and leavers.decision == "review"
