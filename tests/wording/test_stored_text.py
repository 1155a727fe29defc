"""A Msg saved as text reads back as the same Msg; anything else stored reads back verbatim, and never raises."""

from __future__ import annotations

import json

import pytest

from designer.i18n import translate
from wording import Msg, joined, verbatim
from wording.stored import MAX_STORED, PREFIX, read_stored, stored, stored_english, stored_msg

REFUSED = "WeCom refused the call: %(detail)s"


def test_a_msg_round_trips_with_its_template_and_values() -> None:
    message = Msg("sending quarantine entry %(id)s again failed: %(error)s", id=7,
                  error=Msg(REFUSED, detail="invalid corpid, hint: [1]"))
    text = stored(message)
    assert text.startswith(PREFIX)
    back = read_stored(text)
    assert back == message and back.template == message.template
    assert back.values["id"] == 7 and back.values["error"].template == REFUSED
    assert stored_english(text) == str(message) and type(stored_english(text)) is str


def test_a_msg_without_values_keeps_a_literal_percent() -> None:
    message = Msg("at most 50% of the budget")
    assert read_stored(stored(message)) == "at most 50% of the budget"


def test_joined_problems_round_trip() -> None:
    message = joined([Msg("line %(n)s", n=n) for n in range(40)])
    assert read_stored(stored(message)) == message


def test_verbatim_words_and_plain_text_are_stored_as_they_are() -> None:
    assert stored(verbatim("ECONNRESET by peer")) == "ECONNRESET by peer"
    assert stored("a plain reason") == "a plain reason"
    assert stored("a plain reason that is long", limit=7) == "a plain"


def test_legacy_plain_text_reads_back_verbatim_in_every_language() -> None:
    legacy = "RuntimeError: the shop said no"
    back = read_stored(legacy)
    assert back == legacy and back.template == "%(detail)s"
    assert translate(back, "zh-CN") == legacy
    assert stored_english(legacy) == legacy and stored_english(None) is None and read_stored(None) is None


def test_plain_text_that_looks_like_the_stored_form_stays_plain() -> None:
    sneaky = PREFIX + json.dumps({"t": "%(a)s", "v": {"a": "forged"}})
    text = stored(verbatim(sneaky))
    assert read_stored(text) == sneaky  # a platform's words never become one of our sentences


def test_a_long_value_is_clipped_not_the_encoding() -> None:
    message = Msg(REFUSED, detail="x" * 5000)
    text = stored(message, limit=300)
    assert len(text) <= 300
    back = read_stored(text)
    assert back.template == REFUSED and back.endswith("…") and back.startswith("WeCom refused the call: xxx")


def test_clipping_counts_json_escapes_and_nested_values() -> None:
    message = Msg("%(a)s / %(b)s", a='"\\' * 3000, b=Msg(REFUSED, detail="中文" * 3000))
    for limit in (120, 500, 2000):
        text = stored(message, limit=limit)
        assert len(text) <= limit and read_stored(text).template == "%(a)s / %(b)s", limit


def test_a_template_too_long_for_the_limit_falls_back_to_clipped_english() -> None:
    text = stored(Msg("a template much longer than the limit allows: %(x)s", x="v"), limit=20)
    assert text == "a template much long" and read_stored(text) == text


def test_a_value_json_cannot_hold_is_kept_as_its_text_or_the_english() -> None:
    from decimal import Decimal

    assert read_stored(stored(Msg("amount %(a)s", a=Decimal("1.50")))) == "amount 1.50"
    text = stored(Msg("amount %(a).1f", a=Decimal("1.50")))  # formats a number, not its text: keep the English
    assert text == "amount 1.5" and read_stored(text) == "amount 1.5"


@pytest.mark.parametrize("hostile", [
    PREFIX + "{not json",
    PREFIX + "[]",
    PREFIX + '{"t": 3, "v": {}}',
    PREFIX + '{"t": "%(a)s", "v": []}',
    PREFIX + '{"t": "%(a)s", "v": {"a": [1, 2]}}',
    PREFIX + '{"t": "%(a)s", "v": {}, "x": 1}',
    PREFIX + '{"t": "%(a)s", "v": {"b": "1"}}',          # a placeholder without its value
    PREFIX + '{"t": "%s", "v": {"a": "1"}}',             # a positional conversion
    PREFIX + '{"t": "%(a)999999999s", "v": {"a": "1"}}',  # a width that would make a gigabyte
    PREFIX + json.dumps({"t": "%(a)s" * 5000, "v": {"a": "y" * 50}}),  # a value repeated into megabytes
    PREFIX + "[" * 50000 + "]" * 50000,
    PREFIX + '{"t": "x", "v": {"a": NaN}}',
    PREFIX + '{"t": "%(a)s", "v": {"a": {"t": "%(b)s", "v": {"b": {"t": "%(c)s", "v": "c"}}}}}',
    PREFIX + "x" * (MAX_STORED + 10),
])
def test_malformed_or_hostile_stored_text_is_shown_verbatim(hostile: str) -> None:
    back = read_stored(hostile)
    assert back == hostile
    assert translate(back, "zh-CN") == hostile and translate(back, "en") == hostile


def test_deep_nesting_is_refused() -> None:
    form: dict[str, object] = {"t": "end", "v": {}}
    for _ in range(40):
        form = {"t": "(%(a)s)", "v": {"a": form}}
    text = PREFIX + json.dumps(form)
    assert read_stored(text) == text


def test_a_stored_msg_is_translated_where_it_is_shown() -> None:
    text = stored(Msg("sending quarantine entry %(id)s again failed: %(error)s", id=3,
                      error=Msg("no connector '%(connector_id)s'", connector_id="shop-1")))
    assert translate(read_stored(text), "en") == "sending quarantine entry 3 again failed: no connector 'shop-1'"
    chinese = translate(read_stored(text), "zh-CN")
    assert "没有连接器「shop-1」" in chinese and "failed" not in chinese


def test_stored_msg_is_the_msg_of_the_stored_form_and_none_for_plain_text() -> None:
    message = Msg("WeCom refused the call: %(detail)s", detail="recursion")
    found = stored_msg(stored(message))
    assert found is not None and found.template == message.template and found.values == {"detail": "recursion"}
    for plain in ("RecursionError: maximum recursion depth exceeded", stored(verbatim("ECONNRESET")),
                  PREFIX + "{not json", PREFIX + '{"t": "%(x)s", "v": {}, "k": 1}', PREFIX + "x" * MAX_STORED):
        assert stored_msg(plain) is None, plain
