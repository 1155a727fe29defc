"""Masking of personal data in free text: Chinese mobile numbers and bank card numbers.

Pure functions, no I/O, so the message archive, the API and log records can all use them.
:func:`mask_text` is what callers want; it applies :func:`mask_bank_card` then :func:`mask_phone`
and is idempotent (masking masked text changes nothing).

Heuristics (documented in docs/profiles.md, tested in tests/activities/profile/test_archive_pii.py):

* **Mobile numbers** — ``1[3-9]`` followed by 9 digits, written together or grouped 3-4-4 with
  spaces or hyphens, optionally after ``+86``, ``86``, ``0086`` or ``(+86)``. Shown as
  ``138****8000`` (first 3, last 4; a country prefix is kept as written). Landlines are not masked.
* **Bank cards** — 13–19 digits, written together or in groups separated by single spaces or
  hyphens, that pass the Luhn check and start like a payment card (3, 4, 5, 6 or 2221–2720:
  UnionPay 62, Visa 4, Mastercard, Amex, JCB, Diners). Shown as ``**** **** **** 1234``
  (last 4 only; the mask hides the length too). Right after a card word (卡号, 银行卡, 账号,
  card …) a Luhn-valid number is masked whatever it starts with.
* **What is left alone** — a number glued to letters or to other digits (``SO13800138000``,
  ``2023-11-15-13800138000``) is part of a longer identifier, not a phone or card. A number right
  after an order word (订单号, 单号, 运单号, 物流单号, 交易号, order no, tracking …) is an order number,
  not a phone or card, even when it would otherwise qualify. Long numbers (20+ digits, e.g. most
  platform order ids) never match. Luhn alone lets one random number in ten through, which is
  why the card prefix is checked too.
"""

from __future__ import annotations

import logging
import re
from typing import Any

CARD_MASK = "**** **** **** "
#: words that, right before a number, say it is a card or account number
CARD_WORDS = ("卡号", "银行卡", "信用卡", "储蓄卡", "借记卡", "账号", "帐号", "账户", "帐户", "card")
#: words that, right before a number, say it is an order / waybill / transaction number
ORDER_WORDS = ("订单", "单号", "运单", "快递单", "物流单", "交易号", "流水号", "编号", "订单编号", "工单",
               "order", "tracking", "invoice")
#: characters that may sit between such a word and the number (号, colon, '#', 'no.', spaces …)
_JOINERS = r"[\s:：#号是为\-]*(?:no\.?|num(?:ber)?\.?|id)?[\s:：#号是为\-]*"
_CONTEXT = 24

_ORDER_BEFORE = re.compile(r"(?:" + "|".join(map(re.escape, ORDER_WORDS)) + r")" + _JOINERS + r"$",
                           re.IGNORECASE)
_CARD_BEFORE = re.compile(r"(?:" + "|".join(map(re.escape, CARD_WORDS)) + r")" + _JOINERS + r"$",
                          re.IGNORECASE)

# A phone: optional country prefix, then 1[3-9]x xxxx xxxx with optional single separators.
# Not glued to a letter or digit on either side, nor joined by - . / to more digits.
_PHONE = re.compile(
    r"(?<![0-9A-Za-z])(?<![0-9][-./])"
    r"(?P<prefix>(?:\(\+?86\)|\+86|0086|86)[ -]?)?"
    r"(?P<number>1[3-9]\d[ -]?\d{4}[ -]?\d{4})"
    r"(?![0-9A-Za-z])(?![-./][0-9])"
)
# A run of digit groups joined by single spaces or hyphens, not glued to letters or digits, and not
# the visible digits of a mask made earlier ("**** **** **** 1234", "138****8000"): masking is idempotent.
_DIGIT_RUN = re.compile(r"(?<![0-9A-Za-z])(?<![0-9][./])(?<!\*{4} )(?<![0-9]\*{4})"
                        r"\d+(?:[ -]\d+)*(?![0-9A-Za-z])(?![./][0-9])(?!\*{4}[0-9])")
_GROUP = re.compile(r"\d+")


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) check every payment card number passes."""
    if not digits.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2 == 1:
            n *= 2
            if n > 9:
                n -= 9
        total += n
    return total % 10 == 0


def card_like_prefix(digits: str) -> bool:
    """Starts like a payment card: Amex/JCB/Diners (3), Visa (4), Mastercard (51–55, 2221–2720),
    Maestro/UnionPay/Discover (5, 6)."""
    if digits[:1] in ("3", "4", "5", "6"):
        return True
    return len(digits) >= 4 and 2221 <= int(digits[:4]) <= 2720


def _after(words: re.Pattern[str], text: str, start: int) -> bool:
    return bool(words.search(text[max(0, start - _CONTEXT):start]))


def is_card_number(digits: str, before: str = "") -> bool:
    """Whether ``digits`` (13–19 of them) should be treated as a card number, given the text before it."""
    if not 13 <= len(digits) <= 19 or not luhn_valid(digits):
        return False
    if _CARD_BEFORE.search(before[-_CONTEXT:]):
        return True
    if _ORDER_BEFORE.search(before[-_CONTEXT:]):
        return False
    return card_like_prefix(digits)


def mask_bank_card(text: str) -> str:
    """Replace card numbers in ``text`` with ``**** **** **** 1234`` (their last 4 digits)."""
    out: list[str] = []
    last = 0
    for run in _DIGIT_RUN.finditer(text):
        groups = list(_GROUP.finditer(run.group()))
        i = 0
        while i < len(groups):
            done = False
            # the longest window of whole groups starting here that is a card wins (at most 19 groups)
            for j in range(min(len(groups) - 1, i + 18), i - 1, -1):
                digits = "".join(g.group() for g in groups[i:j + 1])
                if len(digits) > 19:
                    continue
                if len(digits) < 13:
                    break
                start, end = run.start() + groups[i].start(), run.start() + groups[j].end()
                if is_card_number(digits, text[:start]):
                    out.append(text[last:start])
                    out.append(CARD_MASK + digits[-4:])
                    last = end
                    i = j + 1
                    done = True
                    break
            if not done:
                i += 1
    out.append(text[last:])
    return "".join(out)


def mask_phone(text: str) -> str:
    """Replace Chinese mobile numbers in ``text`` with ``138****8000`` (a +86 prefix is kept)."""

    def _mask(match: re.Match[str]) -> str:
        if _after(_ORDER_BEFORE, text, match.start()):
            return match.group()
        digits = re.sub(r"\D", "", match.group("number"))
        return (match.group("prefix") or "") + digits[:3] + "****" + digits[-4:]

    return _PHONE.sub(_mask, text)


def mask_text(text: str) -> str:
    """Mask every phone and bank card number in free text (message content, log lines)."""
    if not text or not any(ch.isdigit() for ch in text):
        return text
    return mask_phone(mask_bank_card(text))


class MaskingFilter(logging.Filter):
    """A logging filter that masks phones and card numbers in each record's message.

    ``logging.getLogger().addHandler(h); h.addFilter(MaskingFilter())`` — the message is formatted
    once here (``msg % args``) and the masked text replaces it.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True
        masked = mask_text(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def mask_values(value: Any) -> Any:
    """:func:`mask_text` on every string inside ``value`` (dicts and lists walked, other values kept): a
    customer's attributes as a page shows them, a profile change as the audit log records it."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {k: mask_values(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_values(v) for v in value]
    return value
