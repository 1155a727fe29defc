"""Every action of ours says why it failed as a Msg (docs/i18n.md, "An action's Msg across Temporal"): the real
action runs, its failure crosses Temporal as ``engine.actions.failure_of`` makes it, and the reader the pages use
(``engine.interpreter.carried_reason``, translated as the failure list and the journey page do) says it in
Chinese — while Temporal's message, logs and the API keep the English they had."""

from __future__ import annotations

import ast
import pathlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import Field

from activities.coupons.issue_coupon import IssueCoupon
from activities.growth.action_referral_reward import ReferralReward
from activities.loyalty.action_loyalty_points import LoyaltyPoints
from activities.profile.update_profile import UpdateProfile
from activities.settlement.nodes import SettlementCompute, SettlementPayout
from activities.tickets.nodes import TicketAssign
from activities.workforce.mass_send_node import WeComMassSend
from designer.i18n import translate
from engine import sdk
from engine.actions import ActionFailed, Services, failure_of, perform
from engine.customers import resolve
from engine.db.session import transaction
from engine.interpreter import carried_reason
from engine.nodes.base import NodeType
from engine.runtime import ActionRequest
from wording import Msg

ROOT = pathlib.Path(__file__).resolve().parents[2]


def request(node_type: type[NodeType], cid: str | None, config: dict[str, Any]) -> ActionRequest:
    return ActionRequest(key=f"journey/t/{cid}/1/n/1", workflow_id=f"journey/t/{cid}/1", flow_id="t", version=1,
                         node_id="n", node_type=node_type.type, config=config, customer_id=cid,
                         now=datetime.now(UTC).isoformat())


def said(exc: BaseException) -> tuple[str, str, str]:
    """What crosses Temporal (the English message) and what the pages show in each language."""
    failure = failure_of(exc)
    reason = carried_reason(failure)
    assert reason is not None, f"no Msg carried: {failure.message!r}"
    return failure.message, translate(reason, "en"), translate(reason, "zh-CN")


#: (node type, with a customer, config, English as before, Chinese)
CASES: list[tuple[type[NodeType], bool, dict[str, Any], str, str]] = [
    (IssueCoupon, False, {"campaign": "welcome-20"},
     "node 'n': a coupon is issued to a customer, and this journey has none",
     "节点「n」：优惠券只能发给客户，而此旅程没有客户"),
    (IssueCoupon, True, {"campaign": "nope"},
     "node 'n': coupon campaign 'nope' does not exist; create it (POST /api/coupon-campaigns) or pick an existing "
     "campaign in the node's settings",
     "节点「n」：优惠券活动「nope」不存在；请先创建（POST /api/coupon-campaigns），或在节点设置中选择已有的活动"),
    (IssueCoupon, True, {},  # engine.actions: a saved config the node type no longer takes
     "node 'n': config no longer valid: ", "节点「n」：设置已不再有效："),
    (LoyaltyPoints, False, {"points": 5}, "node 'n': points go to a customer, and this journey has none",
     "节点「n」：积分只能给客户，而此旅程没有客户"),
    (LoyaltyPoints, True, {"action": "astrology"},
     "node 'n': the points table has no action 'astrology'; it has ",
     "节点「n」：积分规则表中没有动作「astrology」；表中有："),
    (UpdateProfile, True, {"set": {"level": "{{ 100 // 0 }}"}},
     "node 'n': template of an attribute: cannot render template: integer division or modulo by zero",
     "节点「n」：属性的模板：无法渲染模板：integer division or modulo by zero"),
    (SettlementCompute, False, {}, "node 'n' needs a settlement run: put settlement.collect before it",
     "节点「n」需要一个结算批次：请在它之前放置 settlement.collect"),
    (SettlementPayout, False, {"method": "webhook", "webhook_url": "http://127.0.0.1/pay"},  # engine.outbound
     "settlement.payout: webhook_url refused: '127.0.0.1' is 127.0.0.1, loopback (this machine): flows may only "
     "call public addresses (an operator can allow internal endpoints with TIDEFLOW_OUTBOUND_ALLOW)",
     "settlement.payout：webhook_url 被拒绝：'127.0.0.1' 是 127.0.0.1，属于回环地址（本机）：流程只能调用公网地址"
     "（运维人员可通过 TIDEFLOW_OUTBOUND_ALLOW 放行内部地址）"),
    (SettlementPayout, False, {"method": "webhook", "webhook_url": "ftp://pay.example/x"},
     "settlement.payout: webhook_url 'ftp://pay.example/x' is not an http(s) URL",
     "settlement.payout：webhook_url 'ftp://pay.example/x' 不是 http(s) 地址"),
    (TicketAssign, False, {}, "node 'n' runs in ticket flows only (no ticket in this flow)",
     "节点「n」只能在工单流程中运行（此流程没有工单）"),
    (WeComMassSend, True, {"text": "每袋 {{ 100 // 0 }} 元"},
     "text of node 'n': cannot render template: integer division or modulo by zero",
     "节点「n」的文本：无法渲染模板：integer division or modulo by zero"),
    (ReferralReward, True, {"campaign": "laodaixin", "reward": {"type": "acme.nothing"}},
     "node 'n': reward type 'acme.nothing' is not installed", "节点「n」：奖励类型「acme.nothing」未安装"),
]


