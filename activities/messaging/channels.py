"""Message channels. ``dry-run`` records the message and sends nothing (demo, preview, tests).

A channel is a callable that delivers one rendered message and returns a provider
message id. Channels backed by outside platforms (WeCom, WeChat OA, SMS, email,
webhook) register themselves here when their connector is configured; a send to a
channel that is not configured is recorded as ``skipped: channel not configured``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

CHANNELS = ("dry-run", "wecom", "wechat_oa", "sms", "email", "webhook")

#: channel name → deliver(customer, content, key, config) → provider message id
Deliver = Callable[[dict[str, Any], str, str, dict[str, Any]], str]
_delivery: dict[str, Deliver] = {}


def register(channel: str, deliver: Deliver) -> None:
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel '{channel}'; channels are {', '.join(CHANNELS)}")
    _delivery[channel] = deliver


def delivery(channel: str) -> Deliver | None:
    if channel == "dry-run":
        return _dry_run
    return _delivery.get(channel)


def _dry_run(customer: dict[str, Any], content: str, key: str, config: dict[str, Any]) -> str:
    return f"dry-run:{key}"
