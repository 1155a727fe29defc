"""Pure coupon functions: codes, expiry, budget days, money values, payload parsing."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta, timezone

import pytest

from activities.coupons.campaigns import value_fen, value_yuan
from activities.coupons.codes import (
    ALPHABET,
    CODE_LENGTH,
    CodeSpaceExhausted,
    candidates,
    check_prefix,
    generate_code,
    unique_code,
)
from activities.coupons.redemption import codes_in, order_id_in
from activities.coupons.validity import day_key, expiry, is_expired, window_problem
from designer.i18n import translate
from engine.actions import failure_of
from engine.interpreter import carried_reason

T = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


def test_alphabet_is_crockford_without_ambiguous_letters() -> None:
    assert len(ALPHABET) == 32 and len(set(ALPHABET)) == 32
    assert not set("ILOU") & set(ALPHABET)


def test_generated_codes_have_the_prefix_and_random_crockford_characters() -> None:
    codes = {generate_code("NEW20-") for _ in range(2000)}
    assert len(codes) == 2000
    for code in codes:
        assert code.startswith("NEW20-") and len(code) == 6 + CODE_LENGTH
        assert set(code[6:]) <= set(ALPHABET)
    assert len(generate_code()) == CODE_LENGTH


def test_generation_uses_the_given_chooser() -> None:
    assert generate_code("X", 5, choice=lambda alphabet: alphabet[-1]) == "XZZZZZ"


def test_prefixes_are_checked() -> None:
    assert check_prefix("VIP-2026") == "VIP-2026"
    for bad in ("vip", "VIP_1", "ABCDEFGHIJKLM", "券"):
        with pytest.raises(ValueError, match="prefix"):
            generate_code(bad)
    with pytest.raises(ValueError, match="at least 4"):
        generate_code("", 3)


def test_unique_code_retries_a_collision() -> None:
    made = iter(["A1", "A1", "A2"])
    taken = {"A1"}
    assert unique_code(lambda c: c in taken, "A", generate=lambda _prefix: next(made)) == "A2"


def test_unique_code_gives_up_after_its_attempts() -> None:
    counter = itertools.count()

    def always_taken(code: str) -> bool:
        next(counter)
        return True

    with pytest.raises(CodeSpaceExhausted, match="3 generated codes") as raised:
        unique_code(always_taken, "P", attempts=3)
    assert next(counter) == 3
    # an action that issues a coupon fails with it: its Msg crosses Temporal, read in each language
    reason = carried_reason(failure_of(raised.value))
    assert reason is not None
    assert translate(reason, "en") == "CodeSpaceExhausted: 3 generated codes with prefix 'P' were all taken"
    assert translate(reason, "zh-CN") == "CodeSpaceExhausted：生成的 3 个前缀为「P」的券码都已被占用"


def test_candidates_read_typing_slips_in_the_random_part_only() -> None:
    assert candidates("  new20-7k3qx9m2pd ") == ["NEW20-7K3QX9M2PD"]
    assert candidates("LOVE-O1IL0ABCDE") == ["LOVE-O1IL0ABCDE", "LOVE-0111" + "0ABCDE"]
    assert candidates("") == [] and candidates("A" * 41) == []
    assert candidates("SHORT") == ["SHORT"]


def test_expiry_is_validity_days_capped_by_the_campaign_end() -> None:
    assert expiry(T, 7, None) == T + timedelta(days=7)
    assert expiry(T, 7, T + timedelta(days=3)) == T + timedelta(days=3)
    assert expiry(T, 7, T + timedelta(days=30)) == T + timedelta(days=7)
    assert expiry(T, None, T + timedelta(days=30)) == T + timedelta(days=30)
    assert expiry(T, None, None) is None
    with pytest.raises(ValueError, match="at least 1"):
        expiry(T, 0, None)
    with pytest.raises(ValueError, match="timezone-aware"):
        expiry(datetime(2026, 11, 23), 7, None)


def test_budget_day_is_the_shanghai_calendar_day() -> None:
    assert day_key(datetime(2026, 11, 23, 15, 59, 59, tzinfo=UTC)) == "2026-11-23"
    assert day_key(datetime(2026, 11, 23, 16, 0, tzinfo=UTC)) == "2026-11-24"  # midnight in Shanghai
    assert day_key(datetime(2026, 11, 23, 16, 0, tzinfo=UTC), "UTC") == "2026-11-23"
    assert day_key(datetime(2026, 11, 24, 0, 30, tzinfo=timezone(timedelta(hours=8)))) == "2026-11-24"
    with pytest.raises(ValueError, match="timezone-aware"):
        day_key(datetime(2026, 11, 23))


def test_validity_window_is_half_open() -> None:
    start, end = T, T + timedelta(days=1)
    assert window_problem(T, start, end) is None
    assert "starts" in (window_problem(T - timedelta(seconds=1), start, end) or "")
    assert "ended" in (window_problem(end, start, end) or "")
    assert window_problem(T, None, None) is None
    assert is_expired(end, end) and not is_expired(end, end - timedelta(seconds=1)) and not is_expired(None, end)


@pytest.mark.parametrize(("given", "fen"), [(2000, 2000), (0, 0), ("20.00", 2000), ("20", 2000), ("0.5", 50),
                                             (" 19.99 ", 1999)])
def test_values_are_fen_or_yuan_text(given: int | str, fen: int) -> None:
    assert value_fen(given) == fen


@pytest.mark.parametrize(("given", "says"), [(20.0, "never a float"), (True, "never a float"),
                                             ("20.005", "decimal places"), ("¥20", "not a yuan amount"),
                                             (-1, "negative"), ("-0.01", "negative"), (None, "integer fen"),
                                             (10**12, "at most")])
def test_bad_values_say_what_to_send(given: object, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        value_fen(given)


def test_value_yuan() -> None:
    assert value_yuan(2000) == "20.00" and value_yuan(5) == "0.05"


def test_codes_in_payloads() -> None:
    assert codes_in({"coupon_code": "A", "coupons": ["B", {"code": "C"}, "A", 7, None, {"x": 1}]}) == ["A", "B", "C"]
    assert codes_in({"coupons": "A"}) == [] and codes_in({"coupon_code": 5}) == []
    assert codes_in(["A"]) == [] and codes_in(None) == []
    assert len(codes_in({"coupons": [str(i) for i in range(100)]})) == 20


def test_order_ids() -> None:
    assert order_id_in({"order_id": " E1 "}) == "E1" and order_id_in({"order_id": 42}) == "42"
    assert order_id_in({"order_id": True}) is None and order_id_in({}) is None and order_id_in({"order_id": ""}) is None