@pytest.mark.parametrize(("node_type", "with_customer", "config", "english", "chinese"), CASES,
                         ids=[f"{c[0].type}-{i}" for i, c in enumerate(CASES)])
def test_an_action_refused_for_good_says_why_in_the_readers_language(
        db_url: str, node_type: type[NodeType], with_customer: bool, config: dict[str, Any], english: str,
        chinese: str) -> None:
    cid = None
    if with_customer:
        with transaction(db_url) as db:
            cid = resolve(db, {"external_id": "reader"}, "读者")
    with pytest.raises(ActionFailed) as failed:
        perform(node_type, request(node_type, cid, config), Services(database_url=db_url))
    message, in_english, in_chinese = said(failed.value)
    # the English is what it was (Temporal's UI, logs, the API): a case ending in a value its sentence lists
    # (pydantic's words, the points table's actions) is compared up to that value
    assert message == in_english == str(failed.value)
    assert message.startswith(english) if english.endswith(" ") else message == english
    assert in_chinese.startswith(chinese) if chinese.endswith("：") else in_chinese == chinese


def test_a_nested_refusal_keeps_its_own_msg(db_url: str) -> None:
    """A domain refusal (a ``MsgError``) inside the node's sentence is translated too, not pasted as English."""
    with transaction(db_url) as db:
        cid = resolve(db, {"external_id": "reader"}, "读者")
    config = {"campaign": "nope", "reward": {"type": "action.loyalty_points", "config": {"points": 5}}}
    with pytest.raises(ActionFailed) as failed:
        perform(ReferralReward, request(ReferralReward, cid, config), Services(database_url=db_url))
    reason = carried_reason(failure_of(failed.value))
    assert reason is not None and reason.template == "node '%(node)s': %(detail)s"
    detail = reason.values["detail"]
    assert isinstance(detail, Msg) and detail.template != "%(detail)s"  # the campaign's own sentence, not verbatim
    assert translate(reason, "zh-CN") == f"节点「n」：{translate(detail, 'zh-CN')}"
    assert translate(detail, "zh-CN") != str(detail)


class Nothing(sdk.NodeConfig):
    note: str = Field(default="", description="a note")


def test_the_plugin_sdk_says_its_own_checks_as_msgs() -> None:
    """The SDK's own sentences (a port the node does not have, a template that cannot render) are ours."""
    def wrong_port(ctx: sdk.ActionContext, config: Nothing) -> sdk.ActionResult:
        return sdk.ActionResult(port="nope")

    ctx = sdk.make_context(node_id="award")
    checks: list[Callable[[], Any]] = [
        lambda: sdk.action("acme.wrong", label={"zh-CN": "错", "en": "Wrong"}, config=Nothing)(wrong_port).run(
            ctx, Nothing()),
        lambda: sdk.render("{{ 100 // 0 }}", ctx)]
    out = []
    for check in checks:
        with pytest.raises(ActionFailed) as failed:
            check()
        out.append(said(failed.value)[1:])
    assert out == [
        ("acme.wrong returned port 'nope', which is not one of its ports ('out',)",
         "acme.wrong 返回了端口 'nope'，它不在其端口 ('out',) 之中"),
        ("node 'award': cannot render template: integer division or modulo by zero",
         "节点「award」：无法渲染模板：integer division or modulo by zero")]


def test_no_action_of_ours_raises_action_failed_with_an_f_string_or_a_literal() -> None:
    """Beside the behaviour above, the source: ``ActionFailed(f"…")`` / ``ActionFailed("…")`` is English shown
    verbatim to every reader. Plugin authors' strings (outside these packages) are theirs."""
    found = []
    for package in ("activities", "engine", "connectors"):
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if (isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None))
                        == "ActionFailed" and node.args and isinstance(node.args[0], ast.JoinedStr | ast.Constant)):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == []
