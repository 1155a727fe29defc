"""SMS through a configurable HTTP gateway: the ``sms`` channel of ``action.send_message`` (outbound only)."""

from connectors.sms.connector import DEFAULT_TEMPLATE, SmsConnector, SmsSecrets, SmsSettings
from connectors.sms.gateway import MissingRecipient, SmsDeliveryError, lookup, parse_template, render

__all__ = [
    "DEFAULT_TEMPLATE",
    "MissingRecipient",
    "SmsConnector",
    "SmsDeliveryError",
    "SmsSecrets",
    "SmsSettings",
    "lookup",
    "parse_template",
    "render",
]
