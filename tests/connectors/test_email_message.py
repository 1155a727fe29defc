"""Composing the email for a journey message: subject, body, Message-ID, headers (pure, no server)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from connectors.email import EmailDeliveryError, compose, message_id, subject_and_body
from connectors.email.message import one_line


@pytest.mark.parametrize(("content", "subject", "expected"), [
    ("标题\n正文第一行\n正文第二行", None, ("标题", "正文第一行\n正文第二行")),
    ("\n\n  标题  \n\n正文", None, ("标题", "正文")),
    ("只有一行", None, ("只有一行", "只有一行")),
    ("第一行\n第二行", "明确的主题", ("明确的主题", "第一行\n第二行")),
    ("第一行\n第二行", "   ", ("第一行", "第二行")),
    ("", None, ("", "")),
])
def test_subject_is_explicit_or_the_first_line(content: str, subject: str | None,
                                                expected: tuple[str, str]) -> None:
    assert subject_and_body(content, subject) == expected


def test_headers_never_carry_line_breaks_and_long_subjects_are_trimmed() -> None:
    assert one_line("a\r\nBcc: x@y.z\tb") == "a Bcc: x@y.z b"
    assert len(one_line("长" * 500)) == 200 and one_line("长" * 500).endswith("…")


def test_message_id_is_stable_per_key_and_hides_it() -> None:
    first = message_id("journey/w/c_1/hello/1", "hello@shop.example.com")
    assert first == message_id("journey/w/c_1/hello/1", "hello@shop.example.com")
    assert first != message_id("journey/w/c_1/hello/2", "hello@shop.example.com")
    assert first.startswith("<tf.") and first.endswith("@shop.example.com>") and "c_1" not in first


def test_compose_builds_a_utf8_message_with_attachment_links() -> None:
    mail = compose(key="k/1", content="生日快乐\n送你一张券", to="li.si@example.com",
                   from_address="hi@shop.example.com", from_name="潮汐商城",
                   attachments=["https://cdn.example.com/card.png", " "],
                   now=datetime(2026, 5, 1, 2, 0, tzinfo=UTC))
    assert mail["Subject"] == "生日快乐" and mail["To"] == "li.si@example.com"
    assert str(mail["From"]) == "潮汐商城 <hi@shop.example.com>"
    assert mail["Date"] == "Fri, 01 May 2026 02:00:00 +0000"
    assert mail.get_content().replace("\r\n", "\n") == "送你一张券\n\nhttps://cdn.example.com/card.png\n"
    wire = mail.as_bytes()
    assert wire.isascii() and b"=?utf-8?" in wire  # RFC 2047 encoded-words, base64 body: 7-bit clean


def test_long_ascii_lines_are_base64_encoded() -> None:
    mail = compose(key="k", content="subject\n" + "x" * 2000, to="a@b.example", from_address="hi@shop.example.com")
    assert mail["Content-Transfer-Encoding"] == "base64"
    assert max(len(line) for line in mail.as_bytes().splitlines()) <= 998


def test_an_unusable_address_is_a_permanent_error() -> None:
    with pytest.raises(EmailDeliveryError, match="not a deliverable address") as bad:
        compose(key="k", content="x", to="<x>@y.z", from_address="hi@shop.example.com")
    assert bad.value.retryable is False
