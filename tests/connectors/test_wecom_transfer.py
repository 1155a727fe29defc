"""WeCom handover APIs (connectors/wecom/transfer.py) against the fake qyapi on 127.0.0.1: the client's own
checks, the fake's WeCom rules, the 24 h takeover and its three endings, paging by cursor."""

from __future__ import annotations

import pytest

from connectors.wecom.api_errors import WeComRejected, WeComRetryable
from connectors.wecom.client import WeComClient
from connectors.wecom.transfer import (
    customers_of,
    get_member,
    transfer_customers,
    transfer_groups,
    transfer_results,
    unassigned_customers,
    unassigned_page,
)
from tests.connectors.fake_wecom import WECOM_CORP_ID, WECOM_SECRET, FakeWeCom, fake_wecom

__all__ = ["fake_wecom"]
DAY = 86_400


@pytest.fixture
def client(fake_wecom: FakeWeCom) -> WeComClient:
    return WeComClient(WECOM_CORP_ID, WECOM_SECRET, api_base=fake_wecom.url, rate_per_second=1000)


@pytest.fixture
def corp(fake_wecom: FakeWeCom) -> FakeWeCom:
    for userid in ("zhangsan", "lisi", "wangwu"):
        fake_wecom.add_staff(userid, departments=(7,), direct_leader=("boss",))
    fake_wecom.add_staff("boss")
    fake_wecom.add_staff("sleepy", last_login_days_ago=400)
    for i in range(5):
        fake_wecom.add_contact(f"wmC{i:03d}", "zhangsan")
    return fake_wecom


def test_the_client_refuses_what_wecom_would(client: WeComClient) -> None:
    too_many = [f"wm{i}" for i in range(101)]
    with pytest.raises(ValueError, match="at most 100 external_userids"):
        transfer_customers(client, "a", "b", too_many, resigned=True)
    with pytest.raises(ValueError, match="the same"):
        transfer_customers(client, "a", "a", ["wm1"], resigned=True)
    with pytest.raises(ValueError, match="in-service"):
        transfer_customers(client, "a", "b", ["wm1"], resigned=True, transfer_success_msg="hi")
    with pytest.raises(ValueError, match="at most 200"):
        transfer_customers(client, "a", "b", ["wm1"], resigned=False, transfer_success_msg="x" * 201)
    with pytest.raises(ValueError, match="at most 100 chat_ids"):
        transfer_groups(client, [f"wr{i}" for i in range(101)], "b", resigned=True)
    with pytest.raises(ValueError, match=r"1\.\.1000"):
        unassigned_page(client, page_size=1001)


def test_resigned_takeover_after_24_hours_done_refused_or_limit(corp: FakeWeCom, client: WeComClient) -> None:
    # the resigned API needs a member who left
    with pytest.raises(WeComRejected) as early:
        transfer_customers(client, "zhangsan", "lisi", ["wmC000"], resigned=True)
    assert early.value.errcode == 40097
    corp.resign("zhangsan")
    assert {c.external_userid for c in unassigned_customers(client, "zhangsan")} == {f"wmC{i:03d}" for i in range(5)}
    corp.add_staff("tiny", customer_limit=1)
    corp.add_contact("wmOther", "tiny")  # tiny is at the limit at takeover time
    outcomes = transfer_customers(client, "zhangsan", "lisi", ["wmC000", "wmC001", "wmNobody"], resigned=True)
    assert [(o.id, o.errcode) for o in outcomes] == [("wmC000", 0), ("wmC001", 0), ("wmNobody", 40096)]
    corp.refuse("wmC001")
    assert [(s.external_userid, s.meaning) for s in
            transfer_results(client, "zhangsan", "lisi", resigned=True)] == [("wmC000", "waiting"),
                                                                               ("wmC001", "waiting")]
    again = transfer_customers(client, "zhangsan", "lisi", ["wmC000"], resigned=True)
    assert again[0].errcode == 40129  # one transfer at a time
    corp.advance(DAY + 1)
    states = {s.external_userid: s for s in transfer_results(client, "zhangsan", "lisi", resigned=True)}
    assert states["wmC000"].meaning == "done" and states["wmC001"].meaning == "refused"
    assert corp.owner_of("wmC000") == ["lisi"]
    # the refusal is pushed as transfer_fail with FailReason customer_refused (UserID: the takeover member)
    assert [p[:3] for p in corp.xfer.transfer_fail_pushes] == [("wmC001", "lisi", "customer_refused")]
    # not logged in within a year (the fake's errcode 41054), limit at call time (40099)
    with pytest.raises(WeComRejected) as sleepy:
        transfer_customers(client, "zhangsan", "sleepy", ["wmC002"], resigned=True)
    assert sleepy.value.errcode == 41054
    assert transfer_customers(client, "zhangsan", "tiny", ["wmC002"], resigned=True)[0].errcode == 40099


