"""The bounded JSON parser every entrance uses (engine/bounded_json.py): each bad body is a clear
refusal with a 4xx status naming the limit, never an exception that would become a 500."""

from __future__ import annotations

import json

import pytest

from engine.bounded_json import InputRejected, Limits, parse

LIMITS = Limits(max_bytes=1_000_000, max_depth=32, max_string=10_000)


@pytest.mark.parametrize(("body", "status", "says"), [
    (b"[" * 100_000 + b"]" * 100_000, 400, "nested deeper than the limit of 32"),
    (b'{"payload": ' + b'{"a": ' * 900 + b"1" + b"}" * 900 + b"}", 400, "nested deeper than the limit of 32"),
    (b'{"text": "\\ud800"}', 400, "lone surrogate"),
    (b'{"text": "ok \\udfff tail"}', 400, "lone surrogate"),
    (b'{"text": "\xed\xa0\x80"}', 400, "not UTF-8"),  # a surrogate encoded raw: not UTF-8 either
    ('{"name": "张三"}'.encode("gbk"), 400, "not UTF-8"),
    (b'{"n": ' + b"9" * 5000 + b"}", 400, "cannot be read as JSON"),
    (b'{"n": NaN}', 400, "NaN is not a JSON value"),
    (b'{"n": -Infinity}', 400, "Infinity is not a JSON value"),
    (b'{"text": "' + b"x" * 10_001 + b'"}', 400, "text is 10001 characters long; the limit is 10000"),
    (b'{"' + b"k" * 10_001 + b'": 1}', 400, "characters long"),
    (b'{"a": [1, 2', 400, "not valid JSON"),
    (b"x" * 1_000_001, 413, "larger than the limit of 1000000 bytes"),
])
def test_bad_bodies_are_refused_with_a_reason(body: bytes, status: int, says: str) -> None:
    with pytest.raises(InputRejected, match=says.replace("(", r"\(")) as refused:
        parse(body, LIMITS)
    assert refused.value.status == status and refused.value.fix


def test_the_refusal_names_the_setting_that_raises_a_limit() -> None:
    with pytest.raises(InputRejected) as deep:
        parse(b"[" * 40 + b"]" * 40, LIMITS)
    assert deep.value.setting == "TIDEFLOW_MAX_JSON_DEPTH"
    with pytest.raises(InputRejected) as big:
        parse(b"[" + b"1," * 600_000 + b"1]", LIMITS)
    assert big.value.setting == "TIDEFLOW_MAX_REQUEST_BYTES"


def test_the_path_of_the_bad_string_is_named() -> None:
    with pytest.raises(InputRejected, match=r"events\[1\]\.payload\.note"):
        parse(json.dumps({"events": [{}, {"payload": {"note": "\ud800"}}]}), LIMITS)


def test_real_documents_pass() -> None:
    event = {"id": "o-1", "type": "order.paid", "source": "youzan", "customer": {"phone": "13800138000"},
             "occurred_at": "2026-12-01T10:00:00+08:00", "payload": {"amount": 12900, "note": "🎁 礼物 \u00e9",
                                                                    "items": [{"sku": f"A{i}"} for i in range(500)]}}
    assert parse(json.dumps(event, ensure_ascii=False).encode(), LIMITS) == event
    assert parse(b"\xef\xbb\xbf[1]", LIMITS) == [1]  # a UTF-8 BOM is allowed
    assert parse(b"[" * 32 + b"]" * 32, LIMITS) is not None  # exactly at the limit
