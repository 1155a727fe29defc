"""Sensitive words and behaviours (activities/workforce/matcher.py): text, not JSON; scope; RE2; evasions."""

from __future__ import annotations

import pytest

from activities.workforce.matcher import Matcher, Word, WordError, behaviours, check_pattern


def word(i: int, pattern: str, **kw: object) -> Word:
    return Word(id=i, list_id=kw.pop("list_id", 1), pattern=pattern, **kw)  # type: ignore[arg-type]


def test_keywords_and_regexes_in_scope_with_passages() -> None:
    matcher = Matcher([
        word(1, "保证收益", severity="high"),
        word(2, "VX", direction="staff"),
        word(3, r"返现\d+元", kind="regex", severity="critical"),
        word(4, "退款", direction="customer"),
        word(5, "内部价", departments=frozenset({7}), list_id=2),
        word(6, "内部价", members=frozenset({"wangwu"}), list_id=3),
    ])
    hits = matcher.match("加我ｖｘ吧，这个产品保证收益，下单返现200元，内部价也有", "staff", "zhangsan", [7])
    assert sorted((h.word.id, h.matched) for h in hits) == [(1, "保证收益"), (2, "vx"), (3, "返现200元"),
                                                            (5, "内部价")]
    assert "保证收益" in next(h.passage for h in hits if h.word.id == 1)
    # the same text from a customer: staff-only and department words do not apply, customer ones do
    assert {h.word.id for h in matcher.match("我要退款，vx 多少", "customer", "", [])} == {4}
    assert {h.word.id for h in matcher.match("内部价", "staff", "wangwu", [1])} == {6}


def test_passages_are_masked() -> None:
    hits = Matcher([word(1, "卡号")]).match("我的卡号 6222 0212 3456 7894 手机13800138000", "customer")
    assert "13800138000" not in hits[0].passage and "7894" in hits[0].passage


def test_words_are_checked_when_saved() -> None:
    assert check_pattern("  返利 ", "keyword") == "返利"
    for bad, kind, why in [("", "keyword", "empty"), ("x" * 201, "keyword", "at most 200"),
                           (r"(a)\1", "regex", "back-references"), ("a*", "regex", "empty text"),
                           ("x", "emoji", "keyword or regex")]:
        with pytest.raises(WordError, match=why):
            check_pattern(bad, kind)


def test_a_catastrophic_regex_runs_in_linear_time() -> None:
    matcher = Matcher([word(1, "(a+)+b", kind="regex")])
    # Python's re would need ~2^n steps on this text (the test would hit pytest's timeout); RE2 is linear
    assert matcher.match("a" * 19_000 + "c", "staff") == []
    assert [h.matched for h in matcher.match("xaaab", "staff")] == ["aaab"]


def test_behaviours() -> None:
    kinds = {b.kind for b in behaviours("打款到卡号6222021234567894，或者打电话13800138000")}
    assert kinds == {"bank_card", "phone_number", "money_transfer"}
    assert [b.kind for b in behaviours("恭喜发财", "redpacket")] == ["red_packet"]
    assert behaviours("订单号 13800138000123 已发货") == []
    assert behaviours("", "text") == []