def test_in_service_transfer_tells_the_customer_and_allows_two_in_90_days(corp: FakeWeCom,
                                                                          client: WeComClient) -> None:
    out = transfer_customers(client, "zhangsan", "lisi", ["wmC000"], resigned=False,
                             transfer_success_msg="您好，后续由李四为您服务")
    assert out[0].started
    corp.advance(DAY + 1)
    assert next(iter(transfer_results(client, "zhangsan", "lisi", resigned=False))).meaning == "done"
    assert ("wmC000", "transfer:lisi", "您好，后续由李四为您服务", []) in corp.delivered
    assert transfer_customers(client, "lisi", "wangwu", ["wmC000"], resigned=False)[0].started
    corp.advance(DAY + 1)
    list(transfer_results(client, "lisi", "wangwu", resigned=False))
    third = transfer_customers(client, "wangwu", "lisi", ["wmC000"], resigned=False)
    assert third[0].errcode == 40128 and "twice in 90 days" in third[0].reason
    corp.advance(89 * DAY)  # 90 days after the first transfer it may move once more
    assert transfer_customers(client, "wangwu", "lisi", ["wmC000"], resigned=False)[0].started


def test_paging_1000_by_cursor(corp: FakeWeCom, client: WeComClient) -> None:
    for i in range(2345):
        corp.add_contact(f"wmBulk{i:05d}", "wangwu")
    corp.resign("wangwu")
    rows, cursor, last = unassigned_page(client, page_size=1000)
    assert len(rows) == 1000 and cursor and not last
    everyone = list(unassigned_customers(client, "wangwu"))
    assert len(everyone) == 2345 and len({r.external_userid for r in everyone}) == 2345
    assert all(c.body.get("page_size") == 1000 for c in corp.calls("get_unassigned_list"))
    for start in range(0, 1200, 100):
        ids = [f"wmBulk{i:05d}" for i in range(start, start + 100)]
        assert all(o.started for o in transfer_customers(client, "wangwu", "lisi", ids, resigned=True))
    assert len(list(transfer_results(client, "wangwu", "lisi", resigned=True))) == 1200
    assert len(corp.calls("resigned/transfer_result")) == 2  # 1,000 + 200


def test_groups_300_a_day_per_owner(corp: FakeWeCom, client: WeComClient) -> None:
    for i in range(310):
        corp.add_group(f"wr{i:04d}", "zhangsan")
    corp.resign("zhangsan")
    failed = []
    for start in range(0, 310, 100):
        failed += transfer_groups(client, [f"wr{i:04d}" for i in range(start, min(start + 100, 310))], "lisi",
                                  resigned=True)
    assert len(failed) == 10 and {f.errcode for f in failed} == {90503}
    corp.advance(DAY)
    assert transfer_groups(client, [f.id for f in failed], "lisi", resigned=True) == []
    assert corp.groups["wr0309"]["owner"] == "lisi"
    # lisi is employed: the in-service API; each group at most twice in 90 days (the resigned move counts)
    assert transfer_groups(client, ["wr0000"], "wangwu", resigned=False) == []
    assert transfer_groups(client, ["wr0000"], "lisi", resigned=True)[0].errcode == 90500  # wangwu has not left
    assert transfer_groups(client, ["wr0000"], "lisi", resigned=False)[0].errcode == 90504
    assert corp.problems == []


def test_members_and_their_customers(corp: FakeWeCom, client: WeComClient) -> None:
    member = get_member(client, "zhangsan")
    assert member.departments == [7] and member.direct_leader == ["boss"] and not member.resigned
    assert sorted(customers_of(client, "zhangsan")) == [f"wmC{i:03d}" for i in range(5)]


def test_a_frequency_limit_is_retryable(corp: FakeWeCom, client: WeComClient) -> None:
    corp.fail_next("resigned/transfer_customer", 45009)
    with pytest.raises(WeComRetryable) as caught:
        transfer_customers(client, "zhangsan", "lisi", ["wmC000"], resigned=True)
    assert caught.value.retry_after == 60.0
