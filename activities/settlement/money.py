"""Money as integer fen (分) or exact ``Decimal`` — never float.

* ``parse_yuan("123.45") == 12345`` and ``format_yuan(12345) == "123.45"``.
* ``round_fen(Decimal("617.5"), "half_up") == 618``: the one place a fractional fen becomes whole.
* ``percent_of(12345, Decimal("5")) == Decimal("617.25")``: exact, no division involved.

All exact arithmetic in this package runs inside ``exact_arithmetic()``: a decimal context with 60
significant digits that *raises* instead of rounding silently, so a lost fen is an error, not a surprise.
"""

from __future__ import annotations

import re
from contextlib import AbstractContextManager
from decimal import (
    ROUND_FLOOR,
    ROUND_HALF_EVEN,
    ROUND_HALF_UP,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
    Rounded,
    localcontext,
)
from typing import Final, Literal

from activities.settlement.errors import MoneyError
from engine.text import Msg

Rounding = Literal["half_up", "half_even"]
"""``half_up``: halves away from zero (0.5 → 1, −0.5 → −1). ``half_even``: banker's (0.5 → 0, 1.5 → 2)."""

DEFAULT_ROUNDING: Final[Rounding] = "half_up"

_DECIMAL_ROUNDING: Final[dict[str, str]] = {"half_up": ROUND_HALF_UP, "half_even": ROUND_HALF_EVEN}

_EXACT: Final = Context(
    prec=60,
    rounding=ROUND_HALF_EVEN,
    traps=[InvalidOperation, DivisionByZero, Overflow, Inexact, Rounded],
)

_YUAN_TEXT: Final = re.compile(r"([+-]?)([0-9]+)(?:\.([0-9]+))?")

FEN_PER_YUAN: Final = 100


def exact_arithmetic() -> AbstractContextManager[Context]:
    """A decimal context in which +, −, × either give the exact result or raise ``decimal.Inexact``."""
    return localcontext(_EXACT)


def _refuse_non_money(value: object, what: str) -> None:
    if isinstance(value, bool):
        raise MoneyError(Msg("%(what)s must be an amount, not the boolean %(value)s",
                             what=what, value=value))
    if isinstance(value, float):
        raise MoneyError(
            Msg("%(what)s is the float %(value)s; floats cannot hold money exactly — "
                'pass a decimal string such as "%(example)s" or an integer number of fen',
                what=what, value=value, example=value)
        )


def parse_yuan(value: str | Decimal | int, *, what: str = "amount") -> int:
    """Yuan → integer fen. ``"123.45"`` → 12345, ``"-0.5"`` → −50, ``7`` (yuan) → 700.

    Strings must look like ``[+-]digits[.d[d]]``; more than two decimals, floats, thousands separators,
    currency signs, ``NaN`` and exponents are refused with a ``MoneyError`` that says what to write instead.
    A ``Decimal`` must be a whole number of fen (``Decimal("1.230")`` is fine, ``Decimal("1.234")`` is not).
    """
    _refuse_non_money(value, what)
    if isinstance(value, int):
        return value * FEN_PER_YUAN
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise MoneyError(Msg('%(what)s is %(value)s; write a finite amount such as "123.45"',
                                 what=what, value=value))
        with exact_arithmetic():
            fen = value.scaleb(2)
            whole = fen.to_integral_value(rounding=ROUND_FLOOR)
        if fen != whole:
            raise MoneyError(Msg("%(what)s %(value)s has fractions of a fen; yuan amounts have at most "
                                 "2 decimals",
                                 what=what, value=value))
        return int(whole)
    if not isinstance(value, str):
        raise MoneyError(Msg('%(what)s must be a decimal string such as "123.45", got %(type)s',
                             what=what, type=type(value).__name__))
    text = value.strip()
    match = _YUAN_TEXT.fullmatch(text)
    if match is None:
        raise MoneyError(
            Msg("%(what)s '%(value)s' is not a yuan amount; write digits with an "
                'optional sign and at most 2 decimals, e.g. "123.45" or "-0.50" (no '
                "currency sign, no thousands separator)",
                what=what, value=value)
        )
    sign, whole_text, decimals = match.groups()
    decimals = decimals or ""
    if len(decimals) > 2:
        raise MoneyError(
            Msg("%(what)s '%(value)s' has %(count)s decimal places; yuan amounts have "
                "at most 2 (fen), round it explicitly first",
                what=what, value=value, count=len(decimals))
        )
    amount = int(whole_text) * FEN_PER_YUAN + int(decimals.ljust(2, "0"))
    return -amount if sign == "-" else amount


