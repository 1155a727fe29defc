"""Why an email could not be handed over, and whether trying again later can help.

Every error the email connector raises while delivering is an :class:`EmailDeliveryError`. Its
``retryable`` flag is the contract with the caller (``action.send_message``): ``True`` for a
temporary problem (the server is unreachable, answered 4xx, the connection dropped) — retry with
the same idempotency key; ``False`` for one that retrying cannot fix (no email address, a wrong
password, a 5xx refusal, an untrusted certificate) — fail the node at once.

Messages name the problem and the fix; they never contain the SMTP password.
"""

from __future__ import annotations


class EmailDeliveryError(Exception):
    """An email could not be handed to the SMTP server."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class MissingRecipient(EmailDeliveryError, ValueError):
    """The customer has no (usable) ``email`` identity: nothing to send to, never retryable."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)
