"""Scripts and suggestions as pure functions: validation, rendering into sendChatMessage messages through the
flows' sandbox (and its limits), search, the four-eyes rule, and suggestion ranking."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from activities.sidebar.scripts import (
    ScriptProblem,
    ScriptSpec,
    Searchable,
    normalise,
    preview_text,
    render_message,
    review_refusal,
    search,
)
from activities.sidebar.suggestions import Rule, RuleSpec, Situation, suggest

CUSTOMER = {"customer": {"id": "c1", "name": "王小明", "tags": ["VIP"], "total_spent_fen": 1_200_000},
            "vars": {"staff": "李娜"}}


def _problem(spec: dict[str, object]) -> str:
    with pytest.raises(ValidationError) as refused:
        ScriptSpec.model_validate(spec)
    return str(refused.value)


def test_each_kind_renders_the_message_wecom_expects() -> None:
    text = ScriptSpec(title="问候", text="{{ customer.name }}您好，我是{{ vars.staff }}")
    assert render_message("text", text.content(), CUSTOMER) == {"msgtype": "text",
                                                                "text": {"content": "王小明您好，我是李娜"}}
    link = ScriptSpec.model_validate({"kind": "link", "title": "活动", "link": {
        "url": "https://shop.example.com/promo?c={{ customer.id }}", "title": "{{ customer.name }}的专属福利",
        "desc": "满300减50", "image_url": "https://img.example.com/a.png"}})
    assert render_message("link", link.content(), CUSTOMER) == {"msgtype": "news", "news": {
        "link": "https://shop.example.com/promo?c=c1", "title": "王小明的专属福利", "desc": "满300减50",
        "imgUrl": "https://img.example.com/a.png"}}
    card = ScriptSpec.model_validate({"kind": "miniprogram", "title": "商城", "miniprogram": {
        "appid": "wx8bd80126147df384", "title": "{{ customer.name }}，来逛逛", "page": "pages/index.html?from=sb",
        "image_url": "https://img.example.com/c.png"}})
    sent = render_message("miniprogram", card.content(), CUSTOMER)
    assert sent["miniprogram"] == {"appid": "wx8bd80126147df384", "title": "王小明，来逛逛",
                                   "imgUrl": "https://img.example.com/c.png", "page": "pages/index.html?from=sb"}
    image = ScriptSpec(kind="image", title="价目表", image_id=7)
    assert image.content() == {"image_id": 7}
    assert render_message("image", image.content(), CUSTOMER, media_id="MEDIA1") == {
        "msgtype": "image", "image": {"mediaid": "MEDIA1"}}
    with pytest.raises(ScriptProblem, match="media id"):
        render_message("image", image.content(), CUSTOMER)
    assert preview_text(sent) == "王小明，来逛逛"


def test_mistakes_are_refused_when_saved_naming_the_field() -> None:
    assert "text: syntax error" in _problem({"title": "x", "text": "{{ customer.name "})
    assert "unknown" in _problem({"title": "x", "text": "{{ secret }}"}) or "secret" in _problem(
        {"title": "x", "text": "{{ secret }}"})
    assert "a link script needs link" in _problem({"kind": "link", "title": "x"})
    assert "http(s) URL" in _problem({"kind": "link", "title": "x", "link": {"url": "javascript:alert(1)",
                                                                             "title": "t"}})
    assert "before any variable" in _problem({"kind": "link", "title": "x", "link": {"url": "{{ customer.url }}",
                                                                                     "title": "t"}})
    assert ".html" in _problem({"kind": "miniprogram", "title": "x", "miniprogram": {
        "appid": "wx8bd80126147df384", "title": "t", "page": "pages/index", "image_url": "https://i/x.png"}})
    assert "appid" in _problem({"kind": "miniprogram", "title": "x", "miniprogram": {
        "appid": "gh_123", "title": "t", "page": "p.html", "image_url": "https://i/x.png"}})
    assert "team" in _problem({"title": "x", "text": "hi", "team": "Sales Team"})
    assert "extra" in _problem({"title": "x", "text": "hi", "html": "<b>"}).lower()


def test_hostile_templates_are_stopped_by_the_sandbox() -> None:
    assert "__" in _problem({"title": "x", "text": "{{ customer.__class__.__mro__ }}"})
    burn = "{% for i in range(9999) %}{% for j in range(9999) %}x{% endfor %}{% endfor %}"
    with pytest.raises(ScriptProblem, match="text"):
        render_message("text", {"text": burn}, CUSTOMER)
    big = "{{ 'x' * 3000 }}{{ '好' * 400 }}"  # 3000 + 1200 bytes: over WeCom's 4000
    with pytest.raises(ScriptProblem, match="4000"):
        render_message("text", {"text": big}, CUSTOMER)
    with pytest.raises(ScriptProblem, match="empty"):
        render_message("text", {"text": "{{ customer.nickname }}"}, CUSTOMER)
    # a variable cannot turn the link into another scheme
    with pytest.raises(ScriptProblem, match=r"link\.url"):
        render_message("link", {"link": {"url": "https://{{ customer.name }}", "title": "t"}},
                       {"customer": {"name": "x@evil:1\\"}})


def test_search_finds_every_word_best_first() -> None:
    items = [Searchable(1, "退款流程说明", "退款将在3个工作日内原路返回", ["退款", "售后"], "售后", uses=1),
             Searchable(2, "收益率风险提示", "历史收益率不代表未来表现", ["收益率", "理财"], "合规"),
             Searchable(3, "欢迎语", "您好，欢迎咨询 ＶＩＰ 专属服务", [], "通用", uses=9),
             Searchable(4, "退货地址", "请寄回：上海市……", ["退货"], "售后", uses=5)]
    assert search(items, "退款") == [1]
    assert search(items, "售后") == [1, 4]  # keyword hit beats category-only
    assert search(items, "vip 欢迎") == [3]  # full-width letters and case do not matter
    assert search(items, "收益率 退款") == []
    assert search(items, "") == [3, 4, 1, 2]  # no query: most used first
    assert normalise("  ＡＢＣ　收益率 ") == "abc 收益率"


def test_four_eyes() -> None:
    assert review_refusal("ops", "zhao", "qian") is None
    assert review_refusal("admin", "root", "qian") is None
    assert "four-eyes" in (review_refusal("ops", "zhao", "zhao") or "")
    assert "role" in (review_refusal("marketer", "zhao", "qian") or "")
    assert "role" in (review_refusal("agent", "zhao", "qian") or "")


def _rule(rule_id: int, spec: dict[str, object]) -> Rule:
    checked = RuleSpec.model_validate(spec)
    return Rule(rule_id, checked.name, checked.script_ids, checked.keywords,
                [s.model_dump() for s in checked.situations], checked.condition, checked.priority)


def test_a_question_about_yields_puts_the_approved_disclosure_first() -> None:
    rules = [_rule(1, {"name": "大促话术", "situations": [{"kind": "campaign_running", "value": "double11"}],
                       "script_ids": [20, 21]}),
             _rule(2, {"name": "问收益率", "keywords": ["收益率", "年化"], "script_ids": [10], "priority": 10}),
             _rule(3, {"name": "退款安抚", "situations": [{"kind": "open_ticket", "value": "refund"}],
                       "script_ids": [30, 20]}),
             _rule(4, {"name": "VIP", "situations": [{"kind": "tier", "value": "VIP"}], "script_ids": [40]}),
             _rule(5, {"name": "大客户", "condition": "customer.total_spent_fen > 1000000", "script_ids": [50]})]
    now = Situation(customer=CUSTOMER["customer"], latest_message="请问这个产品的年化收益率是多少？",
                    open_ticket_types=frozenset({"refund"}), running_campaigns=frozenset({"double11"}))
    got = suggest(rules, now, usable=[10, 20, 21, 30, 40, 50])
    assert [s.script_id for s in got.scripts] == [10, 20, 21, 30, 50]
    assert got.scripts[0].reasons == [{"rule": "问收益率", "kind": "keyword", "value": "收益率"}]
    assert {"rule": "退款安抚", "kind": "open_ticket", "value": "refund"} in got.scripts[1].reasons  # both reasons
    assert {"rule": "大促话术", "kind": "campaign_running", "value": "double11"} in got.scripts[1].reasons
    assert got.problems == []
    # an unapproved (unusable) script is never suggested; no VIP tier without a loyalty panel
    assert [s.script_id for s in suggest(rules, now, usable=[20, 40]).scripts] == [20]
    calm = Situation(customer={"total_spent_fen": 5}, latest_message="你好")
    assert suggest(rules, calm, usable=[10, 20, 30, 40, 50]).scripts == []
    vip = Situation(tier="VIP", latest_message="")
    assert [s.script_id for s in suggest(rules, vip, usable=[40]).scripts] == [40]


def test_broken_conditions_are_reported_not_raised() -> None:
    rules = [_rule(1, {"name": "坏规则", "condition": "customer.name.upper() > 3 and vars.tier.nope(1)",
                       "script_ids": [1]}),
             _rule(2, {"name": "好规则", "keywords": ["hi"], "script_ids": [2]})]
    got = suggest(rules, Situation(customer={"name": "x"}, latest_message="Hi there"), usable=[1, 2])
    assert [s.script_id for s in got.scripts] == [2]
    assert got.problems and got.problems[0].startswith("坏规则:")
    with pytest.raises(ValidationError, match="say when"):
        RuleSpec(name="x", script_ids=[1])
    with pytest.raises(ValidationError, match="condition"):
        RuleSpec(name="x", condition="customer.__class__", script_ids=[1])


# -- the cost of a script or rule on sample data (issue 18): the flows' check, naming the field ---------------
LOOP = "{% for i in range(5000) %}{% for j in range(5) %}{{ i }}{% endfor %}{% endfor %}"


@pytest.mark.parametrize(("spec", "field"), [
    ({"kind": "text", "text": LOOP}, "text"),
    ({"kind": "link", "link": {"url": "https://shop.example.com/p", "title": "卡片", "desc": LOOP}}, "link.desc"),
    ({"kind": "miniprogram", "miniprogram": {"appid": "wx8bd80126147df384", "title": LOOP,
                                             "image_url": "https://img.example.com/a.png",
                                             "page": "pages/index/index.html"}}, "miniprogram.title"),
])
def test_a_costly_template_is_named_by_its_field(spec: dict[str, Any], field: str) -> None:
    from activities.sidebar.scripts import check_cost

    parsed = ScriptSpec.model_validate({"title": "t", **spec})
    with pytest.raises(ScriptProblem, match="too costly on sample data") as refused:
        check_cost(parsed)
    assert refused.value.field == field and "loops" in refused.value.fix
    check_cost(ScriptSpec(title="t", text="{% for t in customer.tags %}{{ t }}{% endfor %}{{ vars.staff }}"))


def test_a_costly_condition_is_refused_and_a_problem_keeps_its_field_across_processes() -> None:
    import pickle

    from activities.sidebar.suggestions import RuleProblem, check_cost

    costly = RuleSpec(name="r", condition="range(9000) | map('string') | list | length > 0", script_ids=[1])
    with pytest.raises(RuleProblem) as refused:
        check_cost(costly)
    assert refused.value.field == "condition" and "too costly" in refused.value.message
    check_cost(RuleSpec(name="r", condition="'收益率' in vars.latest_message and vars.tier == 'gold'", script_ids=[1]))
    back = pickle.loads(pickle.dumps(ScriptProblem("text: too long", "text", "shorten it")))  # noqa: S301
    assert (str(back), back.field, back.fix) == ("text: too long", "text", "shorten it")
