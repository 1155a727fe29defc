"""Email through SMTP: the ``email`` channel of ``action.send_message`` (outbound only)."""

from connectors.email.connector import EmailConnector, EmailSecrets, EmailSettings, recipient, tls_context
from connectors.email.errors import EmailDeliveryError, MissingRecipient
from connectors.email.message import compose, message_id, subject_and_body

__all__ = [
    "EmailConnector",
    "EmailDeliveryError",
    "EmailSecrets",
    "EmailSettings",
    "MissingRecipient",
    "compose",
    "message_id",
    "recipient",
    "subject_and_body",
    "tls_context",
]
