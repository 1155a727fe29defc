"""The ``email`` connector: journey messages sent through an SMTP server (STARTTLS or SMTPS, AUTH).

Outbound only (channel ``email``); there is no inbound side. One delivery is one SMTP session:
connect, EHLO, STARTTLS (or implicit TLS), EHLO again, AUTH when a username is configured, then
MAIL/RCPT/DATA for one recipient — the customer's ``email`` identity. The return value is the
Message-ID, derived from the idempotency key (see :mod:`connectors.email.message`).

Errors are :class:`~connectors.email.errors.EmailDeliveryError` with ``retryable`` set: SMTP 4xx
replies, timeouts and dropped connections may be retried; 5xx replies, authentication failures,
missing STARTTLS and untrusted certificates may not.
"""

from __future__ import annotations

import base64
import re
import smtplib
import ssl
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from connectors.base import Connector, OutboundMessage
from connectors.email.errors import EmailDeliveryError, MissingRecipient
from connectors.email.message import compose
from wording import Msg, message_of

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_HOST = re.compile(r"^[A-Za-z0-9.\-:\[\]]+$")


class EmailSettings(BaseModel):
    """Where and how to reach the SMTP server; shown on the settings page."""

    model_config = ConfigDict(extra="forbid")
    host: str = Field(min_length=1, max_length=253, examples=["smtp.exmail.qq.com"],
                      description="SMTP server host name or IP address")
    port: int = Field(default=587, ge=1, le=65535, description="587 for STARTTLS, 465 for SMTPS (ssl), 25 for relays")
    starttls: bool = Field(default=True, description="upgrade the connection with STARTTLS before AUTH and sending")
    ssl: bool = Field(default=False, description="implicit TLS from the first byte (SMTPS, usually port 465)")
    from_address: str = Field(min_length=3, max_length=254, examples=["hello@shop.example.com"],
                              description="sender address (envelope and From header)")
    from_name: str = Field(default="", max_length=100, examples=["潮汐商城"], description="sender display name")
    verify_tls: bool = Field(default=True, description="check the server's certificate and host name; turn off "
                                                       "only for test servers with self-signed certificates")
    timeout_seconds: float = Field(default=30, gt=0, le=300, description="per network operation")
    helo_name: str = Field(default="", max_length=253,
                           description="name sent in EHLO; empty: this machine's fully qualified name")
    list_unsubscribe: str = Field(default="", max_length=2000, examples=["mailto:unsubscribe@shop.example.com"],
                                  description="List-Unsubscribe header (a mailto: or https: URL); empty: none")

    @field_validator("host", "helo_name")
    @classmethod
    def _host(cls, value: str) -> str:
        value = value.strip()
        if value and not _HOST.match(value):
            raise ValueError(Msg("must be a host name or IP address, without scheme, port or spaces"))
        return value

    @field_validator("from_address")
    @classmethod
    def _address(cls, value: str) -> str:
        value = value.strip()
        if not _EMAIL.match(value):
            raise ValueError(Msg("must be an email address such as hello@shop.example.com"))
        return value

    @field_validator("list_unsubscribe")
    @classmethod
    def _unsubscribe(cls, value: str) -> str:
        value = value.strip()
        if value and not value.startswith(("mailto:", "https:", "http:")):
            raise ValueError(Msg("must be a mailto:, https: or http: URL"))
        return value

    @model_validator(mode="after")
    def _one_tls_mode(self) -> EmailSettings:
        if self.ssl and self.starttls:
            raise ValueError(Msg("choose one: ssl (implicit TLS, port 465) or starttls (port 587), not both"))
        return self


class EmailSecrets(BaseModel):
    """SMTP AUTH credentials; write-only, encrypted at rest. No username: no AUTH (an open relay)."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)
    username: str = Field(default="", max_length=320, description="SMTP AUTH user name; empty: do not log in")
    password: SecretStr = Field(default=SecretStr(""), description="SMTP AUTH password or app password")


def tls_context(verify: bool) -> ssl.SSLContext:
    """The client TLS context: the system's trust store and host name check, unless ``verify`` is off."""
    context = ssl.create_default_context()
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def recipient(identities: dict[str, str]) -> str:
    """The customer's email address, or :class:`MissingRecipient`."""
    address = str(identities.get("email") or "").strip()
    if not address:
        raise MissingRecipient(Msg("the customer has no email identity, so there is nowhere to send this email; "
                                   "collect an email address (events with customer.email) or use another channel"))
    if not _EMAIL.match(address) or any(c in address for c in "\r\n<>,"):
        raise MissingRecipient(Msg("the customer's email identity is not a deliverable address; correct it on the "
                                   "customer's profile"))
    return address


def _reply(exc: smtplib.SMTPResponseException) -> str:
    text = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
    return f"{exc.smtp_code} {' '.join(text.split())[:200]}"


