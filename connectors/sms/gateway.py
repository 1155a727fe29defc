"""The HTTP SMS gateway protocol, as configured: the request body template, response checks, errors.

Pure functions (no I/O) used by :class:`connectors.sms.connector.SmsConnector`.

The body template is JSON whose *string values* may contain the placeholders ``{phone}``,
``{content}`` and ``{key}``. The template is parsed first and the placeholders are replaced
inside the parsed strings, so a message with quotes, line breaks or emoji can never break the
JSON (and a message that itself contains ``{phone}`` is not expanded again).
"""

from __future__ import annotations

import json
import re
from typing import Any

from wording import Msg

PLACEHOLDER = re.compile(r"\{(phone|content|key)\}")
REQUIRED_PLACEHOLDERS = ("phone", "content")


class SmsDeliveryError(Exception):
    """A text message could not be handed to the gateway. ``retryable``: whether trying again may help."""

    def __init__(self, message: str, *, retryable: bool = False, status: int | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status


class MissingRecipient(SmsDeliveryError, ValueError):
    """The customer has no ``phone`` identity: nothing to send to, never retryable."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)


def parse_template(text: str) -> Any:
    """The parsed body template, or ValueError naming what is wrong with it."""
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(Msg("body_template is not JSON (%(msg)s at line %(lineno)s column %(colno)s); put the "
                             "placeholders inside JSON strings: {\"mobile\": \"{phone}\", \"text\": \"{content}\"}",
                             msg=exc.msg, lineno=exc.lineno, colno=exc.colno)) from None
    found = set(_placeholders(parsed))
    missing = [p for p in REQUIRED_PLACEHOLDERS if p not in found]
    if missing:
        raise ValueError(Msg("body_template must use %(value)s inside a JSON string",
                             value=', '.join('{' + m + '}' for m in missing)))
    return parsed


def _placeholders(value: Any) -> list[str]:
    if isinstance(value, str):
        return PLACEHOLDER.findall(value)
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in [*_placeholders(k), *_placeholders(v)]]
    if isinstance(value, list):
        return [p for v in value for p in _placeholders(v)]
    return []


def render(template: Any, values: dict[str, str]) -> Any:
    """``template`` (parsed JSON) with the placeholders in its strings (keys and values) replaced."""
    if isinstance(template, str):
        return PLACEHOLDER.sub(lambda m: values[m.group(1)], template)
    if isinstance(template, dict):
        return {render(k, values): render(v, values) for k, v in template.items()}
    if isinstance(template, list):
        return [render(v, values) for v in template]
    return template


def lookup(data: Any, path: str) -> tuple[bool, Any]:
    """``(found, value)`` at a dotted path (``data.list.0.id``; list items by index, negative from the end)."""
    current = data
    for part in path.split("."):
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and re.fullmatch(r"-?\d+", part) and -len(current) <= int(part) < len(current):
            current = current[int(part)]
        else:
            return False, None
    return True, current


def matches(value: Any, expected: str | None) -> bool:
    """Success check: ``expected`` None → truthy; else equal as text (``"0"`` matches 0, ``"true"`` True)."""
    if expected is None:
        return bool(value)
    if isinstance(value, str):
        return value == expected
    return json.dumps(value, ensure_ascii=False) == expected or str(value) == expected


def national(phone: str) -> str:
    """A mainland China number without ``+86`` (what most domestic gateways want); others unchanged."""
    return phone[3:] if phone.startswith("+86") and len(phone) == 14 else phone


def mask(phone: str) -> str:
    """``138****8000``: how a phone number may appear in errors and logs."""
    digits = re.sub(r"\D", "", phone)
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    return digits[:3] + "****" + digits[-4:] if len(digits) >= 7 else "****"


def classify(status: int) -> bool | None:
    """HTTP status → None (2xx, delivered), True (retryable: 408, 425, 429, 5xx), False (permanent)."""
    if 200 <= status < 300:
        return None
    return status in (408, 425, 429) or status >= 500
