"""Replay protection for signed pushes whose signature covers a timestamp (WeCom, WeChat OA).

A valid signature proves the platform made a push, not that it made it *now*: someone who captured one
(a proxy log, a leaked request) could send it again for ever. Checking the signed timestamp against this
server's clock closes that: a push outside the window is refused like a bad signature (401). Pushes
inside it that arrive twice (the platform's own retries) dedupe on the event id as always.
"""

from __future__ import annotations

import time

from connectors.errors import SignatureVerificationError
from wording import Msg

#: the window platforms' retries fit in easily (WeCom retries a callback three times within seconds)
DEFAULT_WINDOW_SECONDS = 300


def check_fresh(timestamp: str | int, window: int, now: float | None = None, what: str = "push") -> None:
    """Refuse a signed ``timestamp`` (unix seconds) more than ``window`` seconds off this server's clock
    (0 disables the check); call it after the signature verified."""
    if not window:
        return
    try:
        age = (time.time() if now is None else now) - int(timestamp)
    except (TypeError, ValueError):
        raise SignatureVerificationError(Msg("the %(what)s's timestamp is not a number of seconds",
                                             what=what)) from None
    if abs(age) > window:
        raise SignatureVerificationError(
            Msg("a %(what)s whose timestamp is %(age)s s off this server's clock (the window is %(window)s s): a "
                "replay, or the server clock is wrong", what=what, age=format(age, '.0f'), window=window))
