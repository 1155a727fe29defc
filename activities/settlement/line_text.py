"""A statement line's description, kept so that it can be read in either language.

A line says how its amount came about (``5% of sales ¥303,557.54 (party_type direct)``). It is written when the
run computes the period and kept for good: in English in ``description`` (what the CSV, the API and the logs
read), and as its :class:`~wording.Msg` in the stored form of :mod:`wording.stored` (the English template and the
values, a nested ``Msg`` such as ``sales`` or ``the excess over ¥X`` kept as one) in the line's ``refs`` under
``"text"``, from which a page draws it in the reader's language.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.text import Msg
from wording.stored import read_stored
from wording.stored import stored as stored_form

#: the key of a line's ``refs`` that holds its description's template and values
KEY = "text"


def stored(text: str) -> str | None:
    """``text`` in the stored form, or None when it is a plain string with nothing to translate."""
    return stored_form(text) if isinstance(text, Msg) else None


def restored(data: Any, english: str) -> str:
    """The description kept as ``data`` (:func:`stored`): a ``Msg`` that reads exactly ``english``; else
    ``english`` itself (a line written before descriptions kept their template, or an entry that does not
    match what was written)."""
    message = read_stored(data) if isinstance(data, str) else None
    return message if message is not None and str(message) == english else english


def described(line: Mapping[str, Any]) -> str:
    """The description of a line as :func:`~activities.settlement.statements.line_view` answers it (its
    ``refs`` keep the template): a ``Msg`` for a page to translate, else its English."""
    refs = line.get("refs")
    return restored(refs.get(KEY) if isinstance(refs, Mapping) else None, str(line.get("description") or ""))
