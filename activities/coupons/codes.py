"""Coupon codes (券码): a campaign prefix plus random Crockford base32, unique, easy to read aloud.

The random part uses Crockford's alphabet, which leaves out the letters people confuse
with digits or with each other (I, L, O) and U; when a customer types a code back,
:func:`candidates` also tries the usual slips (``O`` for ``0``, ``I``/``L`` for ``1``) in the random
part. The prefix is the campaign's own (``NEW20-``) and is kept as written.

Pure functions, no I/O: uniqueness is decided by the caller's ``taken`` predicate.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from typing import Final

from engine.text import Msg

#: Crockford base32: digits and letters without I, L, O, U
ALPHABET: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
#: random characters per code: 32**10 ≈ 10**15 codes per prefix
CODE_LENGTH: Final = 10
#: the database column holds 40 characters; prefixes are at most 12
MAX_PREFIX: Final = 12
MAX_CODE: Final = 40
PREFIX_PATTERN: Final = re.compile(r"^[A-Z0-9\-]{0,12}$")
#: what a person may type for a Crockford character
_ALIASES: Final = str.maketrans({"O": "0", "I": "1", "L": "1"})

Chooser = Callable[[str], str]


class CodeSpaceExhausted(RuntimeError):
    """Every generated code was already taken (practically impossible unless randomness is broken)."""


def check_prefix(prefix: str) -> str:
    """The prefix if it is usable (upper-case letters, digits and ``-``, at most 12), else ValueError."""
    if not PREFIX_PATTERN.fullmatch(prefix):
        raise ValueError(Msg("code prefix '%(prefix)s' may hold only A–Z, 0–9 and '-', at most "
                             "%(limit)s characters",
                             prefix=prefix, limit=MAX_PREFIX))
    return prefix


def generate_code(prefix: str = "", length: int = CODE_LENGTH, choice: Chooser = secrets.choice) -> str:
    """``prefix`` plus ``length`` random Crockford characters from a cryptographic source."""
    if length < 4:
        raise ValueError(Msg("a coupon code needs at least 4 random characters"))
    return check_prefix(prefix) + "".join(choice(ALPHABET) for _ in range(length))


def unique_code(taken: Callable[[str], bool], prefix: str = "", attempts: int = 8,
                generate: Callable[[str], str] = generate_code) -> str:
    """A generated code for which ``taken(code)`` is false, retrying on a collision."""
    for _ in range(attempts):
        code = generate(prefix)
        if not taken(code):
            return code
    raise CodeSpaceExhausted(Msg("%(count)s generated codes with prefix '%(prefix)s' were all taken", count=attempts,
                                 prefix=prefix))


def candidates(text: str, length: int = CODE_LENGTH) -> list[str]:
    """The codes a customer or shop may have meant by ``text``, best first.

    Surrounding blanks are dropped and letters upper-cased; then the random part (the last
    ``length`` characters) is read with Crockford's aliases. Empty when ``text`` cannot be a code.
    """
    code = text.strip().upper()
    if not code or len(code) > MAX_CODE:
        return []
    found = [code]
    if len(code) >= length:
        read = code[:-length] + code[-length:].translate(_ALIASES)
        if read != code:
            found.append(read)
    return found
