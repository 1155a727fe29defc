"""Sensitive words and behaviours (敏感词, 敏感行为) on archived messages. Pure: no I/O.

A :class:`Matcher` is compiled once from every enabled word of every list and then matched against
each archived message as it arrives:

* **keywords** go into one Aho-Corasick automaton (``pyahocorasick``): one pass over the text finds
  every keyword of every list, however many there are (10,000 words cost the same pass as 10);
* **regexes** are compiled with RE2 (``google-re2``): linear-time matching, so no pattern can burn
  the CPU with catastrophic backtracking (``(a+)+b`` is as fast as ``ab``); patterns RE2 cannot
  express (back-references, look-arounds) are refused when the word is saved;
* matching runs on the **text** a person reads (activities' ``readable_text``: message text, link
  titles, file names …), normalised with NFKC and case-folded on both sides, so full-width
  ``ＶＸ`` or ``Vx`` match the keyword ``vx`` — never on the message JSON, where a word could hit
  a key, an id or a URL;
* a word applies within its list's **scope**: staff messages, customer messages or both; the
  departments and members it covers (none = everyone). Several lists may share a word.

Behaviours (:func:`behaviours`) need no list: a phone number or bank card number in the text (the
same rules that mask them, engine/pii.py), a red packet (msgtype ``redpacket`` /
``external_redpacket``), or words asking for a money transfer.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import ahocorasick
import re2

from engine.pii import mask_bank_card, mask_phone, mask_text
from engine.text import Msg, MsgError

Direction = Literal["staff", "customer", "both"]
Severity = Literal["low", "medium", "high", "critical"]
SEVERITIES: tuple[str, ...] = ("low", "medium", "high", "critical")
MAX_PATTERN = 200
#: characters of the text on each side of a hit kept as its passage
PASSAGE_CONTEXT = 30
#: text matched per message (longer text is cut: an archive message is rarely a few KB)
MAX_TEXT = 20_000
#: words asking for money to be moved outside the company's channels
TRANSFER_WORDS = ("转账", "转给我", "打款", "私下付款", "收款码", "微信转我", "支付宝转我", "transfer money")
RED_PACKET_TYPES = frozenset({"redpacket", "external_redpacket"})
BEHAVIOURS: dict[str, dict[str, str]] = {
    "phone_number": {"zh-CN": "发送手机号", "en": "sent a phone number"},
    "bank_card": {"zh-CN": "发送银行卡号", "en": "sent a bank card number"},
    "red_packet": {"zh-CN": "发红包", "en": "sent a red packet"},
    "money_transfer": {"zh-CN": "要求转账", "en": "asked for a money transfer"},
    "deleted_customer": {"zh-CN": "删除客户", "en": "deleted a customer"},
}


def _options() -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # a refused pattern is reported to the user, not printed by the C++ library
    return options


RE2_OPTIONS = _options()


class WordError(MsgError):
    """A word that cannot be used (empty, too long, a regex RE2 cannot run); the message says why."""


def normalise(text: str) -> str:
    """NFKC (full-width → half-width, compatibility forms) and case-folded."""
    if not unicodedata.is_normalized("NFKC", text):  # the check is much cheaper than normalising
        text = unicodedata.normalize("NFKC", text)
    return text.casefold()


@dataclass(frozen=True)
class Word:
    id: int
    list_id: int
    pattern: str
    kind: Literal["keyword", "regex"] = "keyword"
    severity: Severity = "medium"
    direction: Direction = "both"
    departments: frozenset[int] = frozenset()
    members: frozenset[str] = frozenset()
    team: str = ""

    def covers(self, direction: str, staff: str, departments: Iterable[int]) -> bool:
        if self.direction != "both" and self.direction != direction:
            return False
        if not self.departments and not self.members:
            return True
        return staff in self.members or bool(self.departments & set(departments))


@dataclass(frozen=True)
class Hit:
    word: Word
    start: int
    end: int
    #: the normalised text matched in
    text: str

    @property
    def matched(self) -> str:
        """The words that matched (normalised)."""
        return self.text[self.start:self.end]

    @property
    def passage(self) -> str:
        """The text around the hit, masked (phones and card numbers); made only when asked for."""
        return passage(self.text, self.start, self.end)


def check_pattern(pattern: str, kind: str) -> str:
    """The pattern as stored, or :class:`WordError`."""
    text = pattern.strip()
    if not text:
        raise WordError(Msg("the word is empty"))
    if len(text) > MAX_PATTERN:
        raise WordError(Msg("the word is %(count)s characters; at most %(limit)s",
                            count=len(text), limit=MAX_PATTERN))
    if kind == "regex":
        try:
            compiled = re2.compile(normalise(text), RE2_OPTIONS)
        except re2.error as exc:
            raise WordError(Msg("not a regular expression RE2 can run (%(exc)s); RE2 has no "
                                "back-references or look-arounds",
                                exc=exc)) from None
        if compiled.search("") is not None:
            raise WordError(Msg("the regular expression matches the empty text, so it would match "
                                "every message"))
    elif kind != "keyword":
        raise WordError(Msg("kind must be keyword or regex, not '%(kind)s'", kind=kind))
    return text


@dataclass
class Matcher:
    """Every enabled word, compiled. Build it once per word-list change; :meth:`match` is thread-safe."""

    words: Sequence[Word] = ()
    _automaton: ahocorasick.Automaton | None = field(default=None, init=False, repr=False)
    _regexes: list[tuple[Word, re2._Regexp]] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        automaton = ahocorasick.Automaton()
        keywords: dict[str, list[Word]] = {}
        for word in self.words:
            if word.kind == "regex":
                self._regexes.append((word, re2.compile(normalise(word.pattern), RE2_OPTIONS)))
            else:
                key = normalise(word.pattern.strip())
                if key:
                    keywords.setdefault(key, []).append(word)
        for key, owners in keywords.items():
            automaton.add_word(key, (len(key), tuple(owners)))
        if keywords:
            automaton.make_automaton()
            self._automaton = automaton

    def match(self, text: str, direction: str = "staff", staff: str = "", departments: Iterable[int] = ()
              ) -> list[Hit]:
        """Every word (in scope) found in ``text``; one hit per word, at its first occurrence."""
        if not text:
            return []
        plain = normalise(text[:MAX_TEXT])
        depts: set[int] | None = None
        seen: set[int] = set()
        hits: list[Hit] = []
        if self._automaton is not None:
            for end, (length, owners) in self._automaton.iter(plain):
                for word in owners:
                    if word.id in seen:
                        continue
                    if depts is None:
                        depts = set(departments)
                    if not word.covers(direction, staff, depts):
                        continue
                    seen.add(word.id)
                    hits.append(Hit(word, end + 1 - length, end + 1, plain))
        for word, regex in self._regexes:
            if depts is None:
                depts = set(departments)
            if word.id in seen or not word.covers(direction, staff, depts):
                continue
            found = regex.search(plain)
            if found is not None:
                seen.add(word.id)
                hits.append(Hit(word, found.start(), found.end(), plain))
        return hits

    def any_match(self, text: str) -> bool:
        """Whether any keyword occurs (no scope): the cheap test the benchmark measures."""
        if self._automaton is None or not text:
            return False
        for _ in self._automaton.iter(normalise(text)):
            return True
        return False


def passage(text: str, start: int, end: int, context: int = PASSAGE_CONTEXT) -> str:
    """The hit with some text around it, masked."""
    left = max(0, start - context)
    right = min(len(text), end + context)
    return ("…" if left else "") + mask_text(text[left:right]) + ("…" if right < len(text) else "")


@dataclass(frozen=True)
class Behaviour:
    kind: str
    passage: str


def behaviours(text: str, msgtype: str = "text") -> list[Behaviour]:
    """Sensitive behaviours in one message: a phone or card number, a red packet, a transfer request."""
    found: list[Behaviour] = []
    if msgtype in RED_PACKET_TYPES:
        found.append(Behaviour("red_packet", mask_text(text[:200])))
    if not text:
        return found
    body = text[:MAX_TEXT]
    if any(ch.isdigit() for ch in body):
        if mask_bank_card(body) != body:
            found.append(Behaviour("bank_card", mask_text(body[:200])))
        if mask_phone(body) != body:
            found.append(Behaviour("phone_number", mask_text(body[:200])))
    plain = normalise(body)
    for word in TRANSFER_WORDS:
        at = plain.find(word)
        if at >= 0:
            found.append(Behaviour("money_transfer", passage(plain, at, at + len(word))))
            break
    return found
