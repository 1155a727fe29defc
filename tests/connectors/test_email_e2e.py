"""End to end: a signed push at /hooks/<id> starts a journey whose message is delivered by the email
connector to a real SMTP server (aiosmtpd on 127.0.0.1, STARTTLS + AUTH), on the time-skipping server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.email import message_id
from tests.connectors.fake_smtp import PASSWORD, USER, SmtpServer, self_signed
from tests.connectors.inbound_kit import HOOK, HOOK_SECRET, Stack, event_body, registered, stack

__all__ = ["registered", "stack"]  # fixtures


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpServer]:
    with SmtpServer(self_signed(tmp_path)) as server:
        yield server


async def test_signed_push_starts_a_journey_whose_email_arrives_over_starttls(stack: Stack, smtp: SmtpServer) -> None:
    await stack.configure(HOOK, "webhook", {}, {"secret": HOOK_SECRET})
    await stack.configure("smtp-main", "email", {
        "host": "127.0.0.1", "port": smtp.port, "starttls": True, "from_address": "hello@shop.example.com",
        "from_name": "潮汐商城", "verify_tls": False, "helo_name": "tideflow.test", "timeout_seconds": 10,
    }, {"username": USER, "password": PASSWORD})
    await stack.publish("signup-welcome", "custom.signed_up", "email",
                        "欢迎加入潮汐，{{ customer.name }}\n\n你的新人券 {{ event.payload.coupon }} 已到账。")

    r = await stack.push(event_body("signup-9", "custom.signed_up", {"coupon": "NEW20"},
                                    email="Zhang.San@Example.com"))
    assert r.status_code == 200, r.text
    [stored] = stack.stored()
    assert stored.customer_id
    result = await stack.journey_result("signup-welcome", stored.customer_id)
    assert result["status"] == "completed"

    [got] = smtp.mailbox.received
    assert got.tls and got.login == USER and smtp.mailbox.logins[0][1] == USER
    assert got.rcpt_tos == ["zhang.san@example.com"]  # the stored identity is normalised
    mail = got.message
    assert mail["Subject"] == "欢迎加入潮汐，张三"
    assert mail.get_content().replace("\r\n", "\n") == "你的新人券 NEW20 已到账。\n"
    key = f"journey/signup-welcome/{stored.customer_id}/hello/1"
    assert mail["Message-ID"] == message_id(key, "hello@shop.example.com")
    [message] = stack.messages("signup-welcome")
    assert message.status == "sent" and message.channel == "email" and message.idempotency_key == key

    again = await stack.push(event_body("signup-9", "custom.signed_up", {"coupon": "NEW20"},
                                        email="Zhang.San@Example.com"))
    assert again.status_code == 200 and len(stack.stored()) == 1
    await asyncio.sleep(0.5)
    assert len(smtp.mailbox.received) == 1
