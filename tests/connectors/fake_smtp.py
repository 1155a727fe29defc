"""An SMTP server on loopback (aiosmtpd) for the email connector's tests: a mailbox, LOGIN/PLAIN auth, and
STARTTLS or implicit TLS with a self-signed certificate."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import threading
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from connectors.email import (
    EmailSettings,
)

USER = "shop@example.com"
PASSWORD = "app-password-0001"


def self_signed(directory: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """A throwaway certificate for ``host`` (IP SAN and localhost), valid for a day: (cert, key) files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tideflow test smtp")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host)),
                                                       x509.DNSName("localhost")]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    tls: bool
    login: str | None

    @property
    def message(self) -> EmailMessage:
        return message_from_bytes(self.raw, policy=policy.default)


@dataclass
class Mailbox:
    """The aiosmtpd handler: records what arrives; scripted refusals per recipient or for DATA."""

    received: list[Received] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)  # (mechanism, login) that succeeded
    password: str = PASSWORD
    refuse_rcpt: dict[str, str] = field(default_factory=dict)
    data_reply: str | None = None
    arrived: threading.Event = field(default_factory=threading.Event)

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        if address in self.refuse_rcpt:
            return self.refuse_rcpt[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.data_reply:
            return self.data_reply
        transport = server.transport
        tls = transport is not None and transport.get_extra_info("ssl_object") is not None
        data = session.auth_data if session.authenticated else None
        login = data.login.decode() if isinstance(data, LoginPassword) else None
        self.received.append(Received(str(envelope.mail_from), list(envelope.rcpt_tos),
                                      bytes(envelope.original_content or b""), tls, login))
        self.arrived.set()
        return "250 Message accepted for delivery"

    def authenticate(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                     auth_data: Any) -> AuthResult:
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login == USER.encode()
              and auth_data.password == self.password.encode())
        if ok:
            self.logins.append((mechanism, auth_data.login.decode()))
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


class SmtpServer:
    """aiosmtpd on 127.0.0.1 with the self-signed certificate.

    ``mode``: ``starttls`` (STARTTLS required, AUTH required and only over TLS), ``smtps`` (implicit
    TLS, AUTH required), ``plain`` (no TLS, no AUTH: a local relay).
    """

    def __init__(self, cert: tuple[Path, Path], mode: str = "starttls", exclude_auth: tuple[str, ...] = ()) -> None:
        self.mailbox = Mailbox()
        self.port = free_port()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(cert[0]), str(cert[1]))
        options: dict[str, Any] = {"authenticator": self.mailbox.authenticate, "auth_exclude_mechanism":
                                   list(exclude_auth)}
        if mode == "starttls":
            options.update(tls_context=context, require_starttls=True, auth_required=True, auth_require_tls=True)
        elif mode == "smtps":
            options.update(ssl_context=context, auth_required=True, auth_require_tls=False)
        self.controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port, **options)
        self.mode = mode

    def __enter__(self) -> SmtpServer:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()

    def settings(self, **overrides: Any) -> EmailSettings:
        base: dict[str, Any] = {"host": "127.0.0.1", "port": self.port, "from_address": "hello@shop.example.com",
                                "from_name": "潮汐商城", "verify_tls": False, "timeout_seconds": 5,
                                "helo_name": "tideflow.test", "starttls": self.mode == "starttls",
                                "ssl": self.mode == "smtps"}
        return EmailSettings.model_validate({**base, **overrides})
