"""Sidebar scripts and suggestion rules have the flows' cost bound (issue 18, item 1): saving one whose template
or condition costs too much on sample data is refused with a 4xx naming the field and the fix — through the API
and the library pages alike — and the web process evaluates nothing itself: the costs at save, the suggestion
rules and every script's rendering for a customer run in the evaluation pool (engine/isolation.py), whose worker
is killed past its deadline. Proved by making evaluation in this (the web) process fail: everything still works,
because none of it happens here."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from designer.app import create_app
from engine import auth, expressions
from engine.db.session import transaction
from engine.db.sidebar_models import Script
from tests.designer.pages_kit import PASSWORD, Browser
from tests.designer.sidebar_kit import Api, api, fake

__all__ = ["api", "fake"]
pytestmark = pytest.mark.usefixtures("cheap_passwords")

#: a loop the sample data cannot make cheap: far past the 10,000 operations validation allows
COSTLY_TEMPLATE = "{% for i in range(5000) %}{% for j in range(5) %}{{ i }}{% endfor %}{% endfor %}"
COSTLY_CONDITION = "range(9000) | map('string') | select('in', vars.latest_message) | list | length > 0"


def _unique(source: str) -> str:
    """The same template with a comment no earlier test measured (costs are remembered per text)."""
    return source + "{# " + uuid.uuid4().hex + " #}"


def _unique_condition(source: str) -> str:
    return f"({source}) or vars.tier == '{uuid.uuid4().hex}'"


def test_a_costly_script_template_is_refused_at_save_naming_the_field(api: Api) -> None:
    refused = api.call("mk", "POST", "/api/sidebar/library", {"title": "慢", "text": _unique(COSTLY_TEMPLATE)}, 422)
    detail = refused["detail"]
    assert detail["field"] == "text" and "too costly on sample data" in detail["message"]
    assert "operations" in detail["message"] and "loops" in detail["fix"]
    card = {"url": "https://shop.example.com/p/1", "title": _unique(COSTLY_TEMPLATE), "desc": "优惠"}
    refused = api.call("mk", "POST", "/api/sidebar/library", {"kind": "link", "title": "卡片", "link": card}, 422)
    assert refused["detail"]["field"] == "link.title"
    made = api.call("mk", "POST", "/api/sidebar/library", {"title": "问候", "text": "{{ customer.name }}您好"}, 201)
    # a new version is checked the same way; the old one stays
    refused = api.call("mk", "PUT", f"/api/sidebar/library/{made['id']}", {"title": "问候", "text": COSTLY_TEMPLATE},
                       422)
    assert refused["detail"]["field"] == "text"
    assert api.call("mk", "GET", f"/api/sidebar/library/{made['id']}")["version"] == 1


def test_a_costly_rule_condition_is_refused_at_save(api: Api) -> None:
    script = api.call("mk", "POST", "/api/sidebar/library", {"title": "问候", "text": "您好"}, 201)
    rule = {"name": "慢规则", "condition": _unique_condition(COSTLY_CONDITION), "script_ids": [script["id"]]}
    refused = api.call("mk", "POST", "/api/sidebar/rules", rule, 422)["detail"]
    assert refused["field"] == "condition" and "too costly on sample data" in refused["message"]
    assert "loops" in refused["fix"]
    made = api.call("mk", "POST", "/api/sidebar/rules", {**rule, "condition": "customer.vip_level > 0"}, 201)
    assert api.call("mk", "PUT", f"/api/sidebar/rules/{made['id']}", rule, 422)["detail"]["field"] == "condition"


@pytest.fixture
def nothing_evaluated_here(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """From here on, an expression or template evaluated in this process fails the test; the evaluation
    pool's worker processes import their own, untouched copy of the sandbox."""
    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("evaluated in the web process")

    for name in ("render", "evaluate", "cost_within"):
        monkeypatch.setattr(expressions, name, refuse)
    yield