def format_yuan(fen: int, *, grouping: bool = False, symbol: bool = False) -> str:
    """Integer fen → yuan text with exactly two decimals: 12345 → ``"123.45"``, −5 → ``"-0.05"``.

    ``grouping=True`` adds thousands separators (``"1,234.50"``); ``symbol=True`` prefixes ``¥``.
    ``parse_yuan(format_yuan(x)) == x`` for every integer ``x``.
    """
    require_fen(fen, "fen")
    sign = "-" if fen < 0 else ""
    yuan, cents = divmod(abs(fen), FEN_PER_YUAN)
    whole = f"{yuan:,}" if grouping else str(yuan)
    return f"{sign}{'¥' if symbol else ''}{whole}.{cents:02d}"


def format_exact_yuan(fen: Decimal) -> str:
    """An exact fen amount as yuan text with every decimal kept: ``Decimal("1500000.5")`` → ¥15,000.005."""
    with exact_arithmetic():
        yuan = fen.scaleb(-2).normalize()
        exponent = yuan.as_tuple().exponent
        if isinstance(exponent, int) and exponent > -2:
            yuan = yuan.quantize(Decimal("0.01"))
        sign = "-" if yuan < 0 else ""
        return f"{sign}¥{abs(yuan):,f}"


def round_fen(amount: Decimal | int, rounding: Rounding = DEFAULT_ROUNDING) -> int:
    """An exact fen amount → whole fen with the plan's rounding mode (``half_up`` or ``half_even``)."""
    _refuse_non_money(amount, "amount")
    if isinstance(amount, int):
        return amount
    if not isinstance(amount, Decimal) or not amount.is_finite():
        raise MoneyError(Msg("cannot round '%(amount)s' to fen; pass a finite Decimal",
                             amount=amount))
    try:
        mode = _DECIMAL_ROUNDING[rounding]
    except KeyError:
        raise MoneyError(Msg('rounding \'%(rounding)s\' is unknown; use "half_up" or "half_even"',
                             rounding=rounding)) from None
    with exact_arithmetic():
        return int(amount.to_integral_value(rounding=mode))


def floor_fen(amount: Decimal) -> int:
    """The largest whole fen not above ``amount`` (towards −∞)."""
    with exact_arithmetic():
        return int(amount.to_integral_value(rounding=ROUND_FLOOR))


def percent_of(base: Decimal | int, percent: Decimal) -> Decimal:
    """``percent`` % of ``base``, exactly: ``percent_of(12345, Decimal("5")) == Decimal("617.25")``."""
    with exact_arithmetic():
        return (Decimal(base) * percent).scaleb(-2)


def exact_decimal(value: Decimal | int | str, what: str) -> Decimal:
    """A KPI value, rate or coefficient as an exact ``Decimal``; floats are refused."""
    if isinstance(value, bool | float):
        raise MoneyError(
            Msg("%(what)s is '%(value)s'; pass a Decimal, an int or a decimal string "
                'such as "0.95" — floats are not exact',
                what=what, value=value)
        )
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int | str):
        try:
            result = Decimal(value)
        except InvalidOperation:
            raise MoneyError(Msg('%(what)s \'%(value)s\' is not a number; write it like "0.95"',
                                 what=what, value=value)) from None
    else:
        raise MoneyError(Msg("%(what)s must be a Decimal, int or decimal string, got %(type)s",
                             what=what, type=type(value).__name__))
    if not result.is_finite():
        raise MoneyError(Msg("%(what)s is '%(value)s'; it must be a finite number",
                             what=what, value=value))
    return result


def require_fen(value: object, what: str, *, allow_negative: bool = True) -> int:
    """Check that ``value`` is an integer number of fen (not bool, not float) and return it."""
    _refuse_non_money(value, what)
    if not isinstance(value, int):
        raise MoneyError(
            Msg("%(what)s must be an integer number of fen (分), got %(type)s "
                "'%(value)s'; convert yuan text with parse_yuan()",
                what=what, type=type(value).__name__, value=value)
        )
    if not allow_negative and value < 0:
        raise MoneyError(Msg("%(what)s is %(value)s fen; it cannot be negative",
                             what=what, value=value))
    return value
