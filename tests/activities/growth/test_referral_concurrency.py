"""Rewards exactly once under duplicate callbacks and concurrency — real threads, real SQLite and
PostgreSQL: the reward node run by racing journeys for one participant, a budget raced by many
participants, and the same add callback (or the same invitee through two staff) delivered at once."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import delete, func, select

from activities.growth import action_referral_reward as reward_module
from activities.growth import campaigns
from activities.growth.action_referral_reward import ReferralReward
from engine.actions import Services, perform
from engine.customers import resolve
from engine.db import models
from engine.db.growth_models import GrowthChannel, ReferralInvite, ReferralParticipant
from engine.db.growth_models import ReferralReward as RewardRow
from engine.db.session import session_factory, transaction
from engine.runtime import ActionRequest
from tests.activities.growth.growth_kit import make_campaign, store_one
from tests.connectors.fake_wecom import contact_event_xml
from tests.racing import race


def coupon_campaign(db_url: str, stock: int | None = None) -> None:
    with transaction(db_url) as db:
        db.add(models.CouponCampaign(id="referral-30", name="裂变券", value_fen=3000, total_stock=stock,
                                     per_customer_limit=5, status="active"))


def participant_at_goal(db_url: str, campaign_id: str, name: str) -> str:
    with transaction(db_url) as db:
        cid = resolve(db, {"external_id": name}, name)
        campaign = campaigns.get_campaign(db, campaign_id)
        participant, _ = campaigns.join(db, campaign, cid, datetime.now(UTC))
        participant.valid_count = campaign.goal
    return cid


def reward_request(cid: str, n: int) -> ActionRequest:
    return ActionRequest(key=f"journey/referral/{cid}/{n}/reward/1", workflow_id=f"journey/referral/{cid}/{n}",
                         flow_id="referral", version=1, node_id="reward", node_type="action.referral_reward",
                         config={"campaign": "laodaixin",
                                 "reward": {"type": "action.issue_coupon", "config": {"campaign": "referral-30"}}},
                         customer_id=cid, now=datetime.now(UTC).isoformat())


def test_racing_journeys_of_one_participant_issue_one_coupon(any_db_url: str) -> None:
    make_campaign(any_db_url)
    coupon_campaign(any_db_url)
    cid = participant_at_goal(any_db_url, "laodaixin", "inviter")
    services = Services(database_url=any_db_url)
    # ten journeys (goal_reached redelivered, counted events) reach the reward node at once, some twice
    results = race(12, lambda i: perform(ReferralReward, reward_request(cid, i % 10), services))
    assert not [r for r in results if isinstance(r, Exception)]
    with session_factory(any_db_url)() as db:
        coupons = db.scalar(select(func.count()).select_from(models.Coupon).where(models.Coupon.customer_id == cid))
        rewards = list(db.scalars(select(RewardRow)))
        audits = db.scalar(select(func.count()).select_from(models.AuditEntry).where(
            models.AuditEntry.action == "referral.reward_issued"))
    assert coupons == 1 and len(rewards) == 1 and rewards[0].status == "issued" and audits == 1
    # the visit holding the claim goes "out" — also when it raced its own redelivery — and every other
    # visit hears "already_rewarded": one "out" visit, one coupon
    claimant = campaigns.claimant_of(rewards[0])
    assert claimant in {reward_request(cid, n).key for n in range(10)}
    for i, result in enumerate(results):
        assert isinstance(result, dict)
        assert result["port"] == ("out" if reward_request(cid, i % 10).key == claimant else "already_rewarded"), i
    again = perform(ReferralReward, reward_request(cid, 99), services)
    assert again["port"] == "already_rewarded"


def rewards_of(db_url: str, cid: str) -> tuple[int, list[RewardRow]]:
    with session_factory(db_url)() as db:
        coupons = db.scalar(select(func.count()).select_from(models.Coupon).where(models.Coupon.customer_id == cid))
        return int(coupons or 0), list(db.scalars(select(RewardRow)))


def test_two_journeys_racing_for_one_reward_each_hear_the_truth(any_db_url: str) -> None:
    make_campaign(any_db_url)
    coupon_campaign(any_db_url)
    cid = participant_at_goal(any_db_url, "laodaixin", "inviter")
    services = Services(database_url=any_db_url)
    results = race(2, lambda i: perform(ReferralReward, reward_request(cid, i), services))
    assert all(isinstance(r, dict) for r in results), results
    ports = [r["port"] for r in results if isinstance(r, dict)]
    assert sorted(ports) == ["already_rewarded", "out"]
    coupons, rewards = rewards_of(any_db_url, cid)
    assert coupons == 1 and [r.status for r in rewards] == ["issued"]
    # the "out" journey is the one that holds the claim; the other lost the race for the same reward key
    assert campaigns.claimant_of(rewards[0]) == reward_request(cid, ports.index("out")).key


@pytest.mark.parametrize("second_visit", [0, 1], ids=["own-redelivery", "another-journey"])
def test_a_claim_finished_by_a_racer_is_out_only_for_its_holder(any_db_url: str, monkeypatch: pytest.MonkeyPatch,
                                                               second_visit: int) -> None:
    """The claim holder stalls inside the reward node; a racer arrives, sees the reward "issuing" and
    finishes it. A redelivery of the holder's own visit (a retried activity) is the holder and must go
    "out"; another journey lost the race and hears "already_rewarded". One coupon either way."""
    make_campaign(any_db_url)
    coupon_campaign(any_db_url)
    cid = participant_at_goal(any_db_url, "laodaixin", "inviter")
    services = Services(database_url=any_db_url)
    stalled, go_on = threading.Event(), threading.Event()

    def stalling_perform(node_type: Any, request: ActionRequest, svc: Services) -> dict[str, Any]:
        if threading.current_thread().name == "holder":
            stalled.set()
            assert go_on.wait(timeout=60)
        return perform(node_type, request, svc)

    monkeypatch.setattr(reward_module, "perform", stalling_perform)
    answers: dict[str, Any] = {}
    holder = threading.Thread(name="holder", target=lambda: answers.update(
        holder=perform(ReferralReward, reward_request(cid, 0), services)))
    holder.start()
    try:
        assert stalled.wait(timeout=60)
        answers["racer"] = perform(ReferralReward, reward_request(cid, second_visit), services)
    finally:
        go_on.set()
        holder.join(timeout=60)
    expected = "out" if second_visit == 0 else "already_rewarded"
    assert (answers["holder"]["port"], answers["racer"]["port"]) == ("out", expected)
    coupons, rewards = rewards_of(any_db_url, cid)
    assert coupons == 1 and [r.status for r in rewards] == ["issued"]


def test_the_claim_holders_retry_after_a_crash_is_still_out(db_url: str) -> None:
    make_campaign(db_url)
    coupon_campaign(db_url)
    cid = participant_at_goal(db_url, "laodaixin", "inviter")
    services = Services(database_url=db_url)
    request = reward_request(cid, 0)
    assert perform(ReferralReward, request, services)["port"] == "out"
    # the worker died after the reward was written down and before the node's own answer was: the activity
    # runs again with the same key
    with transaction(db_url) as db:
        db.execute(delete(models.LedgerEntry).where(models.LedgerEntry.key == request.key))
    assert perform(ReferralReward, request, services)["port"] == "out"
    assert perform(ReferralReward, reward_request(cid, 1), services)["port"] == "already_rewarded"
    coupons, rewards = rewards_of(db_url, cid)
    assert coupons == 1 and [r.status for r in rewards] == ["issued"]


def test_a_failed_reward_given_by_a_later_journey_is_out_for_that_journey(db_url: str) -> None:
    make_campaign(db_url)
    cid = participant_at_goal(db_url, "laodaixin", "inviter")
    services = Services(database_url=db_url)
    # the coupon campaign is missing: the first journey's reward fails
    assert perform(ReferralReward, reward_request(cid, 0), services)["port"] == "failed"
    coupon_campaign(db_url)
    # the next journey gives the reward: it won it, nobody rewarded the participant before
    assert perform(ReferralReward, reward_request(cid, 1), services)["port"] == "out"
    assert perform(ReferralReward, reward_request(cid, 2), services)["port"] == "already_rewarded"
    coupons, rewards = rewards_of(db_url, cid)
    assert coupons == 1 and [r.status for r in rewards] == ["issued"]
    assert campaigns.claimant_of(rewards[0]) == reward_request(cid, 1).key
    with session_factory(db_url)() as db:
        campaign = campaigns.get_campaign(db, "laodaixin")
        assert campaign.rewards_issued == 1  # the failed claim's budget slot passed on, not counted twice


def test_a_budget_of_three_is_never_exceeded(any_db_url: str) -> None:
    make_campaign(any_db_url, budget=3)
    coupon_campaign(any_db_url)
    inviters = [participant_at_goal(any_db_url, "laodaixin", f"p{i}") for i in range(8)]
    services = Services(database_url=any_db_url)
    results = race(8, lambda i: perform(ReferralReward, reward_request(inviters[i], 0), services))
    ports = [r["port"] for r in results if isinstance(r, dict)]
    assert sorted(ports) == ["budget_exhausted"] * 5 + ["out"] * 3
    with session_factory(any_db_url)() as db:
        campaign = campaigns.get_campaign(db, "laodaixin")
        assert campaign.rewards_issued == 3
        assert db.scalar(select(func.count()).select_from(models.Coupon)) == 3


def test_goal_not_reached_and_strangers_get_no_reward(db_url: str) -> None:
    make_campaign(db_url)
    coupon_campaign(db_url)
    with transaction(db_url) as db:
        early = resolve(db, {"external_id": "early"}, "early")
        campaigns.join(db, campaigns.get_campaign(db, "laodaixin"), early, datetime.now(UTC))
        stranger = resolve(db, {"external_id": "stranger"}, "stranger")
    services = Services(database_url=db_url)
    assert perform(ReferralReward, reward_request(early, 0), services)["port"] == "not_eligible"
    assert perform(ReferralReward, reward_request(stranger, 0), services)["detail"]["status"] == "not_participant"


def test_duplicate_and_concurrent_add_callbacks_count_once(any_db_url: str) -> None:
    make_campaign(any_db_url, goal=5)
    cid = participant_at_goal(any_db_url, "laodaixin", "inviter")
    with transaction(any_db_url) as db:
        participant = db.scalar(select(ReferralParticipant))
        assert participant is not None
        participant.valid_count = 0
        state = campaigns.participant_state(campaigns.get_campaign(db, "laodaixin"), participant)
        # the participant's personal code (made on WeCom by action.referral_join in real use)
        code = GrowthChannel(key="ref-1-1", name="personal", state=state, purpose="referral", campaign_id="laodaixin",
                             config_id="cfg-personal", staff=["zhangsan", "lisi"])
        db.add(code)
        db.flush()
        participant.channel_id = code.id
    now = int(datetime.now(UTC).timestamp())
    same = contact_event_xml("add_external_contact", "wmDUP", "zhangsan", create_time=now, state=state)
    # WeCom retries the same push while the first is in flight; and the invitee adds two staff at once
    pushes = [same] * 6 + [contact_event_xml("add_external_contact", "wmDUP", "lisi", create_time=now + 1, state=state)]
    results = race(len(pushes), lambda i: store_one(any_db_url, pushes[i]))
    assert not [r for r in results if isinstance(r, Exception)], results
    with session_factory(any_db_url)() as db:
        rows = list(db.scalars(select(ReferralInvite).order_by(ReferralInvite.id)))
        participant = db.scalar(select(ReferralParticipant))
        assert participant is not None
        assert sorted(r.status for r in rows) == ["rejected", "valid"]
        assert participant.valid_count == 1
        counted = db.scalar(select(func.count()).select_from(models.EventRecord).where(
            models.EventRecord.type == "referral.progress", models.EventRecord.customer_id == cid))
        assert counted == 2  # one "counted", one "rejected" (duplicate)
