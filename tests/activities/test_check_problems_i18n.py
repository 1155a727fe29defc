"""Problems a node's config check finds are Msgs: the editor and the validate API show them in the reader's
language (the referral reward's nested reward node, a condition's expression, a profile change's attribute
refused by its rules)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from designer import errors
from engine.validate import validate

CHINESE = re.compile(r"[\u4e00-\u9fff]")


def flow(node_type: str, config: dict[str, Any]) -> dict[str, Any]:
    return {"schema": "tideflow/flow@1", "id": "p", "name": "p", "kind": "journey", "settings": {},
            "nodes": [{"id": "start", "type": "trigger.event", "config": {"event": "order.paid"}},
                      {"id": "n", "type": node_type, "config": config}],
            "edges": [{"from": "start", "to": "n"}]}


def shown(doc: dict[str, Any], field: str) -> dict[str, dict[str, Any]]:
    """The problem on ``field`` as the validate API shows it in each language."""
    problems = [p for p in validate(doc).problems if p.field == field]
    assert problems, [p.as_dict() for p in validate(doc).problems]
    return {lang: errors.problem_dicts(problems, lang)[0] for lang in ("en", "zh-CN")}


@pytest.mark.parametrize(("node_type", "config", "field", "message", "fix"), [
    ("action.referral_reward", {"campaign": "c", "reward": {"type": "action.nope"}}, "config.reward.type",
     "'action.nope' is not an action node type",
     "pick an action such as action.issue_coupon or action.loyalty_points"),
    ("action.referral_reward", {"campaign": "c", "reward": {"type": "action.issue_coupon", "config": {}}},
     "config.reward.config.campaign", "is required", "fill in the settings of action.issue_coupon"),
    ("action.referral_reward", {"campaign": "c", "reward": {"type": "action.issue_coupon",
                                                            "config": {"campaign": "x" * 81}}},
     "config.reward.config.campaign", "should have at most 80 characters",
     "fill in the settings of action.issue_coupon"),
    ("logic.condition", {"expr": "customer.orders_count > 1 2"}, "config.expr",
     "unexpected '2' after the expression", None),
    ("action.update_profile", {"set": {"tags": "x"}}, "config",
     "attribute 'tags' is reserved and cannot be written", None),
])
def test_a_check_problem_reads_in_chinese_and_keeps_its_english(
        node_type: str, config: dict[str, Any], field: str, message: str, fix: str | None) -> None:
    said = shown(flow(node_type, config), field)
    assert message in said["en"]["message"]
    if fix is not None:
        assert said["en"]["fix"] == fix
        assert CHINESE.search(said["zh-CN"]["fix"]), said["zh-CN"]
    assert CHINESE.search(said["zh-CN"]["message"]), said["zh-CN"]
    assert message not in said["zh-CN"]["message"], said["zh-CN"]  # not the English inside a Chinese frame
    assert "action.nope" not in message or "action.nope" in said["zh-CN"]["message"]  # the value is kept as data