def test_the_web_process_evaluates_no_script_or_rule(api: Api, nothing_evaluated_here: None) -> None:
    refused = api.call("mk", "POST", "/api/sidebar/library", {"title": "慢", "text": _unique(COSTLY_TEMPLATE)}, 422)
    assert refused["detail"]["field"] == "text"  # measured in the pool
    hello = api.call("mk", "POST", "/api/sidebar/library", {"title": "问候", "text": _unique(
        "{% for t in ['您好', '欢迎'] %}{{ t }}{% endfor %}，{{ customer.name }}")}, 201)
    rule = {"name": "大客户", "condition": "customer.name | length > 1", "script_ids": [hello["id"]]}
    assert api.call("mk", "POST", "/api/sidebar/rules", {**rule, "condition": _unique_condition(COSTLY_CONDITION)},
                    422)["detail"]["field"] == "condition"
    api.call("mk", "POST", "/api/sidebar/rules", rule, 201)

    # ops read the customer in clear (the read policy), so the scripts are rendered with the real name
    context = api.call("ops", "POST", "/api/sidebar/context", {"external_userid": "wmKnown01"})
    assert [s["id"] for s in context["suggested"]] == [hello["id"]]  # the rule was evaluated (in the pool)
    assert context["suggested"][0]["preview"] == "您好欢迎，王小明" and context["problems"] == []
    used = api.call("ops", "POST", f"/api/sidebar/scripts/{hello['id']}/use",
                    {"customer_id": context["customer"]["id"]})
    assert used["message"] == {"msgtype": "text", "text": {"content": "您好欢迎，王小明"}}
    # an agent sees this customer masked: a script filling in the name is refused (both renderings in the pool)
    masked = api.call("ann", "POST", f"/api/sidebar/scripts/{hello['id']}/use",
                      {"customer_id": context["customer"]["id"]}, 403)["detail"]
    assert masked["field"] == "script_id"

    # a costly script saved before the check existed: stopped in the pool, the sidebar still answers
    with transaction(api.db_url) as db:
        old = db.get(Script, hello["id"])
        assert old is not None
        costly = "{% for i in range(9999) %}{% for j in range(9999) %}{{ i }}{% endfor %}{% endfor %}"
        old.content, old.published = {"text": costly}, {**(old.published or {}), "content": {"text": costly}}
    listed = api.call("ops", "POST", "/api/sidebar/context", {"external_userid": "wmKnown01"})
    assert listed["suggested"][0]["preview"] == "" and "operations" in listed["suggested"][0]["problem"]
    refused = api.call("ops", "POST", f"/api/sidebar/scripts/{hello['id']}/use",
                       {"customer_id": context["customer"]["id"]}, 422)["detail"]
    assert refused["field"] == "text" and "cannot be sent" in refused["message"]


def test_the_library_pages_show_the_cost_problem_at_the_field(db_url: str, api: Api) -> None:
    with transaction(db_url) as db:
        auth.create_user(db, "lib-mk", PASSWORD, "marketer")
    marketer = Browser(create_app(db_url, connect=False), "lib-mk", "en")
    r = marketer.post_form("/library/new?lang=en", {"kind": "text", "title": "慢", "text": _unique(COSTLY_TEMPLATE)})
    assert r.status_code == 422 and 'id="err-text"' in r.text and "too costly on sample data" in r.text
    assert "fewer or smaller loops" in r.text  # the fix, too
    script = api.call("mk", "POST", "/api/sidebar/library", {"title": "问候", "text": "您好"}, 201)
    r = marketer.post_form("/library/rules/new", {"name": "慢规则", "condition": _unique_condition(COSTLY_CONDITION),
                                                  "script_ids": str(script["id"])})
    assert r.status_code == 422 and 'data-field="condition"' in r.text and "too costly" in r.text
    chinese = Browser(create_app(db_url, connect=False), "lib-mk")
    r = chinese.post_form("/library/new?lang=zh-CN", {"kind": "text", "title": "慢", "text": COSTLY_TEMPLATE})
    assert r.status_code == 422 and "too costly" not in r.text and 'id="err-text"' in r.text
