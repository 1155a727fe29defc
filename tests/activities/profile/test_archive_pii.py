"""PII masking in free text: Chinese mobiles and bank cards, and what must be left alone."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.pii import (
    MaskingFilter,
    card_like_prefix,
    is_card_number,
    luhn_valid,
    mask_bank_card,
    mask_phone,
    mask_text,
)


def luhn_complete(body: str) -> str:
    """``body`` plus the check digit that makes it pass Luhn."""
    for check in "0123456789":
        if luhn_valid(body + check):
            return body + check
    raise AssertionError("unreachable")


def luhn_break(number: str) -> str:
    """The same number with a wrong check digit."""
    last = (int(number[-1]) + 1) % 10
    return number[:-1] + str(last)


VISA = "4111111111111111"
AMEX = "378282246310005"
MASTERCARD_2 = "2221000000000009"
UNIONPAY_19 = luhn_complete("621700123456789012")
UNIONPAY_16 = luhn_complete("622202123456789")


def test_luhn_known_numbers() -> None:
    for number in (VISA, AMEX, MASTERCARD_2, "5555555555554444", "6011111111111117", "3530111333300000"):
        assert luhn_valid(number), number
    assert not luhn_valid("4111111111111112")
    assert not luhn_valid("41111111111111a1")
    assert len(UNIONPAY_19) == 19 and luhn_valid(UNIONPAY_19)


def test_card_prefixes() -> None:
    assert all(card_like_prefix(n) for n in (VISA, AMEX, MASTERCARD_2, UNIONPAY_16, "5105105105105100"))
    assert not card_like_prefix("2023111512345678")  # a date-based id: 2023 is below the Mastercard 2-series
    assert not card_like_prefix("1234567890123456")
    assert not card_like_prefix("9558801234567890")


@pytest.mark.parametrize(("text", "expected"), [
    ("我的手机号是13800138000，谢谢", "我的手机号是138****8000，谢谢"),
    ("电话 138-0013-8000 找张三", "电话 138****8000 找张三"),
    ("电话:13800138000.", "电话:138****8000."),
    ("+86 138 0013 8000", "+86 138****8000"),
    ("+86-138-0013-8000", "+86-138****8000"),
    ("(+86)13800138000", "(+86)138****8000"),
    ("（微信同号）+8615912345678", "（微信同号）+86159****5678"),
    ("0086 18612345678", "0086 186****5678"),
    ("8613800138000", "86138****8000"),
    ("联系我：15912345678或18600001111", "联系我：159****5678或186****1111"),
    ("Call me at 13912345678.", "Call me at 139****5678."),
    ("手机号码19912345678", "手机号码199****5678"),
    ("快递员电话 17712345678", "快递员电话 177****5678"),
    ("订单联系电话：13800138000", "订单联系电话：138****8000"),
])
def test_phones_in_sentences_are_masked(text: str, expected: str) -> None:
    assert mask_phone(text) == expected
    assert mask_text(text) == expected


@pytest.mark.parametrize("text", [
    "12345678901",                      # 12x is no mobile prefix
    "10086 和 95588 是客服热线",
    "订单号：13800138000",               # said to be an order number
    "单号13800138000已发货",
    "运单号 13800138000",
    "物流单号:13912345678",
    "order no. 13800138000",
    "Order #13800138000",
    "SO13800138000",                    # glued to letters: an identifier
    "13800138000123",                   # 14 digits
    "2023-11-15-13800138000",           # joined to a longer dash-separated id
    "v1.13800138000",
    "价格 1380.00 元",
    "010-12345678",                     # landlines are not masked
    "会员编号 13800138000",
])
def test_numbers_that_are_not_phones_are_left_alone(text: str) -> None:
    assert mask_phone(text) == text
    assert mask_text(text) == text


@pytest.mark.parametrize("number", [VISA, AMEX, MASTERCARD_2, UNIONPAY_16, UNIONPAY_19, "5555555555554444",
                                    "6011111111111117", "3530111333300000"])
def test_valid_cards_keep_only_the_last_four(number: str) -> None:
    masked = mask_bank_card(f"请转账到 {number} 谢谢")
    assert masked == f"请转账到 **** **** **** {number[-4:]} 谢谢"
    assert number[:-4] not in masked


@pytest.mark.parametrize("written", [
    "4111 1111 1111 1111",
    "4111-1111-1111-1111",
    "3782 822463 10005",                # Amex 4-6-5
    " ".join([UNIONPAY_19[:4], UNIONPAY_19[4:8], UNIONPAY_19[8:12], UNIONPAY_19[12:16], UNIONPAY_19[16:]]),
])
def test_grouped_cards_are_masked(written: str) -> None:
    digits = written.replace(" ", "").replace("-", "")
    assert mask_text(f"卡：{written}。") == f"卡：**** **** **** {digits[-4:]}。"


def test_card_words_mask_a_luhn_number_whatever_it_starts_with() -> None:
    old_style = luhn_complete("955880123456789012")  # an old domestic card prefix (9)
    assert not card_like_prefix(old_style)
    assert mask_text(f"工行卡号：{old_style}") == f"工行卡号：**** **** **** {old_style[-4:]}"
    assert mask_text(f"银行卡 {old_style}") == f"银行卡 **** **** **** {old_style[-4:]}"
    assert mask_text(f"card no. {old_style}") == f"card no. **** **** **** {old_style[-4:]}"
    assert mask_text(old_style) == old_style  # without the word it is just a number


@pytest.mark.parametrize("text", [
    f"卡号 {luhn_break(VISA)}",                                  # fails Luhn even after a card word
    luhn_break(UNIONPAY_19),
    f"订单号 {VISA}",                                             # said to be an order number
    f"淘宝订单编号：{luhn_complete('351234567890123456')}",
    f"交易号 {UNIONPAY_16}",
    luhn_complete("202311151234567890"),                         # date-based order id, passes Luhn
    luhn_complete("1" * 17),
    "E" + VISA,                                                  # glued to a letter
    luhn_break(VISA + "00"),                                     # 18 digits failing Luhn
    luhn_complete("4" * 21),                                     # 22 digits: too long to be a card
    "4111111111111111111111111",
    "2023-11-15 10:30:00",
])
def test_numbers_that_are_not_cards_are_left_alone(text: str) -> None:
    assert mask_bank_card(text) == text


def test_a_card_inside_a_longer_run_of_groups_is_found() -> None:
    assert mask_bank_card("4111 1111 1111 1111 7 件") == "**** **** **** 1111 7 件"
    assert mask_bank_card("数量 2 4111111111111111") == "数量 2 **** **** **** 1111"


def test_is_card_number_looks_at_the_text_before() -> None:
    assert is_card_number(VISA)
    assert not is_card_number(VISA, "订单号：")
    assert is_card_number(VISA, "银行卡号：")
    assert not is_card_number("411111111111", "卡号")  # 12 digits


def test_phone_and_card_in_one_message() -> None:
    text = f"张三 13800138000，退款请打到 {UNIONPAY_19}，订单号 4111111111111111"
    assert mask_text(text) == (f"张三 138****8000，退款请打到 **** **** **** {UNIONPAY_19[-4:]}，"
                               f"订单号 4111111111111111")


def test_masking_is_idempotent_and_cheap_without_digits() -> None:
    text = f"+86 138 0013 8000 / {VISA} / 4111 1111 1111 1111 13800138000"
    once = mask_text(text)
    assert mask_text(once) == once
    plain = "没有数字的消息"
    assert mask_text(plain) is plain
    assert mask_text("") == ""


def test_long_input_stays_fast() -> None:
    text = "1 " * 10_000 + "4111 1111 1111 1111"
    assert mask_text(text).endswith("**** **** **** 1111")


def test_logging_filter_masks_the_formatted_message() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "customer %s paid with %s", ("13800138000", VISA),
                               None)
    assert MaskingFilter().filter(record)
    assert record.getMessage() == "customer 138****8000 paid with **** **** **** 1111"
    untouched = logging.LogRecord("x", logging.INFO, __file__, 1, "nothing %d", (3,), None)
    MaskingFilter().filter(untouched)
    assert untouched.args == (3,)


_TEXT = st.text(alphabet=st.sampled_from(list("0123456789 -+()*.:#订单号卡电话abcSO，")), max_size=80)


@settings(max_examples=300, deadline=None)
@given(_TEXT)
def test_masking_twice_changes_nothing(text: str) -> None:
    once = mask_text(text)
    assert mask_text(once) == once


@settings(max_examples=200, deadline=None)
@given(body=st.from_regex(r"62\d{14,16}", fullmatch=True), before=st.sampled_from(["", "请打到", "账户 ", "收款："]),
       after=st.sampled_from(["", "，谢谢", " 户名张三"]))
def test_a_unionpay_card_never_survives(body: str, before: str, after: str) -> None:
    number = luhn_complete(body)
    masked = mask_text(before + number + after)
    assert number[:-4] not in masked and masked.endswith(number[-4:] + after)


@settings(max_examples=200, deadline=None)
@given(st.from_regex(r"1[3-9]\d{9}", fullmatch=True), st.sampled_from(["", "电话", "手机：", "call "]))
def test_a_mobile_never_survives(number: str, before: str) -> None:
    masked = mask_text(before + number + "。")
    assert masked == before + number[:3] + "****" + number[-4:] + "。"
