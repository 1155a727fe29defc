"""Turning a rendered journey message into an RFC 5322 email: subject, body, headers, Message-ID.

Pure functions, no I/O — the SMTP conversation lives in :mod:`connectors.email.connector`.

* **Subject**: ``options["subject"]`` when the send node gives one; otherwise the first non-blank
  line of the content, and the body is the rest (a one-line message is both subject and body).
* **Body**: ``text/plain; charset=utf-8`` (base64 unless ASCII, so it is 7-bit clean); attachment
  URLs (the email channel does not download anything) are listed at the end, one per line.
* **Message-ID**: derived from the idempotency key, ``<tf.<first 32 hex of SHA-256(key)>@<from
  domain>>``. A retry of the same send carries the same Message-ID, so a receiving system (or a
  mailbox's duplicate filter) can tell a resend from a new message; the key itself is not revealed.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from email.errors import MessageError
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from typing import Any

from connectors.email.errors import EmailDeliveryError
from wording import Msg, message_of

SUBJECT_LIMIT = 200
_LINE_BREAKS = re.compile(r"[\r\n\t]+")


def message_id(key: str, from_address: str) -> str:
    """The Message-ID for the send with idempotency ``key``: stable across retries."""
    domain = from_address.rpartition("@")[2] or "tideflow.invalid"
    return f"<tf.{hashlib.sha256(key.encode('utf-8')).hexdigest()[:32]}@{domain}>"


def one_line(text: str, limit: int = SUBJECT_LIMIT) -> str:
    """``text`` as a header value: no line breaks (header injection), trimmed to ``limit`` characters."""
    flat = _LINE_BREAKS.sub(" ", text).strip()
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def subject_and_body(content: str, subject: Any = None) -> tuple[str, str]:
    """``(subject, body)`` for a message: an explicit subject, or the content's first line."""
    if isinstance(subject, str) and subject.strip():
        return one_line(subject), content
    lines = content.strip("\n").splitlines()
    while lines and not lines[0].strip():
        lines.pop(0)
    if not lines:
        return "", content
    first, rest = lines[0], "\n".join(lines[1:]).strip("\n")
    return one_line(first), rest if rest.strip() else content.strip("\n")


def compose(*, key: str, content: str, to: str, from_address: str, from_name: str = "",
            subject: Any = None, attachments: list[str] | None = None, list_unsubscribe: str = "",
            now: datetime | None = None) -> EmailMessage:
    """The email for one send. Raises :class:`EmailDeliveryError` (not retryable) for an unusable address."""
    title, body = subject_and_body(content, subject)
    links = [one_line(a, 2000) for a in attachments or [] if isinstance(a, str) and a.strip()]
    if links:
        body = body.rstrip("\n") + "\n\n" + "\n".join(links)
    mail = EmailMessage(policy=SMTP)
    try:
        mail["From"] = Address(display_name=one_line(from_name), addr_spec=from_address)
    except (ValueError, IndexError, MessageError) as exc:
        raise EmailDeliveryError(Msg("the sender address %(from_address)s is not an email address (%(exc)s); fix "
                                     "from_address in the email connector's settings", from_address=repr(from_address),
                                     exc=message_of(exc))) from None
    try:
        mail["To"] = Address(addr_spec=to)
    except (ValueError, IndexError, MessageError):
        raise EmailDeliveryError(Msg("the customer's email identity is not a deliverable address; correct it on the "
                                     "customer's profile")) from None
    mail["Subject"] = title
    mail["Date"] = format_datetime(now or datetime.now(UTC))
    mail["Message-ID"] = message_id(key, from_address)
    if list_unsubscribe:
        mail["List-Unsubscribe"] = f"<{one_line(list_unsubscribe, 2000)}>"
    text = body if body.endswith("\n") else body + "\n"
    # base64 for non-ASCII text: 7-bit clean, so no server needs 8BITMIME; compact for Chinese text
    plain = text.isascii() and max(len(line) for line in text.splitlines() or [""]) <= 990
    mail.set_content(text, charset="utf-8", cte="7bit" if plain else "base64")
    return mail
