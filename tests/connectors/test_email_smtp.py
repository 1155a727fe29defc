"""The email connector against a real SMTP server (aiosmtpd on 127.0.0.1): STARTTLS, SMTPS, AUTH.

The server's certificate is self-signed, generated here with ``cryptography``; the connector only
accepts it with ``verify_tls=False`` (test servers), and refuses it with the default ``True``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from connectors.base import OutboundMessage
from connectors.email import (
    EmailConnector,
    EmailDeliveryError,
    EmailSecrets,
    EmailSettings,
    MissingRecipient,
    message_id,
)
from tests.connectors.fake_smtp import PASSWORD, USER, SmtpServer, free_port, self_signed

UTF8_PASSWORD = "应用专用密码-0001"
KEY = "journey/welcome/c_0001/hello/1"


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed(tmp_path_factory.mktemp("smtp-tls"))


@pytest.fixture
def smtp(cert: tuple[Path, Path]) -> Iterator[SmtpServer]:
    with SmtpServer(cert) as server:
        yield server


def outbound(content: str = "欢迎加入潮汐会员\n\n张三，你好！\n首单立减 20 元。", key: str = KEY,
             email: str | None = "zhang.san@example.com", **options: Any) -> OutboundMessage:
    identities = {"email": email} if email else {"phone": "+8613800138000"}
    return OutboundMessage(key=key, channel="email", content=content, customer={"id": "c_0001", "name": "张三"},
                           identities=identities, options=options)


def login() -> EmailSecrets:
    return EmailSecrets.model_validate({"username": USER, "password": PASSWORD})


@pytest.mark.parametrize("mechanism", ["LOGIN", "PLAIN"])
@pytest.mark.parametrize("password", [PASSWORD, UTF8_PASSWORD], ids=["ascii", "utf8"])
def test_starttls_auth_and_a_utf8_message_arrive(cert: tuple[Path, Path], mechanism: str, password: str) -> None:
    with SmtpServer(cert, exclude_auth=tuple({"LOGIN", "PLAIN"} - {mechanism})) as smtp:
        smtp.mailbox.password = password
        secrets = EmailSecrets.model_validate({"username": USER, "password": password})
        provider_id = EmailConnector().deliver(outbound(), smtp.settings(), secrets)

    [got] = smtp.mailbox.received
    assert got.tls and got.login == USER
    assert smtp.mailbox.logins == [(mechanism, USER)]
    assert got.mail_from == "hello@shop.example.com" and got.rcpt_tos == ["zhang.san@example.com"]
    mail = got.message
    assert mail["Subject"] == "欢迎加入潮汐会员"
    assert mail["From"].addresses[0].display_name == "潮汐商城"
    assert mail["To"] == "zhang.san@example.com"
    assert mail["Message-ID"] == provider_id == message_id(KEY, "hello@shop.example.com")
    assert mail.get_content_type() == "text/plain" and mail.get_content_charset() == "utf-8"
    assert mail.get_content().replace("\r\n", "\n") == "张三，你好！\n首单立减 20 元。\n"
    assert KEY not in got.raw.decode("ascii", "replace")  # the key is hashed, not revealed


def test_a_resend_carries_the_same_message_id_and_another_send_a_new_one(smtp: SmtpServer) -> None:
    connector = EmailConnector()
    first = connector.deliver(outbound(), smtp.settings(), login())
    again = connector.deliver(outbound(), smtp.settings(), login())
    other = connector.deliver(outbound(key="journey/welcome/c_0001/hello/2"), smtp.settings(), login())
    ids = [r.message["Message-ID"] for r in smtp.mailbox.received]
    assert ids == [first, again, other] and first == again != other
    assert first.startswith("<tf.") and first.endswith("@shop.example.com>")


def test_an_explicit_subject_keeps_the_whole_content_as_body(smtp: SmtpServer) -> None:
    EmailConnector().deliver(outbound("第一行\n第二行", subject="【潮汐】生日快乐\r\nBcc: x@evil.example"),
                             smtp.settings(list_unsubscribe="mailto:unsubscribe@shop.example.com"), login())
    mail = smtp.mailbox.received[0].message
    assert mail["Subject"] == "【潮汐】生日快乐 Bcc: x@evil.example"  # a line break cannot inject a header
    assert mail["Bcc"] is None
    assert mail.get_content().replace("\r\n", "\n") == "第一行\n第二行\n"
    assert mail["List-Unsubscribe"] == "<mailto:unsubscribe@shop.example.com>"


def test_the_self_signed_certificate_is_refused_unless_verify_tls_is_off(smtp: SmtpServer) -> None:
    with pytest.raises(EmailDeliveryError, match="certificate") as refused:
        EmailConnector().deliver(outbound(), smtp.settings(verify_tls=True), login())
    assert refused.value.retryable is False
    assert "verify_tls" in str(refused.value)
    assert smtp.mailbox.received == [] and smtp.mailbox.logins == []
    assert EmailSettings.model_validate({"host": "smtp.example.com", "from_address": "a@b.example"}).verify_tls


def test_a_wrong_password_is_a_permanent_error_without_the_password_in_it(smtp: SmtpServer) -> None:
    wrong = EmailSecrets.model_validate({"username": USER, "password": "guess-别猜"})
    with pytest.raises(EmailDeliveryError, match="refused the login") as refused:
        EmailConnector().deliver(outbound(), smtp.settings(), wrong)
    assert refused.value.retryable is False
    assert "guess" not in str(refused.value) and PASSWORD not in str(refused.value)
    assert smtp.mailbox.received == []


def test_sending_without_login_is_refused_by_a_server_that_requires_auth(smtp: SmtpServer) -> None:
    with pytest.raises(EmailDeliveryError, match="530") as refused:
        EmailConnector().deliver(outbound(), smtp.settings(), EmailSecrets())
    assert refused.value.retryable is False


def test_the_password_never_travels_unencrypted(smtp: SmtpServer) -> None:
    with pytest.raises(EmailDeliveryError, match="unencrypted") as refused:
        EmailConnector().deliver(outbound(), smtp.settings(starttls=False), login())
    assert refused.value.retryable is False and smtp.mailbox.received == []


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
def test_smtps_on_an_implicit_tls_port(cert: tuple[Path, Path]) -> None:
    with SmtpServer(cert, mode="smtps") as server:
        EmailConnector().deliver(outbound(), server.settings(), login())
        [got] = server.mailbox.received
    assert got.tls and got.login == USER


def test_a_plain_relay_without_tls_or_login(cert: tuple[Path, Path]) -> None:
    with SmtpServer(cert, mode="plain") as server:
        EmailConnector().deliver(outbound("只有一行"), server.settings(), EmailSecrets())
        [got] = server.mailbox.received
    assert not got.tls and got.login is None
    assert got.message["Subject"] == "只有一行" and got.message.get_content().replace("\r\n", "\n") == "只有一行\n"


def test_starttls_missing_on_the_server_is_a_permanent_error(cert: tuple[Path, Path]) -> None:
    with SmtpServer(cert, mode="plain") as server, pytest.raises(EmailDeliveryError, match="STARTTLS") as refused:
        EmailConnector().deliver(outbound(), server.settings(starttls=True), EmailSecrets())
    assert refused.value.retryable is False


def test_4xx_is_retryable_and_5xx_is_not(smtp: SmtpServer) -> None:
    smtp.mailbox.refuse_rcpt["gone@example.com"] = "550 5.1.1 mailbox unavailable"
    smtp.mailbox.refuse_rcpt["full@example.com"] = "452 4.2.2 mailbox full"
    with pytest.raises(EmailDeliveryError, match="550") as gone:
        EmailConnector().deliver(outbound(email="gone@example.com"), smtp.settings(), login())
    with pytest.raises(EmailDeliveryError, match="452") as full:
        EmailConnector().deliver(outbound(email="full@example.com"), smtp.settings(), login())
    smtp.mailbox.data_reply = "451 4.3.0 try again later"
    with pytest.raises(EmailDeliveryError, match="451") as busy:
        EmailConnector().deliver(outbound(), smtp.settings(), login())
    assert (gone.value.retryable, full.value.retryable, busy.value.retryable) == (False, True, True)


def test_an_unreachable_server_is_retryable() -> None:
    settings = EmailSettings.model_validate({"host": "127.0.0.1", "port": free_port(), "from_address": "a@b.example",
                                             "timeout_seconds": 2})
    with pytest.raises(EmailDeliveryError, match="could not talk") as down:
        EmailConnector().deliver(outbound(), settings, EmailSecrets())
    assert down.value.retryable is True


def test_no_email_identity_is_a_permanent_value_error() -> None:
    settings = EmailSettings.model_validate({"host": "127.0.0.1", "from_address": "a@b.example"})
    with pytest.raises(MissingRecipient, match="no email identity") as missing:
        EmailConnector().deliver(outbound(email=None), settings, EmailSecrets())
    assert isinstance(missing.value, ValueError) and missing.value.retryable is False


def test_settings_and_secrets_validate() -> None:
    with pytest.raises(ValidationError, match="not both"):
        EmailSettings.model_validate({"host": "h.example", "from_address": "a@b.example", "ssl": True})
    with pytest.raises(ValidationError, match="email address"):
        EmailSettings.model_validate({"host": "h.example", "from_address": "nobody"})
    with pytest.raises(ValidationError, match="host name"):
        EmailSettings.model_validate({"host": "smtp://h.example", "from_address": "a@b.example"})
    with pytest.raises(ValidationError) as bad:
        EmailSecrets.model_validate({"username": "u", "password": 12345678})
    assert "12345678" not in str(bad.value)  # secrets never echo their input
    schema = EmailSecrets.model_json_schema()
    assert schema["properties"]["password"]["writeOnly"] is True
    assert EmailConnector.channels == ("email",) and EmailConnector.kind == "email"