def _transient(code: int) -> bool:
    return 400 <= code < 500


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def login(smtp: smtplib.SMTP, username: str, password: str) -> None:
    """AUTH with ``smtplib``, or — for non-ASCII credentials, which ``smtplib`` cannot encode — AUTH PLAIN
    or LOGIN with the UTF-8 bytes (RFC 4616)."""
    if username.isascii() and password.isascii():
        smtp.login(username, password)
        return
    smtp.ehlo_or_helo_if_needed()
    offered = smtp.esmtp_features.get("auth", "").upper().split()
    user, secret = username.encode("utf-8"), password.encode("utf-8")
    if "PLAIN" in offered:
        code, reply = smtp.docmd("AUTH", "PLAIN " + _b64(b"\0" + user + b"\0" + secret))
    elif "LOGIN" in offered:
        code, reply = smtp.docmd("AUTH", "LOGIN " + _b64(user))
        if code == 334:
            code, reply = smtp.docmd(_b64(secret))
    else:
        raise smtplib.SMTPException(Msg("the server offers neither AUTH PLAIN nor AUTH LOGIN, which a non-ASCII "
                                        "username or password needs"))
    if code != 235:
        raise smtplib.SMTPAuthenticationError(code, reply)


class EmailConnector(Connector):
    kind = "email"
    label = {"zh-CN": "邮件（SMTP）", "en": "Email (SMTP)"}
    Settings = EmailSettings
    Secrets = EmailSecrets
    channels = ("email",)

    def deliver(self, message: OutboundMessage, settings: Any, secrets: Any) -> str:
        to = recipient(message.identities)
        mail = compose(key=message.key, content=message.content, to=to, from_address=settings.from_address,
                       from_name=settings.from_name, subject=message.options.get("subject"),
                       attachments=list(message.attachments), list_unsubscribe=settings.list_unsubscribe)
        password = secrets.password.get_secret_value() if secrets.password else ""
        if secrets.username and not (settings.starttls or settings.ssl):
            raise EmailDeliveryError(Msg("refusing to send the SMTP password over an unencrypted connection: turn on "
                                         "starttls (port 587) or ssl (port 465), or remove the username for a relay "
                                         "that needs no login"))
        where = f"SMTP server {settings.host}:{settings.port}"
        try:
            self._send(mail, to, settings, secrets.username, password)
        except EmailDeliveryError:
            raise
        except smtplib.SMTPAuthenticationError as exc:
            raise EmailDeliveryError(Msg("%(where)s refused the login (%(value)s): check the username and password "
                                         "(many providers need an app password for SMTP)", where=where,
                                         value=_reply(exc)),
                                     retryable=_transient(exc.smtp_code)) from None
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            said = "; ".join(f"{code} {msg.decode('utf-8', 'replace')[:200]}" for code, msg in exc.recipients.values())
            raise EmailDeliveryError(Msg("%(where)s refused the recipient (%(said)s)", where=where, said=said),
                                     retryable=bool(codes) and all(_transient(c) for c in codes)) from None
        except smtplib.SMTPResponseException as exc:  # sender refused, data refused, HELO refused, connect refused
            retry = Msg("try again later") if _transient(exc.smtp_code) else Msg("retrying will not help")
            raise EmailDeliveryError(Msg("%(where)s answered %(value)s (%(retry)s)", where=where, value=_reply(exc),
                                         retry=retry),
                                     retryable=_transient(exc.smtp_code)) from None
        except smtplib.SMTPNotSupportedError as exc:
            raise EmailDeliveryError(Msg("%(where)s does not support what the settings ask for: %(exc)s — turn off "
                                         "starttls for a server without it (only without a username), or use the "
                                         "provider's submission port", where=where, exc=message_of(exc))) from None
        except ssl.SSLCertVerificationError as exc:
            raise EmailDeliveryError(Msg("%(where)s presented a certificate that did not verify "
                                         "(%(verify_message)s): fix the server's certificate or the host name; "
                                         "verify_tls=false is for test servers only", where=where,
                                         verify_message=exc.verify_message)) from None
        except ssl.SSLError as exc:
            raise EmailDeliveryError(Msg("TLS with %(where)s failed (%(value)s): check the port matches the TLS mode "
                                         "(465: ssl, 587: starttls)", where=where, value=exc.reason or exc)) from None
        except smtplib.SMTPServerDisconnected as exc:
            raise EmailDeliveryError(Msg("%(where)s closed the connection (%(exc)s); will retry", where=where,
                                         exc=message_of(exc)), retryable=True) from None
        except smtplib.SMTPException as exc:  # e.g. no AUTH mechanism in common (before OSError: its subclass)
            raise EmailDeliveryError(Msg("%(where)s: %(exc)s", where=where, exc=message_of(exc))) from None
        except (TimeoutError, OSError) as exc:
            raise EmailDeliveryError(Msg("could not talk to %(where)s: %(name)s: %(exc)s; will retry", where=where,
                                         name=type(exc).__name__, exc=message_of(exc)),
                                     retryable=True) from None
        return str(mail["Message-ID"])

    def _send(self, mail: Any, to: str, settings: Any, username: str, password: str) -> None:
        context = tls_context(settings.verify_tls)
        helo = settings.helo_name or None
        smtp: smtplib.SMTP
        if settings.ssl:
            smtp = smtplib.SMTP_SSL(settings.host, settings.port, timeout=settings.timeout_seconds,
                                    local_hostname=helo, context=context)
        else:
            smtp = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout_seconds, local_hostname=helo)
        with smtp:
            smtp.ehlo()
            if settings.starttls and not settings.ssl:
                smtp.starttls(context=context)
                smtp.ehlo()
            if username:
                login(smtp, username, password)
            smtp.send_message(mail, from_addr=settings.from_address, to_addrs=[to])
