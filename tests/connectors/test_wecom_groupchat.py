"""WeCom customer groups and mass sends (connectors/wecom/groupchat.py, app_message.py) against the fake:
listing and reading groups, single and group mass-send tasks waiting for the sender's confirmation, the
per-recipient outcomes (sent, not a friend, already received), cancel/remind, group QR codes."""

from __future__ import annotations

import pytest

from connectors.wecom.api_errors import WeComRejected
from connectors.wecom.app_message import send_text
from connectors.wecom.client import WeComClient, attachments_for
from connectors.wecom.groupchat import (
    add_group_template,
    add_join_way,
    add_single_template,
    cancel_send,
    get_group,
    join_way_qr,
    list_groups,
    remind_send,
    send_results,
    send_tasks,
)
from tests.connectors.fake_wecom import WECOM_CORP_ID, WECOM_SECRET, FakeWeCom, fake_wecom

__all__ = ["fake_wecom"]


@pytest.fixture
def client(fake_wecom: FakeWeCom) -> WeComClient:
    return WeComClient(WECOM_CORP_ID, WECOM_SECRET, api_base=fake_wecom.url, rate_per_second=1000)


@pytest.fixture
def corp(fake_wecom: FakeWeCom) -> FakeWeCom:
    fake_wecom.add_staff("zhangsan")
    fake_wecom.add_staff("lisi")
    for i in range(3):
        fake_wecom.add_contact(f"wmC{i}", "zhangsan")
    fake_wecom.add_group("wrA", "zhangsan", "VIP 群", members=("wmC0", "wmC1", "lisi"))
    fake_wecom.add_group("wrB", "zhangsan", "新品群", members=("wmC2",))
    fake_wecom.add_group("wrC", "lisi", "李四的群")
    return fake_wecom


def test_list_and_get_groups(corp: FakeWeCom, client: WeComClient) -> None:
    assert sorted(list_groups(client, owners=["zhangsan"])) == [("wrA", 0), ("wrB", 0)]
    group = get_group(client, "wrA")
    assert group.owner == "zhangsan" and group.name == "VIP 群"
    assert [(m.userid, m.external) for m in group.members] == [("zhangsan", False), ("wmC0", True),
                                                               ("wmC1", True), ("lisi", False)]
    with pytest.raises(WeComRejected) as missing:
        get_group(client, "wrNope")
    assert missing.value.errcode == 40050


def test_group_mass_send_waits_for_the_owner_then_reports_per_group(corp: FakeWeCom, client: WeComClient) -> None:
    task = add_group_template(client, "zhangsan", ["wrA", "wrB", "wrC"], "周末上新")
    assert task.fail_list == ["wrC"]  # not zhangsan's group
    assert [(t.userid, t.status) for t in send_tasks(client, task.msgid)] == [("zhangsan", 0)]
    assert {r.recipient: r.meaning for r in send_results(client, task.msgid, "zhangsan")} == {
        "wrA": "not_sent", "wrB": "not_sent"}
    corp.dismiss("wrB")
    corp.confirm(task.msgid, "zhangsan")
    assert [(t.userid, t.status) for t in send_tasks(client, task.msgid)] == [("zhangsan", 2)]
    assert {r.recipient: r.meaning for r in send_results(client, task.msgid, "zhangsan")} == {
        "wrA": "sent", "wrB": "not_friend"}


def test_single_mass_send_the_monthly_limit_and_not_a_friend(corp: FakeWeCom, client: WeComClient) -> None:
    corp.quota_policy = "day_1"
    corp.receive_mass_message("wmC1")  # a mass message from elsewhere today
    task = add_single_template(client, "zhangsan", ["wmC0", "wmC1", "wmC2"], "双十二预告",
                               [{"msgtype": "link", "link": {"title": "活动", "url": "https://example.com/a"}}])
    corp.contacts["wmC2"]["follow_users"].remove("zhangsan")  # the customer deleted zhangsan before he confirmed
    corp.confirm(task.msgid, "zhangsan")
    assert {r.recipient: r.meaning for r in send_results(client, task.msgid, "zhangsan")} == {
        "wmC0": "sent", "wmC1": "already_received", "wmC2": "not_friend"}
    assert corp.problems == []


def test_limits_are_checked_before_calling(client: WeComClient) -> None:
    with pytest.raises(ValueError, match="at most 2000 groups"):
        add_group_template(client, "zhangsan", [f"wr{i}" for i in range(2001)], "x")
    with pytest.raises(ValueError, match="at most 10000 customers"):
        add_single_template(client, "zhangsan", [f"wm{i}" for i in range(10_001)], "x")
    with pytest.raises(ValueError, match="at most 9 attachments"):
        add_group_template(client, "zhangsan", ["wrA"], "x", [{"msgtype": "link", "link": {}}] * 10)
    with pytest.raises(ValueError, match="needs the sender"):
        add_group_template(client, "", ["wrA"], "x")


def test_cancel_and_remind(corp: FakeWeCom, client: WeComClient) -> None:
    task = add_group_template(client, "zhangsan", ["wrA"], "hello")
    for _ in range(3):
        remind_send(client, task.msgid)
    with pytest.raises(WeComRejected):
        remind_send(client, task.msgid)
    cancel_send(client, task.msgid)
    corp.confirm(task.msgid, "zhangsan")  # too late: cancelled tasks send nothing
    assert [r.meaning for r in send_results(client, task.msgid, "zhangsan")] == ["not_sent"]


def test_group_qr_code_in_a_welcome_message(corp: FakeWeCom, client: WeComClient) -> None:
    config_id = add_join_way(client, ["wrA", "wrB"], state="welcome")
    qr = join_way_qr(client, config_id)
    code = corp.add_contact("wmNew", "zhangsan")
    client.send_welcome_msg(code, "欢迎！扫码加入会员群", attachments_for([qr]))
    assert corp.delivered[-1] == ("wmNew", "welcome", "欢迎！扫码加入会员群",
                                  [{"msgtype": "image", "image": {"pic_url": qr}}])
    with pytest.raises(ValueError, match=r"1\.\.5 groups"):
        add_join_way(client, [f"wr{i}" for i in range(6)])


def test_app_message_to_staff(corp: FakeWeCom, client: WeComClient) -> None:
    result = send_text(client, 1000002, ["zhangsan", "ghost"], "敏感词提醒" * 1000)
    assert result.invalid_users == ["ghost"]
    sent = corp.gstate.app_messages[-1]
    assert sent["to"] == ["zhangsan"] and len(sent["text"].encode()) <= 2048 and sent["text"].endswith("…")
