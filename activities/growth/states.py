"""The ``state`` of a WeCom contact way (and the ``scene_str`` of an OA parametric QR code): short
codes that name a channel or a referral participant, mapped back in our database. Pure: no I/O.

WeCom limits ``state`` to 30 characters (externalcontact/add_contact_way, docs/growth.md), so a
campaign id and an inviter's customer id (``c_`` + 20 hex) cannot be written into it. Each channel and
each referral participant gets a small integer instead, written in base 36:

==============================  ============================================  =====================
kind                            state                                          example
==============================  ============================================  =====================
channel code (渠道活码)           ``tfc`` + channel number                         ``tfc1b``
referral participant (裂变)      ``tfr`` + campaign number + ``.`` + participant  ``tfr3.2n9i``
==============================  ============================================  =====================

Campaign and participant numbers up to 36**12 keep the longest state at 28 characters. A state that
is not ours (another tool's, or a console-made code's) decodes to ``None`` and is kept as it was.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from engine.text import Msg

#: WeCom: state ≤ 30 characters; the OA's scene_str is 1–64 characters, so the same codes fit both
MAX_STATE = 30
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"
_MAX_NUMBER = 36**12 - 1
_PATTERN = re.compile(r"^tf(?:c([0-9a-z]{1,12})|r([0-9a-z]{1,12})\.([0-9a-z]{1,12}))$")


@dataclass(frozen=True)
class State:
    kind: Literal["channel", "referral"]
    #: channel number, or campaign number
    number: int
    #: participant number (referral only)
    participant: int | None = None


def base36(number: int) -> str:
    if number < 0 or number > _MAX_NUMBER:
        raise ValueError(Msg("%(number)s is outside 0..36**12-1", number=number))
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = _DIGITS[rest] + out
        if number == 0:
            return out


def channel_state(channel_no: int) -> str:
    return "tfc" + base36(channel_no)


def referral_state(campaign_no: int, participant_no: int) -> str:
    state = f"tfr{base36(campaign_no)}.{base36(participant_no)}"
    assert len(state) <= MAX_STATE
    return state


def parse_state(state: str) -> State | None:
    """Our code in a callback's ``State`` (or an OA ``qrscene_…`` key), or None for anything else."""
    found = _PATTERN.match(state.strip()) if state else None
    if found is None:
        return None
    if found.group(1) is not None:
        return State("channel", int(found.group(1), 36))
    return State("referral", int(found.group(2), 36), int(found.group(3), 36))


def check_length(value: str, what: str = "state") -> str:
    """WeCom refuses a state or remark over 30 characters: say so before calling it."""
    if len(value) > MAX_STATE:
        raise ValueError(Msg("%(what)s is %(count)s characters; WeCom takes at most %(limit)s",
                             what=what, count=len(value), limit=MAX_STATE))
    return value
